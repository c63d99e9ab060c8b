//! Counters in Redis, shared by every replica using the same Redis and key prefix.
//!
//! One Lua script checks and counts a request atomically (parallel, rpm, tpm), using the
//! Redis server's clock so replicas agree on window boundaries. Keys, per limited API key:
//! `<prefix>{<key_hash>}:r:<window>` (requests), `:t:<window>` (tokens), `:p` (requests in
//! flight). Window keys expire after two windows; the parallel counter carries a TTL,
//! refreshed on every admission, so slots leaked by a crashed replica free themselves.
//!
//! Redis trouble never blocks a request for long: every call is bounded by a short timeout,
//! and after a failure the limiter decides with this replica's own in-memory counters
//! (each replica then enforces the full limit on its own), says so once in the log and in
//! `gatehouse_redis_up`, and does not try Redis again for a short back-off. The first
//! decision that reaches Redis again rejoins the shared counters (and says so).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Semaphore;

use super::memory::MemoryBackend;
use super::window::{self, Counts, WINDOW_MS};
use super::{
    Backend, KeyLimits, LimitError, LimitKind, Permit, Quota, RateStatus, Refusal, Release,
};

/// Checks every limit and, when all pass, counts the request. Mirrors `window::fits`.
/// Returns {verdict (0 ok, 1 parallel, 2 rpm, 3 tpm), ms into window, req cur, req prev,
/// tok cur, tok prev, parallel}; counts are after counting when admitted.
const ADMIT_LUA: &str = r"
local base = KEYS[1]
local rpm, tpm, maxp, pttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = math.floor(now / 60000)
local elapsed = now - win * 60000
local weight = (60000 - elapsed) / 60000
local function get(key) return tonumber(redis.call('GET', key) or '0') end
local rk, tk, pk = base .. ':r:' .. win, base .. ':t:' .. win, base .. ':p'
local rc, rp, tc, tp, par = 0, 0, 0, 0, 0
if rpm > 0 then rc = get(rk); rp = get(base .. ':r:' .. (win - 1)) end
if tpm > 0 then tc = get(tk); tp = get(base .. ':t:' .. (win - 1)) end
if maxp > 0 then par = get(pk) end
local verdict = 0
if maxp > 0 and par >= maxp then verdict = 1
elseif rpm > 0 and rp * weight + rc + 1 > rpm then verdict = 2
elseif tpm > 0 and tp * weight + tc + 1 > tpm then verdict = 3
end
if verdict == 0 then
  if rpm > 0 then rc = redis.call('INCR', rk); redis.call('PEXPIRE', rk, 120000) end
  if maxp > 0 then par = redis.call('INCR', pk); redis.call('PEXPIRE', pk, pttl) end
end
return {verdict, elapsed, rc, rp, tc, tp, par}
";

/// Frees a parallel slot; removes the counter at zero so an expired-then-released slot
/// can never leave it negative.
const RELEASE_LUA: &str = r"
local v = redis.call('DECR', KEYS[1])
if v <= 0 then redis.call('DEL', KEYS[1]) end
return v
";

/// Adds tokens to the current window (by the server's clock).
const TOKENS_LUA: &str = r"
local t = redis.call('TIME')
local win = math.floor((tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)) / 60000)
local key = KEYS[1] .. ':t:' .. win
redis.call('INCRBY', key, ARGV[1])
redis.call('PEXPIRE', key, 120000)
return 1
";

const PARALLEL_RETRY: Duration = Duration::from_secs(1);

/// Tuning for [`RedisBackend`]; the defaults suit a Redis on the same LAN.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Prepended to every key, e.g. `gatehouse:`; tests use a unique prefix each.
    pub prefix: String,
    /// Longest a request waits on Redis before failing open.
    pub timeout: Duration,
    /// Longest a background update (slot release, token count) may take.
    pub background_timeout: Duration,
    /// After a failure, skip Redis (fail open at once) for this long.
    pub backoff: Duration,
    /// Safety TTL of the in-flight counter, refreshed on every admission.
    pub parallel_ttl: Duration,
    /// Most background updates in flight; beyond that they are dropped and counted.
    pub max_background: usize,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            prefix: "gatehouse:".to_string(),
            timeout: Duration::from_millis(50),
            background_timeout: Duration::from_millis(500),
            backoff: Duration::from_secs(1),
            parallel_ttl: Duration::from_secs(600),
            max_background: 1024,
        }
    }
}

