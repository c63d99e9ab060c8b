//! Per-key rate limits: requests per minute, tokens per minute and parallel requests.
//!
//! [`Limiter`] fronts one of two backends behind the [`Backend`] trait: [`MemoryBackend`]
//! (default; one process) or [`RedisBackend`] (shared by every replica pointed at the same
//! Redis). A request calls [`Limiter::admit`] before it is forwarded and holds the returned
//! [`Permit`] until its response is finished; dropping the permit frees its parallel slot.
//! After the response, [`Limiter::record_tokens`] counts its tokens against `tpm`.
//! A key with no limits never touches a backend.

mod headers;
mod memory;
mod redis;
mod window;

use std::fmt;
use std::future::Future;
use std::time::Duration;

pub use headers::{headers, refusal_headers};
pub use memory::MemoryBackend;
pub use redis::{RedisBackend, RedisOptions, lazy_connection};

/// The limits configured on one key (`rpm_limit`, `tpm_limit`, `max_parallel_requests`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub max_parallel: Option<u64>,
}

impl KeyLimits {
    /// True when nothing is limited, so admission can skip the backend entirely.
    pub fn is_unlimited(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.max_parallel.is_none()
    }
}

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Rpm,
    Tpm,
    Parallel,
}

impl LimitKind {
    /// The short name used in messages and metric labels: `rpm`, `tpm` or `parallel`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Rpm => "rpm",
            LimitKind::Tpm => "tpm",
            LimitKind::Parallel => "parallel",
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one limit stands after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    pub remaining: u64,
    /// Time until at least one more unit fits.
    pub reset_after: Duration,
}

/// What the response headers report; `None` for a limit the key does not have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateStatus {
    pub requests: Option<Quota>,
    pub tokens: Option<Quota>,
}

/// A refused request: answer 429 with [`refusal_headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "Rate limit exceeded for key: {limit} limit {limit_value} reached; retry after {} s",
    retry_after_secs(*reset_after)
)]
pub struct Refusal {
    pub limit: LimitKind,
    pub limit_value: u64,
    pub remaining: u64,
    pub reset_after: Duration,
    /// The request and token status at the moment of refusal, for the `x-ratelimit-*` headers.
    pub status: RateStatus,
}

impl Refusal {
    /// `Retry-After` in whole seconds, rounded up and at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        retry_after_secs(self.reset_after)
    }
}

fn retry_after_secs(reset_after: Duration) -> u64 {
    let secs = reset_after.as_secs() + u64::from(reset_after.subsec_nanos() > 0);
    secs.max(1)
}

/// Building a limiter failed.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("invalid Redis URL for rate limits: {0}")]
    RedisUrl(#[source] ::redis::RedisError),
    #[error("the Redis rate-limit backend must be created inside a Tokio runtime")]
    NoRuntime,
}

/// Held for the life of an admitted request; dropping it frees the parallel slot.
#[must_use = "dropping the permit at once frees the parallel slot"]
pub struct Permit {
    status: RateStatus,
    release: Release,
}

enum Release {
    Nothing,
    Memory(memory::Slot),
    Redis(redis::Slot),
}

impl Permit {
    /// A permit that limits nothing (no limits configured, or the backend failed open).
    pub fn unlimited() -> Self {
        Permit {
            status: RateStatus::default(),
            release: Release::Nothing,
        }
    }

    /// Limits as they stood right after this request was counted.
    pub fn status(&self) -> &RateStatus {
        &self.status
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let holds = match self.release {
            Release::Nothing => "nothing",
            Release::Memory(_) => "memory slot",
            Release::Redis(_) => "redis slot",
        };
        f.debug_struct("Permit")
            .field("status", &self.status)
            .field("holds", &holds)
            .finish()
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.release, Release::Nothing) {
            Release::Nothing => {}
            Release::Memory(slot) => slot.release(),
            Release::Redis(slot) => slot.release(),
        }
    }
}

/// A store of per-key counters. Both implementations apply the rules in `window.rs`.
pub trait Backend: Send + Sync {
    /// Check and count one request. Only called when `limits` limits something.
    fn admit(
        &self,
        key_hash: &str,
        limits: &KeyLimits,
    ) -> impl Future<Output = Result<Permit, Refusal>> + Send;

    /// Count `tokens` used by a finished request against the key's tokens-per-minute.
    fn record_tokens(&self, key_hash: &str, tokens: u64);
}

enum Store {
    Memory(MemoryBackend),
    Redis(RedisBackend),
}

/// The rate limiter the request path calls.
pub struct Limiter {
    store: Store,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match self.store {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        };
        f.debug_struct("Limiter")
            .field("backend", &backend)
            .finish()
    }
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter::memory()
    }
}

impl Limiter {
    /// In-process counters: limits hold per replica.
    pub fn memory() -> Self {
        Limiter {
            store: Store::Memory(MemoryBackend::new()),
        }
    }

    /// Redis when a URL is given (limits hold across replicas), memory otherwise.
    /// With Redis it must be called inside a Tokio runtime; it connects in the background.
    pub fn from_settings(redis_url: Option<String>) -> Result<Self, LimitError> {
        match redis_url {
            None => Ok(Limiter::memory()),
            Some(url) => Limiter::redis(&url, RedisOptions::default()),
        }
    }

    /// Redis backend with explicit options (key prefix, timeouts).
    pub fn redis(url: &str, options: RedisOptions) -> Result<Self, LimitError> {
        Ok(Limiter {
            store: Store::Redis(RedisBackend::connect(url, options)?),
        })
    }

    /// `"memory"` or `"redis"`, for start-up logs.
    pub fn backend_name(&self) -> &'static str {
        match self.store {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }

