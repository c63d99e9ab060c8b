//! `gatehouse serve`: load, wire, bind, serve until SIGTERM/SIGINT (reloading the config
//! on SIGHUP, see `reload`), drain, exit.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_mcp::Hub;
use gatehouse_server::AppState;
use gatehouse_server::tls::Certificates;
use metrics_exporter_prometheus::PrometheusBuilder;

use crate::cli::{ServeArgs, load};
use crate::reload::Serving;
use crate::{logging, persistence, reload};

/// How long in-flight requests and streams may run on after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

pub fn run(args: ServeArgs) -> ExitCode {
    let started = Instant::now();
    let source = match load(&args) {
        Ok(source) => source,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    logging::init(
        source
            .loaded
            .config
            .litellm_settings
            .json_logs
            .unwrap_or(false),
        args.detailed_debug,
    );
    for warning in &source.loaded.warnings {
        tracing::warn!("{}: {warning}", source.loaded.origin);
    }
    source.report(|warn, line| {
        if warn {
            tracing::warn!("{line}");
        } else {
            tracing::info!("{line}");
        }
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args, source.loaded, started)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("gatehouse: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    args: ServeArgs,
    loaded: gatehouse_config::Loaded,
    started: Instant,
) -> Result<(), String> {
    let config = &loaded.config;
    // From the start: SIGHUP's default action would end the process.
    let hangup = reload::hangup();
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    // Histograms are aggregated on upkeep; without it samples pile up between scrapes.
    let upkeep_handle = metrics.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep_handle.run_upkeep();
        }
    });
    let (persistence, background) = persistence::open(config, loaded.source_dir.as_deref()).await?;
    // Sampling and elicitation requests from an upstream are relayed to the MCP host whose
    // call caused them. Roots are not announced: servers such as server-filesystem would
    // replace their configured directories with whatever a client sends.
    let hub_settings = gatehouse_mcp::HubSettings {
        client_capabilities: serde_json::json!({"sampling": {}, "elicitation": {}}),
        stdio_guard: stdio_guard(),
        ..gatehouse_mcp::HubSettings::default()
    };
    let hub = Hub::with_settings(config, hub_settings).map_err(|e| format!("MCP servers: {e}"))?;
    hub.start();
    let state = Arc::new(
        AppState::new(config, hub.clone(), Some(persistence), Some(metrics))
            .map_err(|e| e.to_string())?
            .with_source(loaded.sha256.clone()),
    );
    let local = state.auth.is_local();
    let host: IpAddr = match args.host.as_deref() {
        Some(h) => h
            .parse()
            .map_err(|_| format!("--host {h}: not an IP address (e.g. 0.0.0.0 or 127.0.0.1)"))?,
        None if local => IpAddr::from([127, 0, 0, 1]),
        None => IpAddr::from([0, 0, 0, 0]),
    };
    if local && !host.is_loopback() {
        return Err(format!(
            "refusing to bind {host}: no master_key and no keys are configured, so auth is off. \
             Set general_settings.master_key (or virtual_keys) to serve beyond this machine, or bind 127.0.0.1"
        ));
    }
    // Read before binding: a wrong path fails the start, not every handshake. The handle
    // stays here so the config reload can call `certificates.reload()` too.
    let certificates = tls_certificates(&args)?;
    let scheme = if certificates.is_some() {
        "https"
    } else {
        "http"
    };
    let addr = SocketAddr::new(host, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    if local {
        tracing::warn!(
            "LOCAL MODE: no master_key and no keys configured, auth is OFF; listening on loopback only"
        );
    }
    tracing::info!(
        models = state.router.names().len() + state.router.wildcard_names().count(),
        mcp_servers = config.mcp_servers.len(),
        config = %loaded.origin,
        startup_ms = started.elapsed().as_secs_f64() * 1e3,
        "gatehouse listening on {scheme}://{bound}"
    );
    let serving = Serving::new(
        args.clone(),
        loaded.source_dir.clone(),
        host,
        state,
        certificates.clone(),
    );
    let app = serving.app();
    // The current state owns the hub from here: a reload replaces it, and servers it
    // removes stop once nothing holds the old hub.
    drop(hub);
    let (stop_reloading, stopped) = tokio::sync::watch::channel(false);
    let stop_reloading = Arc::new(stop_reloading);
    let reloader = tokio::spawn(serving.reload_on_signal(hangup, args.watch_config, stopped));
    let draining = stop_reloading.clone();
    let shutdown = async move {
        shutdown_signal().await;
        // No reload once draining starts.
        let _ = draining.send(true);
    };
    let result =
        gatehouse_server::serve(listener, app, certificates, shutdown, SHUTDOWN_GRACE).await;
    let _ = stop_reloading.send(true);
    let state = match reloader.await {
        Ok(serving) => serving.stop().await,
        Err(e) => return Err(format!("the config reloader failed: {e}")),
    };
    state.hub.shutdown().await;
    background.stop(state.persistence.as_deref()).await;
    upkeep.abort();
    tracing::info!("stopped");
    result.map_err(|e| format!("server error: {e}"))
}

/// The certificate to serve HTTPS with, when `--ssl_certfile_path` and `--ssl_keyfile_path`
/// (or `SSL_CERTFILE_PATH` and `SSL_KEYFILE_PATH`) name one; clap requires both or neither.
fn tls_certificates(args: &ServeArgs) -> Result<Option<Arc<Certificates>>, String> {
    if args.ciphers.is_some() {
        tracing::warn!(
            "--ciphers is ignored: TLS uses rustls' own safe cipher suites (TLS 1.3, and TLS 1.2 with ECDHE and AEAD)"
        );
    }
    let (Some(cert), Some(key)) = (&args.ssl_certfile_path, &args.ssl_keyfile_path) else {
        return Ok(None);
    };
    let certificates =
        Certificates::load(cert, key).map_err(|e| format!("TLS certificate: {e}"))?;
    tracing::info!(cert = %cert.display(), "serving HTTPS (HTTP/2 and HTTP/1.1 by ALPN)");
    Ok(Some(certificates))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// This binary, which runs stdio MCP servers under its orphan guard so they die with us
/// even on SIGKILL. Without it (no `/proc`?) servers still run, guarded only by the
/// process-group kill at a clean shutdown.
fn stdio_guard() -> Option<std::path::PathBuf> {
    match std::env::current_exe() {
        Ok(exe) => Some(exe),
        Err(e) => {
            tracing::warn!(error = %e, "cannot locate the gatehouse executable; stdio MCP servers will not die with a SIGKILLed gateway");
            None
        }
    }
}