struct Shared {
    conn: ConnectionManager,
    admit: Script,
    release: Script,
    tokens: Script,
    options: RedisOptions,
    background: Arc<Semaphore>,
    start: Instant,
    /// Milliseconds since `start` before which Redis is not tried (decide locally at once).
    skip_until_ms: AtomicU64,
    /// Decisions made with the local counters because Redis was unreachable.
    local: AtomicU64,
    /// The last call to Redis failed (cleared, with a log line, by the next that works).
    down: std::sync::atomic::AtomicBool,
    fallback: MemoryBackend,
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn base(&self, key_hash: &str) -> String {
        // The hash tag keeps one key's counters in one slot should the Redis be a cluster.
        format!("{}{{{key_hash}}}", self.options.prefix)
    }

    fn in_backoff(&self) -> bool {
        self.now_ms() < self.skip_until_ms.load(Ordering::Relaxed)
    }

    /// Count a failed call and stop trying Redis for the back-off. Warns once per outage.
    fn failed(&self, op: &'static str, error: &dyn std::fmt::Display) {
        metrics::counter!("gatehouse_ratelimit_redis_errors_total", "op" => op).increment(1);
        let until = self
            .now_ms()
            .saturating_add(u64::try_from(self.options.backoff.as_millis()).unwrap_or(u64::MAX));
        self.skip_until_ms.store(until, Ordering::Relaxed);
        if !self.down.swap(true, Ordering::Relaxed) {
            metrics::gauge!("gatehouse_redis_up").set(0.0);
            tracing::error!(op, %error, "Redis unreachable: rate limits are now enforced per replica, in memory, until it is back");
        }
    }

    /// A call to Redis worked: rejoin the shared counters if we had left them.
    fn succeeded(&self) {
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::Relaxed) {
            metrics::gauge!("gatehouse_redis_up").set(1.0);
            tracing::warn!("Redis is back: rate limits are shared across replicas again");
        }
    }

    async fn local(&self, key_hash: &str, limits: &KeyLimits) -> Result<Permit, Refusal> {
        self.local.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("gatehouse_ratelimit_local_fallback_total").increment(1);
        self.fallback.admit(key_hash, limits).await
    }

    /// Run `op` in the background, bounded in number and time; dropped (and counted) when
    /// too many are already in flight or there is no runtime.
    fn spawn_bounded<F>(self: &Arc<Self>, op: &'static str, work: F)
    where
        F: std::future::Future<Output = redis::RedisResult<i64>> + Send + 'static,
    {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            metrics::counter!("gatehouse_ratelimit_background_dropped_total", "op" => op)
                .increment(1);
            return;
        };
        let Ok(slot) = Arc::clone(&self.background).try_acquire_owned() else {
            metrics::counter!("gatehouse_ratelimit_background_dropped_total", "op" => op)
                .increment(1);
            return;
        };
        let shared = Arc::clone(self);
        let limit = self.options.background_timeout;
        // Short-lived by construction: the timeout ends it, the semaphore bounds how many.
        handle.spawn(async move {
            let _slot = slot;
            match tokio::time::timeout(limit, work).await {
                Ok(Ok(_)) => shared.succeeded(),
                Ok(Err(error)) => shared.failed(op, &error),
                Err(_) => shared.failed(op, &"timed out"),
            }
        });
    }
}

/// A parallel slot in Redis, released in the background when its permit drops.
pub(super) struct Slot {
    shared: Arc<Shared>,
    key: String,
}

impl Slot {
    pub(super) fn release(self) {
        let Slot { shared, key } = self;
        let mut conn = shared.conn.clone();
        let script = shared.release.clone();
        shared.spawn_bounded("release", async move {
            script.key(key).invoke_async::<i64>(&mut conn).await
        });
    }
}

/// The gateway's one way to reach Redis from the request path (rate limits, the response
/// cache): a connection manager that connects in the background and reconnects on its
/// own, with few, quick attempts — callers' own timeouts and back-off do the rest.
pub fn lazy_connection(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_secs(1))
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)));
    client.get_connection_manager_lazy(config)
}

