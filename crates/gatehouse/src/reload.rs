//! Config reload: on SIGHUP (and, with `--watch-config`, when the file's contents change)
//! the config is loaded and checked as at start-up, a new `AppState` is built from it and
//! the long-lived parts of the current one, and new requests are served with it. Requests
//! and streams in flight finish on the state they started with; MCP servers whose
//! definition did not change keep running; a config that fails to load or check is
//! refused, its errors logged, and the current one keeps serving.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_config::Config;
use gatehouse_server::{AppState, McpEndpoint, Reloadable};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::{ServeArgs, load};
use crate::persistence;

/// How often `--watch-config` reads the file.
const WATCH_EVERY: Duration = Duration::from_secs(3);

/// What is being served, and everything needed to replace it.
pub struct Serving {
    args: ServeArgs,
    /// Where the start-up config lives (relative paths, the SQLite file, the spool).
    config_dir: Option<PathBuf>,
    /// The address bound at start-up: a reload cannot turn auth off beyond loopback.
    host: IpAddr,
    state: Arc<AppState>,
    tasks: StateTasks,
    mcp: McpEndpoint,
    app: Reloadable,
    /// The HTTPS certificate, re-read from its files on every reload.
    certificates: Option<Arc<gatehouse_server::tls::Certificates>>,
}

impl Serving {
    pub fn new(
        args: ServeArgs,
        config_dir: Option<PathBuf>,
        host: IpAddr,
        state: Arc<AppState>,
        certificates: Option<Arc<gatehouse_server::tls::Certificates>>,
    ) -> Self {
        let mcp = McpEndpoint::new(&state);
        let app = Reloadable::new(gatehouse_server::router_with_mcp(state.clone(), &mcp));
        Self {
            tasks: StateTasks::start(&state),
            args,
            config_dir,
            host,
            state,
            mcp,
            app,
            certificates,
        }
    }

    /// The application to serve: it always forwards to the current state's.
    pub fn app(&self) -> axum::Router {
        self.app.app()
    }

    /// Reloads until `stop` turns true: on SIGHUP, and every [`WATCH_EVERY`] when the
    /// file changed if `watch_file` is set. Returns `self` for the shutdown.
    pub async fn reload_on_signal(
        mut self,
        mut hangup: Hangup,
        watch_file: bool,
        mut stop: watch::Receiver<bool>,
    ) -> Self {
        let file = self.args.config.clone().filter(|_| watch_file);
        if watch_file && file.is_none() {
            tracing::warn!("--watch-config needs --config: there is no file to watch");
        }
        // The contents last tried, so a broken file is reported once, not every tick.
        let mut seen = self.state.loaded.sha256.clone();
        let mut tick = tokio::time::interval(WATCH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // (The guard `wait_for` returns must not live across the awaits below.)
                () = async { let _ = stop.wait_for(|s| *s).await; } => return self,
                () = next(&mut hangup) => {
                    tracing::info!("SIGHUP: reloading the config");
                    self.reload().await;
                    seen = self.state.loaded.sha256.clone();
                }
                _ = tick.tick(), if file.is_some() => {
                    let Some(path) = &file else { continue };
                    // Unreadable for a moment (an editor replacing the file): try next tick.
                    let Ok(text) = std::fs::read_to_string(path) else { continue };
                    let hash = gatehouse_config::load::sha256_hex(&text);
                    if seen.as_deref() == Some(hash.as_str()) {
                        continue;
                    }
                    tracing::info!(config = %path.display(), "the config file changed: reloading");
                    seen = Some(hash);
                    self.reload().await;
                }
            }
        }
    }

    /// One reload attempt, logged and counted either way.
    pub async fn reload(&mut self) {
        match self.try_reload().await {
            Ok(()) => self.state.reloads.record_success(),
            Err(errors) => {
                for e in &errors {
                    tracing::error!("config reload refused: {e}");
                }
                tracing::error!(
                    config = %self.state.loaded.sha256.as_deref().unwrap_or("-"),
                    "config reload refused; still serving the config loaded before"
                );
                self.state.reloads.record_failure(errors.join("; "));
            }
        }
        // The certificate files are re-read with the config (a renewed certificate needs
        // no restart); broken files keep the old certificate serving.
        if let Some(certificates) = &self.certificates {
            match certificates.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => tracing::error!(
                    "TLS certificate reload refused, still serving the old one: {e}"
                ),
            }
        }
    }

    async fn try_reload(&mut self) -> Result<(), Vec<String>> {
        // One error per line, as start-up prints them.
        let source = load(&self.args).map_err(|errors| {
            errors
                .to_string()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        })?;
        let loaded = source.loaded;
        for warning in &loaded.warnings {
            tracing::warn!("{}: {warning}", loaded.origin);
        }
        let old = self.state.clone();
        let config = &loaded.config;
        for setting in self.needs_restart(config, loaded.source_dir.as_deref()) {
            tracing::warn!(
                "{setting} changed: it takes effect at the next restart; keeping the current one"
            );
        }
        let hub = old
            .hub
            .reconfigured(config)
            .map_err(|e| vec![format!("MCP servers: {e}")])?;
        let state = old
            .reconfigured(config, hub.clone())
            .map_err(|e| vec![e.to_string()])?
            .with_source(loaded.sha256.clone());
        if state.auth.is_local() && !self.host.is_loopback() {
            return Err(vec![format!(
                "no master_key and no keys are configured, which turns auth off, while listening on {}: \
                 set general_settings.master_key (or virtual_keys)",
                self.host
            )]);
        }
        if !old.auth.is_local() && state.auth.is_local() {
            tracing::warn!("LOCAL MODE: no master_key and no keys configured, auth is OFF");
        }
        if let Some(p) = &state.persistence {
            persistence::sync_config_keys(p.store.as_ref(), config)
                .await
                .map_err(|e| vec![e])?;
            // New and changed keys authenticate at once, not at the next refresh.
            if let Err(e) = p.keys.refresh().await {
                tracing::warn!(error = %e, "reading the keys after the reload failed; the next refresh retries");
            }
        }
        let changes = old.hub.changes_to(&hub);
        hub.start();
        let state = Arc::new(state);
        let (mcp, sessions_kept) = self.mcp.reload(&state);
        if !sessions_kept {
            tracing::warn!(
                "mcp_settings, allowed hosts/origins or local mode changed: open MCP sessions end; clients reconnect"
            );
        }
        self.app
            .swap(gatehouse_server::router_with_mcp(state.clone(), &mcp));
        let tasks = std::mem::take(&mut self.tasks);
        self.tasks = tasks.restart(&old, &state).await;
        self.mcp = mcp;
        self.state = state;
        tracing::info!(
            config = %loaded.origin,
            hash = %loaded.sha256,
            models = self.state.router.names().len() + self.state.router.wildcard_names().count(),
            mcp_kept = ?changes.kept,
            mcp_added = ?changes.added,
            mcp_restarted = ?changes.restarted,
            mcp_removed = ?changes.removed,
            "config reloaded"
        );
        Ok(())
    }

    /// Settings the running process cannot change; a reload warns and keeps the old.
    fn needs_restart(&self, new: &Config, new_dir: Option<&std::path::Path>) -> Vec<&'static str> {
        let old = &self.state.config;
        let mut out = Vec::new();
        if persistence::database_url(old, self.config_dir.as_deref())
            != persistence::database_url(new, new_dir)
        {
            out.push("the database (database_url)");
        }
        if gatehouse_server::state::redis_url(new).as_deref() != self.state.redis() {
            out.push("Redis (REDIS_URL, router_settings.redis_*)");
        }
        if old.litellm_settings.json_logs != new.litellm_settings.json_logs {
            out.push("litellm_settings.json_logs");
        }
        if old.general_settings.disable_spend_logs != new.general_settings.disable_spend_logs {
            out.push("general_settings.disable_spend_logs");
        }
        out
    }

    /// Stops the state's background tasks (shutdown); returns the last state.
    pub async fn stop(self) -> Arc<AppState> {
        self.tasks.stop().await;
        self.state
    }
}

