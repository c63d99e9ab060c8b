//! Everything a request handler needs: built at start-up, and again at each config
//! reload from the new config and the long-lived parts of the old state
//! ([`AppState::reconfigured`]).

use std::sync::Arc;
use std::time::Instant;

use gatehouse_config::Config;
use gatehouse_mcp::Hub;
use metrics_exporter_prometheus::PrometheusHandle;

use gatehouse_store::{KeyCache, KeyStore, SpendWriter};

use crate::auth::{Auth, KeyResolver};
use crate::deployments::{Deployment, DeploymentError};

/// Request-handling settings read from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_request_bytes: usize,
    pub max_request_size_mb: f64,
    /// LiteLLM's `drop_params`: drop parameters the upstream does not support instead of
    /// failing.
    pub drop_params: bool,
    /// Parameters removed from every request body before it goes upstream.
    pub additional_drop_params: Vec<String>,
    pub mcp_max_iterations: u32,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        let mb = config.general_settings.max_request_size_mb.unwrap_or(32.0);
        Self {
            max_request_bytes: (mb * 1024.0 * 1024.0) as usize,
            max_request_size_mb: mb,
            drop_params: config.litellm_settings.drop_params.unwrap_or(false),
            additional_drop_params: config.litellm_settings.additional_drop_params.clone(),
            mcp_max_iterations: config.litellm_settings.mcp_max_iterations.unwrap_or(10),
        }
    }
}

/// Persistence: the key store, its in-memory cache (the hot path's key lookup) and the
/// batched spend/audit writer.
pub struct Persistence {
    pub store: Arc<dyn KeyStore>,
    pub keys: Arc<KeyCache>,
    pub spend: SpendWriter,
}

pub struct AppState {
    /// The config being served (the admin UI shows it, redacted).
    pub config: Arc<Config>,
    /// Which config file version this is and when it was loaded (`/health`).
    pub loaded: Loaded,
    /// Config reloads so far, shared by every state a reload builds.
    pub reloads: Arc<ReloadStats>,
    /// The Redis URL in effect: fixed at start-up (a reload keeps it).
    redis: Option<String>,
    /// Model groups, strategies, retries, fallbacks, cooldowns (`router_settings`).
    pub router: gatehouse_router::Router<Deployment>,
    /// Cooldowns to share through Redis, until `router_sync::spawn` takes them.
    cooldown_feed: std::sync::Mutex<Option<crate::router_sync::cooldowns::Feed>>,
    /// Wildcard deployments materialised for a requested name (bounded).
    wildcard_cache: std::sync::Mutex<std::collections::HashMap<(String, String), Arc<Deployment>>>,
    pub auth: Auth,
    pub http: reqwest::Client,
    pub settings: Settings,
    pub metrics: Option<PrometheusHandle>,
    pub hub: Arc<Hub>,
    pub started: Instant,
    /// The last background health check of each deployment (when they are on).
    pub health_checks: Arc<crate::health_checks::Results>,
    pub allowed_origins: Vec<String>,
    /// `Host` names the MCP endpoint accepts besides loopback.
    pub allowed_hosts: Vec<String>,
    /// MCP halves of turns that also called the client's own tools.
    pub pending: Arc<crate::tools::pending::PendingTurns>,
    pub persistence: Option<Arc<Persistence>>,
    /// Responses API objects kept for `previous_response_id` and GET/DELETE.
    pub responses: Arc<crate::dialects::store::ResponseStore>,
    /// Per-key rpm/tpm/parallel limits: in memory, or shared through Redis.
    pub limiter: Arc<crate::limits::Limiter>,
    /// The response cache (`litellm_settings.cache`), when on.
    pub cache: Option<Arc<crate::cache::ResponseCache>>,
    /// OpenTelemetry traces (`OTEL_EXPORTER_OTLP_ENDPOINT`, `callbacks: [otel]`), when on.
    pub tracer: Option<Arc<crate::otel::Tracer>>,
}

/// The loaded config file's identity, for `/health`.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// SHA-256 (hex) of the file as read; `None` when the state was built from a config
    /// value (tests).
    pub sha256: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Reload outcomes since start-up (`/health`, and `gatehouse_config_reloads_total`).
#[derive(Debug, Default)]
pub struct ReloadStats {
    pub succeeded: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
    /// Why the last reload was refused; cleared by a successful one.
    pub last_error: std::sync::Mutex<Option<String>>,
}

impl ReloadStats {
    pub fn record_success(&self) {
        self.succeeded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        metrics::counter!("gatehouse_config_reloads_total", "result" => "success").increment(1);
    }

    pub fn record_failure(&self, why: String) {
        self.failed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        metrics::counter!("gatehouse_config_reloads_total", "result" => "failure").increment(1);
    }
}

