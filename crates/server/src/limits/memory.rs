//! In-process counters: the default backend, exact within one replica.
//!
//! Keys are spread over shards so concurrent requests for different keys rarely meet on a
//! lock; each key's counters sit behind their own small mutex so one check-and-count is
//! atomic. Idle keys are swept from a shard at most once a minute, on the request path
//! (no background task to own), so memory stays proportional to recently active keys.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::window::{self, Counts, WINDOW_MS};
use super::{Backend, KeyLimits, LimitKind, Permit, Quota, RateStatus, Refusal, Release};

const SHARDS: usize = 16;
/// How long a parallel-limit refusal asks the client to wait: slots free as responses end.
const PARALLEL_RETRY: Duration = Duration::from_secs(1);

/// Counters for one key.
#[derive(Debug, Default)]
struct Counters {
    /// Index of the window `requests.current` and `tokens.current` belong to.
    window: u64,
    requests: Counts,
    tokens: Counts,
    parallel: u64,
}

impl Counters {
    /// Move the counters forward to `now_window`, ageing or clearing old windows.
    fn roll(&mut self, now_window: u64) {
        if now_window == self.window {
            return;
        }
        let age = now_window.saturating_sub(self.window);
        for counts in [&mut self.requests, &mut self.tokens] {
            counts.previous = if age == 1 { counts.current } else { 0 };
            counts.current = 0;
        }
        self.window = now_window;
    }

    /// Idle long enough that both windows are empty once rolled and no request is in flight.
    fn is_idle(&self, now_window: u64) -> bool {
        self.parallel == 0 && now_window.saturating_sub(self.window) >= 2
    }
}

#[derive(Debug, Default)]
pub(super) struct Entry {
    counters: Mutex<Counters>,
}

impl Entry {
    fn lock(&self) -> MutexGuard<'_, Counters> {
        // Counters stay consistent even if a holder panicked: every update is a few stores.
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A parallel slot held by a [`Permit`]; released when the permit drops.
pub(super) struct Slot(Arc<Entry>);

impl Slot {
    pub(super) fn release(self) {
        let mut counters = self.0.lock();
        counters.parallel = counters.parallel.saturating_sub(1);
    }
}

#[derive(Default)]
struct Shard {
    keys: HashMap<Box<str>, Arc<Entry>>,
    last_sweep_window: u64,
}

/// In-memory rate-limit counters (sliding one-minute windows, per key).
pub struct MemoryBackend {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    start: Instant,
    /// Test hook: milliseconds added to the real clock.
    skew_ms: AtomicU64,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend::new()
    }
}

impl MemoryBackend {
    pub fn new() -> Self {
        MemoryBackend {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            start: Instant::now(),
            skew_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        let real = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        real.saturating_add(self.skew_ms.load(Ordering::Relaxed))
    }

    fn shard(&self, key_hash: &str) -> MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(key_hash) as usize) % self.shards.len();
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The key's entry, created on first use; sweeps the shard's idle keys once a window.
    fn entry(&self, key_hash: &str, now_window: u64) -> Arc<Entry> {
        let mut shard = self.shard(key_hash);
        if shard.last_sweep_window != now_window {
            shard.last_sweep_window = now_window;
            // An entry still referenced elsewhere (a permit, a concurrent caller) stays.
            shard.keys.retain(|_, entry| {
                Arc::strong_count(entry) > 1
                    || entry
                        .counters
                        .try_lock()
                        .map_or(true, |c| !c.is_idle(now_window))
            });
        }
        if let Some(entry) = shard.keys.get(key_hash) {
            return Arc::clone(entry);
        }
        let entry = Arc::new(Entry::default());
        shard.keys.insert(key_hash.into(), Arc::clone(&entry));
        entry
    }

