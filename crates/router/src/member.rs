//! One deployment as the router sees it: what the config says about it ([`MemberSpec`])
//! and what it has been doing ([`MemberStats`]).

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::failure::{Failure, FailureClass};

/// The routing facts of one deployment, from `model_list`.
#[derive(Debug, Clone)]
pub struct MemberSpec<D> {
    /// `model_info.id`, or `<model_name>#<index>`: unique across the config.
    pub id: String,
    /// What the caller sends requests to (the server's resolved deployment).
    pub deployment: Arc<D>,
    /// `litellm_params.weight` (simple-shuffle).
    pub weight: Option<f64>,
    /// `litellm_params.rpm` / `tpm`: the deployment's own limits per minute.
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    /// `litellm_params.order`: lower is tried first; unset comes after every set value.
    pub order: Option<u32>,
    /// `litellm_params.tags` (tag routing).
    pub tags: Vec<String>,
    /// USD per input + output token (cost-based routing); unknown costs sort last.
    pub cost_per_token: Option<f64>,
    /// `model_info.max_input_tokens` (pre-call context-window checks).
    pub max_input_tokens: Option<u64>,
    /// `litellm_params.max_retries`: retries on this same deployment before moving on.
    pub max_retries: u32,
}

pub struct Member<D> {
    spec: MemberSpec<D>,
    /// The group (`model_name`) it serves.
    group: String,
    stats: MemberStats,
}

impl<D> Member<D> {
    pub(crate) fn new(spec: MemberSpec<D>, group: String) -> Self {
        Self {
            spec,
            group,
            stats: MemberStats::default(),
        }
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn id(&self) -> &str {
        &self.spec.id
    }

    pub fn spec(&self) -> &MemberSpec<D> {
        &self.spec
    }

    pub fn deployment(&self) -> &Arc<D> {
        &self.spec.deployment
    }

    pub fn stats(&self) -> &MemberStats {
        &self.stats
    }

    /// Whether the deployment's own rpm/tpm leave room for one more request of
    /// `tokens` (estimated) in the current minute.
    /// Counts every replica's use of the deployment (see [`MemberStats::usage`]).
    pub(crate) fn has_capacity(&self, minute: u64, tokens: u64) -> bool {
        if self.spec.rpm.is_none() && self.spec.tpm.is_none() {
            return true;
        }
        let (requests, used) = self.stats.usage(minute);
        let rpm_ok = self.spec.rpm.is_none_or(|rpm| requests < rpm);
        let tpm_ok = self.spec.tpm.is_none_or(|tpm| used + tokens <= tpm);
        rpm_ok && tpm_ok
    }
}

/// Live state of one deployment. Cheap to read on the hot path: atomics, and one small
/// uncontended lock for the per-minute window.
///
/// With several replicas, each keeps its own counters and learns the others' from a
/// periodic [`Report`] exchange (the server does it through Redis); the strategies and
/// the rpm/tpm checks read the sum, so replicas route as one, a sync interval late.
#[derive(Default)]
pub struct MemberStats {
    in_flight: AtomicU64,
    /// Moving average of the latency (time to first token for streams), microseconds;
    /// 0 until the first success.
    latency_us: AtomicU64,
    /// Wall-clock millisecond until which the deployment is out of rotation.
    cooldown_until_ms: AtomicU64,
    successes: AtomicU64,
    failures: AtomicU64,
    /// Failures since the last success (passive health).
    consecutive_failures: AtomicU64,
    window: Mutex<Window>,
    failure_window: Mutex<FailureWindow>,
    /// The other replicas' figures, as last reported.
    remote_in_flight: AtomicU64,
    remote_latency_us: AtomicU64,
    /// The other replicas' requests and tokens in `remote_minute`. Three separate
    /// atomics: a read racing a report may mix two reports, which only blurs a figure
    /// that is a sync interval old anyway.
    remote_minute: AtomicU64,
    remote_requests: AtomicU64,
    remote_tokens: AtomicU64,
}

/// What one replica says about one deployment, for the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub in_flight: u64,
    /// Latency average in microseconds, 0 when unmeasured.
    pub latency_us: u64,
    /// The minute (`now_ms / 60_000`) that `requests` and `tokens` count.
    pub minute: u64,
    pub requests: u64,
    pub tokens: u64,
}