/// Rate-limit counters shared through Redis.
pub struct RedisBackend {
    shared: Arc<Shared>,
}

impl RedisBackend {
    /// Set up the backend; the connection is made in the background, so this returns at once
    /// even when Redis is down. Must run inside a Tokio runtime.
    pub fn connect(url: &str, options: RedisOptions) -> Result<Self, LimitError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(LimitError::NoRuntime);
        }
        let conn = lazy_connection(url).map_err(LimitError::RedisUrl)?;
        let shared = Arc::new(Shared {
            conn,
            admit: Script::new(ADMIT_LUA),
            release: Script::new(RELEASE_LUA),
            tokens: Script::new(TOKENS_LUA),
            background: Arc::new(Semaphore::new(options.max_background.max(1))),
            options,
            start: Instant::now(),
            skip_until_ms: AtomicU64::new(0),
            local: AtomicU64::new(0),
            down: std::sync::atomic::AtomicBool::new(false),
            fallback: MemoryBackend::new(),
        });
        metrics::gauge!("gatehouse_redis_up").set(1.0);
        // Connect and load the admit script now rather than on the first request.
        let mut conn = shared.conn.clone();
        let script = shared.admit.clone();
        shared.spawn_bounded("connect", async move {
            script.load_async(&mut conn).await.map(|_| 0)
        });
        Ok(RedisBackend { shared })
    }

    /// Decisions made with local counters so far (Redis unreachable, slow or erroring).
    pub fn local_fallback_count(&self) -> u64 {
        self.shared.local.load(Ordering::Relaxed)
    }

    /// False from a failed call to Redis until the next one that works.
    pub fn is_up(&self) -> bool {
        !self.shared.down.load(Ordering::Relaxed)
    }

    async fn decide(&self, key_hash: &str, limits: &KeyLimits) -> Result<Permit, Refusal> {
        let shared = &self.shared;
        if shared.in_backoff() {
            return shared.local(key_hash, limits).await;
        }
        let base = shared.base(key_hash);
        let mut conn = shared.conn.clone();
        let mut invocation = shared.admit.key(&base);
        invocation
            .arg(limits.rpm.unwrap_or(0))
            .arg(limits.tpm.unwrap_or(0))
            .arg(limits.max_parallel.unwrap_or(0))
            .arg(
                u64::try_from(shared.options.parallel_ttl.as_millis())
                    .unwrap_or(u64::MAX)
                    .max(1),
            );
        let reply = tokio::time::timeout(
            shared.options.timeout,
            invocation.invoke_async::<Vec<i64>>(&mut conn),
        )
        .await;
        let values = match reply {
            Ok(Ok(values)) => values,
            Ok(Err(error)) => {
                shared.failed("admit", &error);
                return shared.local(key_hash, limits).await;
            }
            Err(_) => {
                shared.failed("admit", &"timed out");
                return shared.local(key_hash, limits).await;
            }
        };
        let Some(reply) = AdmitReply::parse(&values) else {
            shared.failed("admit", &"unexpected script reply");
            return shared.local(key_hash, limits).await;
        };
        shared.succeeded();
        reply.into_outcome(limits, || Slot {
            shared: Arc::clone(shared),
            key: format!("{base}:p"),
        })
    }
}

/// The admit script's reply, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AdmitReply {
    verdict: i64,
    elapsed: u64,
    requests: Counts,
    tokens: Counts,
}

impl AdmitReply {
    fn parse(values: &[i64]) -> Option<Self> {
        let n = |i: usize| values.get(i).map(|v| u64::try_from(*v).unwrap_or(0));
        Some(AdmitReply {
            verdict: *values.first()?,
            elapsed: n(1)?,
            requests: Counts {
                current: n(2)?,
                previous: n(3)?,
            },
            tokens: Counts {
                current: n(4)?,
                previous: n(5)?,
            },
        })
    }

    fn status(&self, limits: &KeyLimits) -> RateStatus {
        let quota = |counts: Counts, limit: u64| Quota {
            limit,
            remaining: window::remaining(counts, self.elapsed, limit),
            reset_after: window::wait(counts, self.elapsed, limit),
        };
        RateStatus {
            requests: limits.rpm.map(|rpm| quota(self.requests, rpm)),
            tokens: limits.tpm.map(|tpm| quota(self.tokens, tpm)),
        }
    }

