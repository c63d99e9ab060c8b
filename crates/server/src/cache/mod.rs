//! The response cache (`litellm_settings.cache`): a repeated request is answered from a
//! stored answer instead of an upstream call, in memory or shared through Redis.
//!
//! A route asks for a [`Lookup`] before it changes the body (the key covers the request as
//! the client sent it, see [`key`]); `pipeline::cache` then answers a hit at once, or runs
//! the rest of the pipeline and stores its answer when it finished cleanly: a JSON answer
//! with status 200, or a stream that reached its end marker with no error on the way. An
//! answer produced with server-side tool calls is stored only when every tool called is
//! listed in `cache_params.cacheable_tools` (tools have side effects).

mod control;
mod entry;
mod key;
mod local;
mod redis;
mod tee;

use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;
use gatehouse_config::cache::{CacheBackend, CacheSettings, CallType};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::pipeline::Route;
use crate::state::AppState;
use entry::Entry;

enum Store {
    Local(local::Local),
    Redis(Arc<redis::RedisCache>),
}

pub struct ResponseCache {
    settings: CacheSettings,
    store: Store,
}

impl ResponseCache {
    /// The cache the config asks for; `redis_fallback` is the gateway's own Redis URL, used
    /// when `cache_params` names no host or URL of its own. Redis needs a Tokio runtime.
    pub fn new(settings: CacheSettings, redis_fallback: Option<&str>) -> Result<Self, String> {
        let store = match &settings.backend {
            CacheBackend::Local => {
                Store::Local(local::Local::new(settings.max_entries, settings.max_bytes))
            }
            CacheBackend::Redis {
                host,
                port,
                password,
                url,
            } => {
                let url = crate::limits::redis_url(
                    host.as_deref(),
                    *port,
                    password.as_deref(),
                    url.as_deref(),
                )
                .or_else(|| redis_fallback.map(str::to_owned))
                .ok_or("cache_params.type is redis but no Redis is named (cache_params.host/url, REDIS_URL or router_settings.redis_host)")?;
                let cache = redis::RedisCache::connect(&url)
                    .map_err(|e| format!("cache_params: invalid Redis URL: {e}"))?;
                Store::Redis(Arc::new(cache))
            }
        };
        Ok(Self { settings, store })
    }

    /// Starts the Redis writer (when the cache is in Redis); the caller owns the task.
    pub fn spawn_writer(&self) -> Option<tokio::task::JoinHandle<()>> {
        match &self.store {
            Store::Redis(r) => r.spawn_writer(),
            Store::Local(_) => None,
        }
    }

    /// What `/health` shows about the cache.
    pub fn health(&self) -> Value {
        match &self.store {
            Store::Local(_) => serde_json::json!({"type": "local", "status": "healthy"}),
            Store::Redis(r) => match r.trouble() {
                None => serde_json::json!({"type": "redis", "status": "healthy"}),
                Some(error) => serde_json::json!({"type": "redis", "status": "unavailable",
                    "error": error, "detail": "requests are served without the cache"}),
            },
        }
    }

    async fn get(&self, key: &str) -> Option<Arc<Entry>> {
        match &self.store {
            Store::Local(l) => l.get(key),
            Store::Redis(r) => r.get(key).await.map(Arc::new),
        }
    }

    fn put(&self, key: String, entry: Entry, ttl: Duration) {
        match &self.store {
            Store::Local(l) => l.put(key, entry, ttl),
            Store::Redis(r) => r.put(key, &entry, ttl),
        }
    }
}

/// One request's business with the cache, decided before the pipeline runs on.
pub struct Lookup {
    api: CallType,
    /// `<namespace>:<hash>` or the hash alone.
    key: String,
    read: bool,
    write: bool,
    ttl: Duration,
    max_age: Option<Duration>,
}