    fn decide(&self, key_hash: &str, limits: &KeyLimits) -> Result<Permit, Refusal> {
        let now = self.now_ms();
        let now_window = now / WINDOW_MS;
        let elapsed = now % WINDOW_MS;
        let entry = self.entry(key_hash, now_window);
        let mut counters = entry.lock();
        counters.roll(now_window);

        let status_before = status(&counters, limits, elapsed);
        if let Some(max) = limits.max_parallel
            && counters.parallel >= max
        {
            return Err(Refusal {
                limit: LimitKind::Parallel,
                limit_value: max,
                remaining: 0,
                reset_after: PARALLEL_RETRY,
                status: status_before,
            });
        }
        if let Some(rpm) = limits.rpm
            && !window::fits(counters.requests, elapsed, rpm)
        {
            let counts = counters.requests;
            return Err(refusal(LimitKind::Rpm, rpm, counts, elapsed, status_before));
        }
        if let Some(tpm) = limits.tpm
            && !window::fits(counters.tokens, elapsed, tpm)
        {
            let counts = counters.tokens;
            return Err(refusal(LimitKind::Tpm, tpm, counts, elapsed, status_before));
        }

        if limits.rpm.is_some() {
            counters.requests.current += 1;
        }
        let status_after = status(&counters, limits, elapsed);
        let release = if limits.max_parallel.is_some() {
            counters.parallel += 1;
            drop(counters);
            Release::Memory(Slot(entry))
        } else {
            Release::Nothing
        };
        Ok(Permit {
            status: status_after,
            release,
        })
    }

    fn count_tokens(&self, key_hash: &str, tokens: u64) {
        let now = self.now_ms();
        let now_window = now / WINDOW_MS;
        let entry = self.entry(key_hash, now_window);
        let mut counters = entry.lock();
        counters.roll(now_window);
        counters.tokens.current = counters.tokens.current.saturating_add(tokens);
    }

    #[cfg(test)]
    fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.skew_ms.fetch_add(ms, Ordering::Relaxed);
    }

    #[cfg(test)]
    fn key_count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.keys.len()).unwrap_or(0))
            .sum()
    }
}

fn status(counters: &Counters, limits: &KeyLimits, elapsed: u64) -> RateStatus {
    let quota = |counts: Counts, limit: u64| Quota {
        limit,
        remaining: window::remaining(counts, elapsed, limit),
        reset_after: window::wait(counts, elapsed, limit),
    };
    RateStatus {
        requests: limits.rpm.map(|rpm| quota(counters.requests, rpm)),
        tokens: limits.tpm.map(|tpm| quota(counters.tokens, tpm)),
    }
}

fn refusal(
    kind: LimitKind,
    limit: u64,
    counts: Counts,
    elapsed: u64,
    status: RateStatus,
) -> Refusal {
    Refusal {
        limit: kind,
        limit_value: limit,
        remaining: 0,
        reset_after: window::wait(counts, elapsed, limit),
        status,
    }
}

impl Backend for MemoryBackend {
    async fn admit(&self, key_hash: &str, limits: &KeyLimits) -> Result<Permit, Refusal> {
        self.decide(key_hash, limits)
    }