    fn into_outcome(
        self,
        limits: &KeyLimits,
        slot: impl FnOnce() -> Slot,
    ) -> Result<Permit, Refusal> {
        let status = self.status(limits);
        let refuse = |limit: LimitKind, value: u64, reset_after: Duration| Refusal {
            limit,
            limit_value: value,
            remaining: 0,
            reset_after,
            status,
        };
        let elapsed = self.elapsed.min(WINDOW_MS);
        match (self.verdict, limits) {
            (0, _) => Ok(Permit {
                status,
                release: if limits.max_parallel.is_some() {
                    Release::Redis(slot())
                } else {
                    Release::Nothing
                },
            }),
            (
                1,
                KeyLimits {
                    max_parallel: Some(max),
                    ..
                },
            ) => Err(refuse(LimitKind::Parallel, *max, PARALLEL_RETRY)),
            (2, KeyLimits { rpm: Some(rpm), .. }) => Err(refuse(
                LimitKind::Rpm,
                *rpm,
                window::wait(self.requests, elapsed, *rpm),
            )),
            (3, KeyLimits { tpm: Some(tpm), .. }) => Err(refuse(
                LimitKind::Tpm,
                *tpm,
                window::wait(self.tokens, elapsed, *tpm),
            )),
            // A verdict for a limit we did not send cannot happen; admit rather than guess.
            _ => Ok(Permit::unlimited()),
        }
    }
}

impl Backend for RedisBackend {
    async fn admit(&self, key_hash: &str, limits: &KeyLimits) -> Result<Permit, Refusal> {
        self.decide(key_hash, limits).await
    }

    fn record_tokens(&self, key_hash: &str, tokens: u64) {
        let shared = &self.shared;
        // The local counters see every token, so a fallback decision is as strict as it
        // can be; the shared ones too unless Redis is known to be down.
        shared.fallback.record_tokens(key_hash, tokens);
        if shared.in_backoff() {
            return;
        }
        let mut conn = shared.conn.clone();
        let script = shared.tokens.clone();
        let base = shared.base(key_hash);
        shared.spawn_bounded("tokens", async move {
            script
                .key(base)
                .arg(tokens)
                .invoke_async::<i64>(&mut conn)
                .await
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_decode_into_the_same_status_as_memory() {
        let reply = AdmitReply::parse(&[0, 30_000, 3, 10, 0, 0, 1]).unwrap();
        let limits = KeyLimits {
            rpm: Some(10),
            tpm: None,
            max_parallel: None,
        };
        let permit = reply
            .into_outcome(&limits, || unreachable!("no parallel limit"))
            .unwrap();
        // 10 * 0.5 + 3 = 8 used of 10.
        assert_eq!(permit.status().requests.map(|q| q.remaining), Some(2));
        assert_eq!(permit.status().tokens, None);
    }

    #[test]
    fn refusal_verdicts_map_to_the_limit_that_refused() {
        let limits = KeyLimits {
            rpm: Some(5),
            tpm: Some(100),
            max_parallel: Some(2),
        };
        let parse = |v: &[i64]| AdmitReply::parse(v).unwrap();
        let rpm = parse(&[2, 0, 5, 0, 0, 0, 0])
            .into_outcome(&limits, || unreachable!())
            .unwrap_err();
        assert_eq!((rpm.limit, rpm.limit_value), (LimitKind::Rpm, 5));
        assert_eq!(
            rpm.reset_after,
            window::wait(
                Counts {
                    previous: 0,
                    current: 5
                },
                0,
                5
            )
        );
        let tpm = parse(&[3, 0, 1, 0, 100, 0, 0])
            .into_outcome(&limits, || unreachable!())
            .unwrap_err();
        assert_eq!((tpm.limit, tpm.limit_value), (LimitKind::Tpm, 100));
        let par = parse(&[1, 0, 0, 0, 0, 0, 2])
            .into_outcome(&limits, || unreachable!())
            .unwrap_err();
        assert_eq!(
            (par.limit, par.reset_after),
            (LimitKind::Parallel, PARALLEL_RETRY)
        );
        assert!(AdmitReply::parse(&[0, 1]).is_none());
    }
}