/// Reads the request's cache controls (removing the body's `cache`, which is never sent
/// upstream) and, when this request is to be cached, its key. `None`: the cache stays out
/// of the way (off, not this API, `mode: default_off` without opt-in, or both
/// `no-cache` and `no-store`).
pub fn lookup(
    state: &AppState,
    route: &Route,
    api: CallType,
    headers: &HeaderMap,
    body: &mut Map<String, Value>,
) -> Result<Option<Lookup>, ApiError> {
    let controls = control::read(body, headers)?;
    let Some(cache) = &state.cache else {
        return Ok(None);
    };
    let s = &cache.settings;
    if !s.call_types.contains(&api) || (s.default_off && !controls.opt_in) {
        return Ok(None);
    }
    let (read, write) = (!controls.no_cache, !controls.no_store);
    if !read && !write {
        return Ok(None);
    }
    let resolved = state.router.resolve(&route.model);
    let group = resolved
        .as_ref()
        .map_or(route.model.as_str(), |r| r.group.name.as_str());
    let parts = key::Parts {
        api,
        group,
        wildcard: resolved.as_ref().and_then(|r| r.wildcard.as_deref()),
        mcp_servers: &route.mcp_servers,
        include_user: s.key_includes_user,
    };
    let digest = key::digest(&parts, body, headers);
    let key = match controls.namespace.as_ref().or(s.namespace.as_ref()) {
        Some(ns) => format!("{ns}:{digest}"),
        None => digest,
    };
    Ok(Some(Lookup {
        api,
        key,
        read,
        write,
        ttl: controls.ttl.unwrap_or(s.ttl),
        max_age: controls.max_age,
    }))
}

/// The cache step (see `pipeline::cache`): a hit answers at once with a $0 spend row
/// marked as a hit; a miss runs `rest` and stores its answer if it finishes cleanly.
pub async fn serve<F>(
    state: &AppState,
    lookup: Option<Lookup>,
    rest: F,
) -> Result<Response, ApiError>
where
    F: std::future::Future<Output = Result<Response, ApiError>>,
{
    let (Some(lookup), Some(cache)) = (lookup, state.cache.as_ref()) else {
        return rest.await;
    };
    let api = lookup.api.as_str();
    if lookup.read
        && let Some(hit) = cache.get(&lookup.key).await
        && fresh(&hit, lookup.max_age)
    {
        metrics::counter!("gatehouse_cache_hits_total", "api" => api).increment(1);
        crate::spend::with(|r| r.set_cache_hit());
        return Ok(hit.response(&lookup.key));
    }
    metrics::counter!("gatehouse_cache_misses_total", "api" => api).increment(1);
    let response = rest.await?;
    if !lookup.write || lookup.ttl.is_zero() || response.status() != axum::http::StatusCode::OK {
        return Ok(response);
    }
    let pending = tee::Pending {
        cache: cache.clone(),
        // Captured here: a stream ends outside the request's scope.
        record: crate::spend::current(),
        api: lookup.api,
        key: lookup.key,
        ttl: lookup.ttl,
        max_bytes: cache.settings.max_item_bytes,
    };
    tee::store_when_done(response, pending).await
}

fn fresh(entry: &Entry, max_age: Option<Duration>) -> bool {
    let Some(max_age) = max_age else {
        return true;
    };
    let age = entry::now_ms().saturating_sub(entry.stored_ms);
    u128::from(age) <= max_age.as_millis()
}

impl ResponseCache {
    /// Called by [`tee`] once an answer is whole: stores it unless it failed or used tools
    /// not marked cacheable.
    fn finish(
        &self,
        record: Option<&crate::spend::RequestRecord>,
        api: CallType,
        key: String,
        entry: Entry,
        ttl: Duration,
    ) {
        if let Some(record) = record {
            if record.failed() {
                return;
            }
            if let Some((server, tool)) = record
                .mcp_tools()
                .into_iter()
                .find(|(s, t)| !self.settings.tool_cacheable(s, t))
            {
                tracing::debug!(%server, %tool, "answer not cached: it called a tool not marked cacheable");
                return;
            }
        }
        metrics::counter!("gatehouse_cache_stores_total", "api" => api.as_str()).increment(1);
        self.put(key, entry, ttl);
    }
}