/// The background work of one state.
#[derive(Default)]
struct StateTasks {
    health_checks: Option<JoinHandle<()>>,
    router_sharing: Option<JoinHandle<()>>,
    cache_writer: Option<JoinHandle<()>>,
    span_exporter: Option<gatehouse_server::otel::Exporter>,
}

impl StateTasks {
    fn start(state: &Arc<AppState>) -> Self {
        if let Some(tracer) = &state.tracer {
            tracing::info!(endpoint = %tracer.endpoint(), "exporting OpenTelemetry traces (OTLP/HTTP protobuf)");
        }
        Self {
            health_checks: state.check_health(),
            router_sharing: state.share_router_state(),
            cache_writer: state.spawn_cache_writer(),
            span_exporter: state.spawn_span_exporter(),
        }
    }

    /// The tasks for `new`, which replaced `old`: health checks and router sharing
    /// restart for the new router; the cache writer and span exporter carry on when the
    /// new state kept the cache or tracer.
    async fn restart(self, old: &AppState, new: &Arc<AppState>) -> Self {
        for task in [self.health_checks, self.router_sharing]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        let cache_writer = if new.same_cache(old) {
            self.cache_writer
        } else {
            if let Some(task) = self.cache_writer {
                task.abort();
            }
            new.spawn_cache_writer()
        };
        let span_exporter = if new.same_tracer(old) {
            self.span_exporter
        } else {
            if let Some(exporter) = self.span_exporter {
                exporter.stop().await;
            }
            if let Some(tracer) = &new.tracer {
                tracing::info!(endpoint = %tracer.endpoint(), "exporting OpenTelemetry traces (OTLP/HTTP protobuf)");
            }
            new.spawn_span_exporter()
        };
        Self {
            health_checks: new.check_health(),
            router_sharing: new.share_router_state(),
            cache_writer,
            span_exporter,
        }
    }

    async fn stop(self) {
        for task in [self.health_checks, self.router_sharing, self.cache_writer]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        // The last spans (the requests that just finished) still go out, briefly.
        if let Some(exporter) = self.span_exporter {
            exporter.stop().await;
        }
    }
}

#[cfg(unix)]
pub type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
pub type Hangup = ();

/// SIGHUP, listened to from start-up on: its default action would end the process.
#[cfg(unix)]
pub fn hangup() -> Hangup {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; config reload is off");
            None
        }
    }
}

#[cfg(not(unix))]
pub fn hangup() -> Hangup {}

#[cfg(unix)]
async fn next(hangup: &mut Hangup) {
    match hangup {
        Some(s) => {
            if s.recv().await.is_none() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
async fn next(_: &mut Hangup) {
    std::future::pending::<()>().await
}