/// The parts of the state that outlive a config reload: counters, stores, connections.
struct Carried {
    persistence: Option<Arc<Persistence>>,
    metrics: Option<PrometheusHandle>,
    http: reqwest::Client,
    limiter: Arc<crate::limits::Limiter>,
    responses: Arc<crate::dialects::store::ResponseStore>,
    pending: Arc<crate::tools::pending::PendingTurns>,
    health_checks: Arc<crate::health_checks::Results>,
    started: Instant,
    redis: Option<String>,
    reloads: Arc<ReloadStats>,
}

impl AppState {
    /// Builds the state from a loaded config. Without `persistence` only the config's
    /// master key authenticates (used by tests of the proxy alone).
    pub fn new(
        config: &Config,
        hub: Arc<Hub>,
        persistence: Option<Persistence>,
        metrics: Option<PrometheusHandle>,
    ) -> Result<Self, StateError> {
        let redis = redis_url(config);
        let limiter = crate::limits::Limiter::from_settings(redis.clone())
            .map_err(|e| DeploymentError::Redis(e.to_string()))?;
        let carried = Carried {
            persistence: persistence.map(Arc::new),
            metrics,
            http: upstream_client()?,
            limiter: Arc::new(limiter),
            responses: Default::default(),
            pending: Default::default(),
            health_checks: Default::default(),
            started: Instant::now(),
            redis,
            reloads: Default::default(),
        };
        let cache = build_cache(config, carried.redis.as_deref())?;
        Self::assemble(config, hub, carried, cache, build_tracer(config))
    }

    /// The state for a reloaded config and its hub, keeping what must not reset: the key
    /// store and its cache, the spend writer, rate-limit counters, stored responses,
    /// pending tool turns, deployment health results, the upstream connection pool, the
    /// metrics handle and the Redis URL (changing it needs a restart). The response cache
    /// and the tracer are kept when their settings did not change, else rebuilt.
    pub fn reconfigured(&self, config: &Config, hub: Arc<Hub>) -> Result<Self, StateError> {
        let carried = Carried {
            persistence: self.persistence.clone(),
            metrics: self.metrics.clone(),
            http: self.http.clone(),
            limiter: self.limiter.clone(),
            responses: self.responses.clone(),
            pending: self.pending.clone(),
            health_checks: self.health_checks.clone(),
            started: self.started,
            redis: self.redis.clone(),
            reloads: self.reloads.clone(),
        };
        let cache = if gatehouse_config::cache::settings(config).0
            == gatehouse_config::cache::settings(&self.config).0
        {
            self.cache.clone()
        } else {
            build_cache(config, carried.redis.as_deref())?
        };
        let tracer = if gatehouse_config::callbacks::otel(config)
            == gatehouse_config::callbacks::otel(&self.config)
        {
            self.tracer.clone()
        } else {
            build_tracer(config)
        };
        Self::assemble(config, hub, carried, cache, tracer)
    }

    /// The Redis URL this process uses (set at start-up; a reload keeps it).
    pub fn redis(&self) -> Option<&str> {
        self.redis.as_deref()
    }

    /// Records which file version this state serves (`/health`).
    pub fn with_source(mut self, sha256: String) -> Self {
        self.loaded.sha256 = Some(sha256);
        self
    }