    /// Check the key's limits and count this request. A key without limits gets an empty
    /// permit without any lookup. With Redis unreachable this replica's own counters decide.
    pub async fn admit(&self, key_hash: &str, limits: &KeyLimits) -> Result<Permit, Refusal> {
        if limits.is_unlimited() {
            return Ok(Permit::unlimited());
        }
        let outcome = match &self.store {
            Store::Memory(m) => m.admit(key_hash, limits).await,
            Store::Redis(r) => r.admit(key_hash, limits).await,
        };
        if let Err(refusal) = &outcome {
            metrics::counter!("gatehouse_ratelimit_refusals_total", "limit" => refusal.limit.as_str())
                .increment(1);
        }
        outcome
    }

    /// Count the tokens of a finished response. Does nothing for keys without `tpm`;
    /// with Redis the update is sent in the background (bounded, never awaited).
    pub fn record_tokens(&self, key_hash: &str, limits: &KeyLimits, tokens: u64) {
        if limits.tpm.is_none() || tokens == 0 {
            return;
        }
        match &self.store {
            Store::Memory(m) => m.record_tokens(key_hash, tokens),
            Store::Redis(r) => r.record_tokens(key_hash, tokens),
        }
    }

    /// How many decisions were made with local counters because Redis was unreachable.
    pub fn local_fallback_count(&self) -> u64 {
        match &self.store {
            Store::Memory(_) => 0,
            Store::Redis(r) => r.local_fallback_count(),
        }
    }

    /// `None` without Redis; otherwise whether the last call to it worked (when it did
    /// not, limits hold per replica until it does).
    pub fn redis_up(&self) -> Option<bool> {
        match &self.store {
            Store::Memory(_) => None,
            Store::Redis(r) => Some(r.is_up()),
        }
    }
}

/// The Redis URL from the operator's settings: an explicit URL (`REDIS_URL` or
/// `router_settings.redis_url`) wins; otherwise one is built from `redis_host`, `redis_port`
/// (default 6379) and `redis_password`. `None` when nothing names a Redis.
pub fn redis_url(
    host: Option<&str>,
    port: Option<u16>,
    password: Option<&str>,
    url: Option<&str>,
) -> Option<String> {
    if let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) {
        return Some(url.to_string());
    }
    let host = host.map(str::trim).filter(|h| !h.is_empty())?;
    let port = port.unwrap_or(6379);
    // An IPv6 literal needs brackets inside a URL.
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    match password.filter(|p| !p.is_empty()) {
        Some(password) => Some(format!(
            "redis://:{}@{host}:{port}",
            percent_encode_userinfo(password)
        )),
        None => Some(format!("redis://{host}:{port}")),
    }
}

/// Escape everything but RFC 3986 unreserved characters, so any password survives the URL.
fn percent_encode_userinfo(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_url_prefers_an_explicit_url() {
        assert_eq!(
            redis_url(Some("h"), Some(1), None, Some("redis://x:7/2")).as_deref(),
            Some("redis://x:7/2")
        );
    }

    #[test]
    fn redis_url_is_built_from_host_port_and_password() {
        assert_eq!(
            redis_url(Some("cache.lan"), None, None, None).as_deref(),
            Some("redis://cache.lan:6379")
        );
        assert_eq!(
            redis_url(Some("10.0.0.5"), Some(6380), Some("p@ss:w/rd"), None).as_deref(),
            Some("redis://:p%40ss%3Aw%2Frd@10.0.0.5:6380")
        );
        assert_eq!(
            redis_url(Some("::1"), Some(6379), None, None).as_deref(),
            Some("redis://[::1]:6379")
        );
        assert_eq!(redis_url(None, Some(6379), Some("pw"), None), None);
        assert_eq!(redis_url(Some(" "), None, None, Some("")), None);
    }

    #[test]
    fn built_urls_parse_with_the_password_intact() {
        let url =
            redis_url(Some("10.0.0.5"), Some(6380), Some("p@ss:w/rd"), None).unwrap_or_default();
        let info = ::redis::IntoConnectionInfo::into_connection_info(url.as_str()).unwrap();
        assert_eq!(info.redis_settings().password(), Some("p@ss:w/rd"));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1_000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1_001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[tokio::test]
    async fn keys_without_limits_are_admitted_without_counting() {
        let limiter = Limiter::memory();
        for _ in 0..100 {
            let permit = limiter.admit("k", &KeyLimits::default()).await.unwrap();
            assert_eq!(permit.status(), &RateStatus::default());
        }
        // Nothing was counted: a limit set afterwards starts from zero.
        let limits = KeyLimits {
            rpm: Some(1),
            ..KeyLimits::default()
        };
        assert!(limiter.admit("k", &limits).await.is_ok());
        assert!(limiter.admit("k", &limits).await.is_err());
    }

    #[test]
    fn permits_and_admission_can_cross_threads() {
        // The request path holds permits inside response bodies and awaits `admit` in
        // spawned tasks; both need `Send`.
        fn send<T: Send>(_: &T) {}
        fn sync<T: Send + Sync>() {}
        sync::<Limiter>();
        sync::<Permit>();
        let limiter = Limiter::memory();
        send(&limiter.admit("k", &KeyLimits::default()));
    }

    #[test]
    fn refusal_message_names_the_limit() {
        let refusal = Refusal {
            limit: LimitKind::Rpm,
            limit_value: 10,
            remaining: 0,
            reset_after: Duration::from_millis(2_500),
            status: RateStatus::default(),
        };
        assert_eq!(
            refusal.to_string(),
            "Rate limit exceeded for key: rpm limit 10 reached; retry after 3 s"
        );
    }
}