    fn record_tokens(&self, key_hash: &str, tokens: u64) {
        self.count_tokens(key_hash, tokens);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpm(n: u64) -> KeyLimits {
        KeyLimits {
            rpm: Some(n),
            ..KeyLimits::default()
        }
    }

    /// Move the clock to the start of the next window, so tests don't depend on when they run.
    fn to_next_window(backend: &MemoryBackend) {
        let into = backend.now_ms() % WINDOW_MS;
        backend.advance(Duration::from_millis(WINDOW_MS - into));
    }

    #[test]
    fn rpm_admits_exactly_the_limit_then_refuses_with_a_reset() {
        let backend = MemoryBackend::new();
        to_next_window(&backend);
        let mut admitted = 0;
        let mut last_refusal = None;
        for _ in 0..15 {
            match backend.decide("key", &rpm(10)) {
                Ok(permit) => {
                    admitted += 1;
                    let requests = permit.status().requests.unwrap();
                    assert_eq!(requests.limit, 10);
                    assert_eq!(requests.remaining, 10 - admitted);
                }
                Err(refusal) => last_refusal = Some(refusal),
            }
        }
        assert_eq!(admitted, 10);
        let refusal = last_refusal.unwrap();
        assert_eq!(refusal.limit, LimitKind::Rpm);
        assert_eq!(refusal.limit_value, 10);
        assert_eq!(refusal.remaining, 0);
        // Ten requests at the very start of a window: one more fits 6 s into the next one.
        assert!(refusal.reset_after > Duration::from_secs(60));
        assert!(refusal.reset_after <= Duration::from_secs(66));
        // Other keys are unaffected.
        assert!(backend.decide("other", &rpm(10)).is_ok());
    }

    #[test]
    fn the_window_slides_instead_of_resetting() {
        let backend = MemoryBackend::new();
        to_next_window(&backend);
        for _ in 0..10 {
            assert!(backend.decide("key", &rpm(10)).is_ok());
        }
        // Just into the next window the previous minute still counts almost fully.
        backend.advance(Duration::from_secs(61));
        assert!(backend.decide("key", &rpm(10)).is_err());
        // Half-way through it counts for 5, so 5 more fit — not 10.
        backend.advance(Duration::from_secs(29));
        let admitted = (0..10)
            .filter(|_| backend.decide("key", &rpm(10)).is_ok())
            .count();
        assert_eq!(admitted, 5);
        // Two windows later everything is forgotten.
        backend.advance(Duration::from_secs(120));
        let admitted = (0..12)
            .filter(|_| backend.decide("key", &rpm(10)).is_ok())
            .count();
        assert_eq!(admitted, 10);
    }

    #[test]
    fn parallel_permits_are_released_on_drop() {
        let backend = MemoryBackend::new();
        let limits = KeyLimits {
            max_parallel: Some(2),
            ..KeyLimits::default()
        };
        let first = backend.decide("key", &limits).unwrap();
        let second = backend.decide("key", &limits).unwrap();
        let refused = backend.decide("key", &limits).unwrap_err();
        assert_eq!(refused.limit, LimitKind::Parallel);
        assert_eq!(refused.limit_value, 2);
        assert_eq!(refused.reset_after, PARALLEL_RETRY);
        drop(first);
        let third = backend.decide("key", &limits).unwrap();
        assert!(backend.decide("key", &limits).is_err());
        drop(second);
        drop(third);
        assert!(backend.decide("key", &limits).is_ok());
    }

    #[test]
    fn tpm_refuses_once_recorded_tokens_reach_the_limit() {
        let backend = MemoryBackend::new();
        to_next_window(&backend);
        let limits = KeyLimits {
            tpm: Some(1_000),
            ..KeyLimits::default()
        };
        let permit = backend.decide("key", &limits).unwrap();
        assert_eq!(permit.status().tokens.map(|t| t.remaining), Some(1_000));
        backend.count_tokens("key", 600);
        let permit = backend.decide("key", &limits).unwrap();
        assert_eq!(permit.status().tokens.map(|t| t.remaining), Some(400));
        backend.count_tokens("key", 400);
        let refusal = backend.decide("key", &limits).unwrap_err();
        assert_eq!(refusal.limit, LimitKind::Tpm);
        assert_eq!(refusal.limit_value, 1_000);
        assert_eq!(refusal.status.tokens.map(|t| t.remaining), Some(0));
        assert!(refusal.reset_after > Duration::ZERO);
    }

    #[test]
    fn idle_keys_are_evicted_but_keys_with_permits_stay() {
        let backend = MemoryBackend::new();
        let limits = KeyLimits {
            rpm: Some(100),
            max_parallel: Some(5),
            ..KeyLimits::default()
        };
        let held = backend.decide("busy", &limits).unwrap();
        for i in 0..200 {
            drop(backend.decide(&format!("idle-{i}"), &limits).unwrap());
        }
        assert_eq!(backend.key_count(), 201);
        backend.advance(Duration::from_secs(180));
        // Any request triggers a sweep of its shard; touch every shard.
        // 400 keys over 16 shards reach every shard (a miss has odds below 1e-10).
        for i in 0..400 {
            drop(backend.decide(&format!("fresh-{i}"), &limits));
        }
        assert_eq!(backend.key_count(), 400 + 1);
        // The held permit's key kept its parallel count.
        let one_parallel = KeyLimits {
            max_parallel: Some(1),
            ..KeyLimits::default()
        };
        assert!(backend.decide("busy", &one_parallel).is_err());
        drop(held);
        assert!(backend.decide("busy", &one_parallel).is_ok());
    }

    #[test]
    fn concurrent_admissions_never_exceed_the_limit() {
        let backend = Arc::new(MemoryBackend::new());
        to_next_window(&backend);
        let admitted = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let backend = Arc::clone(&backend);
                let admitted = Arc::clone(&admitted);
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        if backend.decide("shared", &rpm(37)).is_ok() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(admitted.load(Ordering::Relaxed), 37);
    }
}