impl Report {
    /// Adds another replica's report: counters add up, latencies average over the
    /// replicas that measured one, usage counts only for the same minute.
    pub fn merge(&mut self, other: &Report, minute: u64) {
        // Saturating: reports come from Redis, which other processes can write.
        self.in_flight = self.in_flight.saturating_add(other.in_flight);
        if other.latency_us > 0 {
            self.latency_us = match self.latency_us {
                0 => other.latency_us,
                mine => mine / 2 + other.latency_us / 2,
            };
        }
        self.minute = minute;
        if other.minute == minute {
            self.requests = self.requests.saturating_add(other.requests);
            self.tokens = self.tokens.saturating_add(other.tokens);
        }
    }
}

/// Requests and tokens of the current calendar minute (deployment rpm/tpm, as LiteLLM
/// counts them).
#[derive(Debug, Clone, Copy, Default)]
pub struct Window {
    pub minute: u64,
    pub requests: u64,
    pub tokens: u64,
}

/// Failures within a minute of the first one (`allowed_fails`): a window that opens at a
/// failure, as LiteLLM's expiring counter does, so a burst across a minute's turn still
/// counts together.
#[derive(Debug, Clone, Copy, Default)]
struct FailureWindow {
    since_ms: u64,
    all: u32,
    /// By [`FailureClass`], for `allowed_fails_policy`.
    by_class: [u32; 6],
}

const FAILURE_WINDOW_MS: u64 = 60_000;

/// Weight of the newest sample in the latency average.
const LATENCY_ALPHA: f64 = 0.3;

impl MemberStats {
    /// Requests in flight on this replica.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Requests in flight on every replica (this one's and the others' last reports).
    pub fn in_flight_everywhere(&self) -> u64 {
        self.in_flight()
            .saturating_add(self.remote_in_flight.load(Ordering::Relaxed))
    }

    /// The latency average, `None` before the first success anywhere; with other
    /// replicas, the mean of this replica's average and theirs.
    pub fn latency(&self) -> Option<Duration> {
        let local = self.latency_us.load(Ordering::Relaxed);
        let remote = self.remote_latency_us.load(Ordering::Relaxed);
        match (local, remote) {
            (0, 0) => None,
            (us, 0) | (0, us) => Some(Duration::from_micros(us)),
            (a, b) => Some(Duration::from_micros(a / 2 + b / 2)),
        }
    }

    /// Requests and tokens of `minute` on every replica.
    pub fn usage(&self, minute: u64) -> (u64, u64) {
        let local = self.window(minute);
        if self.remote_minute.load(Ordering::Relaxed) == minute {
            (
                local
                    .requests
                    .saturating_add(self.remote_requests.load(Ordering::Relaxed)),
                local
                    .tokens
                    .saturating_add(self.remote_tokens.load(Ordering::Relaxed)),
            )
        } else {
            (local.requests, local.tokens)
        }
    }

    /// This replica's own figures, for the others.
    pub fn report(&self, minute: u64) -> Report {
        let w = self.window(minute);
        Report {
            in_flight: self.in_flight(),
            latency_us: self.latency_us.load(Ordering::Relaxed),
            minute,
            requests: w.requests,
            tokens: w.tokens,
        }
    }

    /// Replaces what the other replicas said (the sum of their reports).
    pub(crate) fn set_remote(&self, others: &Report) {
        self.remote_in_flight
            .store(others.in_flight, Ordering::Relaxed);
        self.remote_latency_us
            .store(others.latency_us, Ordering::Relaxed);
        self.remote_requests
            .store(others.requests, Ordering::Relaxed);
        self.remote_tokens.store(others.tokens, Ordering::Relaxed);
        self.remote_minute.store(others.minute, Ordering::Relaxed);
    }