    /// Whether this state shares `other`'s response cache (a reload kept it).
    pub fn same_cache(&self, other: &AppState) -> bool {
        match (&self.cache, &other.cache) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    /// Whether this state shares `other`'s tracer (a reload kept it).
    pub fn same_tracer(&self, other: &AppState) -> bool {
        match (&self.tracer, &other.tracer) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }

    fn assemble(
        config: &Config,
        hub: Arc<Hub>,
        carried: Carried,
        cache: Option<Arc<crate::cache::ResponseCache>>,
        tracer: Option<Arc<crate::otel::Tracer>>,
    ) -> Result<Self, StateError> {
        let mut router = crate::deployments::build_router(config)?;
        let mut cooldown_feed = None;
        if let Some(url) = &carried.redis {
            let (sink, feed) = crate::router_sync::cooldowns::channel(url.clone());
            router = router.with_sink(Arc::new(sink));
            cooldown_feed = Some(feed);
        }
        let master_key = config
            .general_settings
            .master_key
            .as_deref()
            .or(config.litellm_settings.master_key.as_deref());
        // Local mode is a property of the config: no master key and no declared keys.
        let any_keys = !config.virtual_keys.is_empty();
        let resolver: Arc<dyn KeyResolver> = match &carried.persistence {
            Some(p) => p.keys.clone(),
            None => Arc::new(NoKeys),
        };
        Ok(Self {
            config: Arc::new(config.clone()),
            loaded: Loaded {
                sha256: None,
                at: chrono::Utc::now(),
            },
            reloads: carried.reloads,
            redis: carried.redis,
            router,
            cooldown_feed: std::sync::Mutex::new(cooldown_feed),
            wildcard_cache: Default::default(),
            auth: Auth::new(master_key, resolver, any_keys),
            http: carried.http,
            settings: Settings::from_config(config),
            metrics: carried.metrics,
            hub,
            started: carried.started,
            health_checks: carried.health_checks,
            allowed_origins: config.general_settings.allowed_origins.clone(),
            allowed_hosts: config.general_settings.allowed_hosts.clone(),
            pending: carried.pending,
            persistence: carried.persistence,
            responses: carried.responses,
            limiter: carried.limiter,
            cache,
            tracer,
        })
    }
}

fn build_cache(
    config: &Config,
    redis: Option<&str>,
) -> Result<Option<Arc<crate::cache::ResponseCache>>, StateError> {
    match gatehouse_config::cache::settings(config).0 {
        Some(settings) => Ok(Some(Arc::new(
            crate::cache::ResponseCache::new(settings, redis).map_err(StateError::Cache)?,
        ))),
        None => Ok(None),
    }
}

fn build_tracer(config: &Config) -> Option<Arc<crate::otel::Tracer>> {
    crate::otel::Tracer::from_env(
        &|name| std::env::var(name).ok(),
        gatehouse_config::callbacks::otel(config),
    )
    .map(Arc::new)
}

/// Why the state could not be built (start-up fails with it).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Deployments(#[from] DeploymentError),
    /// No silent fallback to a default client: that one would follow redirects with our
    /// upstream keys.
    #[error("cannot build the upstream HTTP client: {0}")]
    HttpClient(String),
    #[error("response cache: {0}")]
    Cache(String),
}

/// The client every upstream LLM call uses, built with our policy or not at all.
fn upstream_client() -> Result<reqwest::Client, StateError> {
    reqwest::Client::builder()
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        // A gateway reports an upstream's redirect; it does not follow it with our keys.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| StateError::HttpClient(e.to_string()))
}

/// Wildcard deployments kept materialised at most (one per requested name).
const WILDCARD_CACHE: usize = 1024;

impl AppState {
    /// Starts the background health checks when the config turns them on; the caller
    /// owns the task.
    pub fn check_health(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let interval = crate::health_checks::interval(&self.config)?;
        Some(crate::health_checks::spawn(self.clone(), interval))
    }

    /// Starts sharing the router's state through Redis (when configured); the caller
    /// owns the task.
    pub fn share_router_state(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let feed = self
            .cooldown_feed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        Some(crate::router_sync::spawn(self.clone(), feed))
    }

    /// Starts the OTLP span exporter (when tracing is on); the caller owns it and stops
    /// it at shutdown (which sends what is still queued).
    pub fn spawn_span_exporter(&self) -> Option<crate::otel::Exporter> {
        self.tracer.as_ref()?.spawn_exporter(self.http.clone())
    }

    /// Starts the Redis response cache's writer (when the cache is in Redis); the caller
    /// owns the task.
    pub fn spawn_cache_writer(&self) -> Option<tokio::task::JoinHandle<()>> {
        self.cache.as_ref()?.spawn_writer()
    }

    /// The deployment an attempt calls: the configured one, or for a wildcard route the
    /// configured one serving the requested name (cached; a name that cannot be served
    /// falls back to the template, whose upstream then answers for it).
    pub fn deployment_for(
        &self,
        deployment: &Arc<Deployment>,
        wildcard: Option<&str>,
    ) -> Arc<Deployment> {
        let Some(capture) = wildcard else {
            return deployment.clone();
        };
        let key = (deployment.id.clone(), capture.to_owned());
        let mut cache = self
            .wildcard_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = cache.get(&key) {
            return hit.clone();
        }
        let made = match deployment.for_wildcard(capture) {
            Ok(d) => Arc::new(d),
            Err(reason) => {
                tracing::warn!(deployment = %deployment.id, model = %capture, %reason, "wildcard route cannot serve this name");
                return deployment.clone();
            }
        };
        if cache.len() >= WILDCARD_CACHE {
            cache.clear();
        }
        cache.insert(key, made.clone());
        made
    }
}

struct NoKeys;

impl KeyResolver for NoKeys {
    fn lookup(&self, _: &str) -> Option<Arc<crate::auth::KeyInfo>> {
        None
    }
}

/// Redis when `REDIS_URL`, `router_settings.redis_url` or `redis_host` is set: several
/// replicas then enforce one set of key limits and share router cooldowns.
pub fn redis_url(config: &Config) -> Option<String> {
    let rs = &config.router_settings;
    let env_url = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty());
    crate::limits::redis_url(
        rs.redis_host.as_deref(),
        rs.redis_port,
        rs.redis_password.as_deref(),
        env_url.as_deref().or(rs.redis_url.as_deref()),
    )
}