    pub fn successes(&self) -> u64 {
        self.successes.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn consecutive_failures(&self) -> u64 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    pub fn cooldown_until_ms(&self) -> u64 {
        self.cooldown_until_ms.load(Ordering::Relaxed)
    }

    pub fn is_cooling(&self, now_ms: u64) -> bool {
        self.cooldown_until_ms() > now_ms
    }

    /// The current minute's counters (zero when the minute has turned).
    pub fn window(&self, minute: u64) -> Window {
        let w = *self.lock();
        if w.minute == minute {
            w
        } else {
            Window {
                minute,
                ..Window::default()
            }
        }
    }

    /// A health check answered: the run of failures is over (latency is not sampled:
    /// a one-token probe says nothing about real requests).
    pub(crate) fn record_probe_success(&self) {
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    pub(crate) fn cool_until(&self, until_ms: u64) {
        self.cooldown_until_ms
            .fetch_max(until_ms, Ordering::Relaxed);
    }

    pub(crate) fn started(&self, minute: u64) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.with_window(minute, |w| w.requests += 1);
    }

    pub(crate) fn record_success(&self, latency: Duration) {
        self.successes.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        let sample = latency.as_micros().clamp(1, u64::MAX as u128) as f64;
        // A lost update under a race only skips one sample of an average.
        let old = self.latency_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            old as f64 * (1.0 - LATENCY_ALPHA) + sample * LATENCY_ALPHA
        };
        self.latency_us
            .store(new.max(1.0) as u64, Ordering::Relaxed);
    }

    /// Counts a failure at `now_ms`; returns the failures of the last minute (all, and
    /// of its class).
    pub(crate) fn record_failure(&self, now_ms: u64, failure: Failure) -> (u32, u32) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
        let class = class_index(failure.class());
        let mut w = self
            .failure_window
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if w.all == 0 || now_ms.saturating_sub(w.since_ms) >= FAILURE_WINDOW_MS {
            *w = FailureWindow {
                since_ms: now_ms,
                ..FailureWindow::default()
            };
        }
        w.all += 1;
        w.by_class[class] += 1;
        (w.all, w.by_class[class])
    }

    pub(crate) fn record_tokens(&self, minute: u64, tokens: u64) {
        self.with_window(minute, |w| w.tokens += tokens);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with_window<T>(&self, minute: u64, f: impl FnOnce(&mut Window) -> T) -> T {
        let mut w = self.lock();
        if w.minute != minute {
            *w = Window {
                minute,
                ..Window::default()
            };
        }
        f(&mut w)
    }
}

fn class_index(class: FailureClass) -> usize {
    match class {
        FailureClass::Timeout => 0,
        FailureClass::RateLimit => 1,
        FailureClass::ContentPolicy => 2,
        FailureClass::Auth => 3,
        FailureClass::BadRequest => 4,
        FailureClass::InternalServer => 5,
    }
}

/// Holds one in-flight slot of a deployment (least-busy routing) until dropped: keep it
/// with the response, or the stream, that the attempt produced.
pub struct InFlight<D> {
    member: Arc<Member<D>>,
}

impl<D> InFlight<D> {
    pub(crate) fn new(member: Arc<Member<D>>) -> Self {
        Self { member }
    }
}

impl<D> Drop for InFlight<D> {
    fn drop(&mut self) {
        self.member.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_llm::ErrorKind;

    const DOWN: Failure = Failure::Vendor(ErrorKind::Upstream);

    #[test]
    fn failures_count_within_a_minute_of_the_first_even_across_a_minutes_turn() {
        let stats = MemberStats::default();
        let turn = 120_000; // a calendar minute boundary
        assert_eq!(stats.record_failure(turn - 1_000, DOWN).0, 1);
        assert_eq!(stats.record_failure(turn + 1_000, DOWN).0, 2);
        assert_eq!(stats.record_failure(turn + 58_000, DOWN).0, 3);
        // A minute after the first, the count starts again.
        assert_eq!(stats.record_failure(turn + 59_000, DOWN).0, 1);
    }
}
