//! Sliding-window arithmetic shared by both backends.
//!
//! Counters live in fixed one-minute windows; the previous window is weighted by the part of
//! it that still overlaps the last 60 seconds ("fixed window with interpolation"). That costs
//! two integers per limit instead of a timestamp per request, and it never lets a burst at a
//! window boundary double the rate the way plain fixed windows do. The Redis Lua script in
//! `redis.rs` applies the same rule; keep the two in step.

use std::time::Duration;

/// Length of one counting window, in milliseconds.
pub const WINDOW_MS: u64 = 60_000;

/// Counts for one limit: the current window and the one before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub previous: u64,
    pub current: u64,
}

/// Weight of the previous window `elapsed_ms` into the current one (1.0 at its start).
fn previous_weight(elapsed_ms: u64) -> f64 {
    let elapsed = elapsed_ms.min(WINDOW_MS);
    (WINDOW_MS - elapsed) as f64 / WINDOW_MS as f64
}

/// Estimated use over the last 60 seconds.
pub fn estimate(counts: Counts, elapsed_ms: u64) -> f64 {
    counts.previous as f64 * previous_weight(elapsed_ms) + counts.current as f64
}

/// Whether one more unit (a request, or a first token) fits under `limit`.
pub fn fits(counts: Counts, elapsed_ms: u64, limit: u64) -> bool {
    estimate(counts, elapsed_ms) + 1.0 <= limit as f64
}

/// Whole units left under `limit`, never negative.
pub fn remaining(counts: Counts, elapsed_ms: u64, limit: u64) -> u64 {
    let left = limit as f64 - estimate(counts, elapsed_ms);
    if left <= 0.0 { 0 } else { left.floor() as u64 }
}

/// How long until one more unit fits, assuming nothing else is counted meanwhile.
pub fn wait(counts: Counts, elapsed_ms: u64, limit: u64) -> Duration {
    let elapsed = elapsed_ms.min(WINDOW_MS);
    if fits(counts, elapsed, limit) {
        return Duration::ZERO;
    }
    let limit = limit as f64;
    // Within this window the estimate only falls as the previous window's weight fades.
    if let Some(at) = time_to_fit(counts.previous, counts.current, limit)
        && at > elapsed
    {
        return Duration::from_millis(at - elapsed);
    }
    // Otherwise wait for the next window, where this window's count becomes `previous`.
    let next = time_to_fit(counts.current, 0, limit).unwrap_or(WINDOW_MS);
    Duration::from_millis(WINDOW_MS - elapsed + next)
}

/// First offset into a window at which `previous * weight + current + 1 <= limit`, if any.
fn time_to_fit(previous: u64, current: u64, limit: f64) -> Option<u64> {
    let room = limit - 1.0 - current as f64;
    if room < 0.0 {
        return None;
    }
    if previous == 0 || previous as f64 <= room {
        return Some(0);
    }
    // weight <= room / previous  ⇔  elapsed >= WINDOW * (1 - room / previous)
    let at = (WINDOW_MS as f64 * (1.0 - room / previous as f64)).ceil() as u64;
    Some(at.min(WINDOW_MS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(previous: u64, current: u64) -> Counts {
        Counts { previous, current }
    }

    #[test]
    fn a_fresh_window_admits_exactly_the_limit() {
        let mut counts = c(0, 0);
        let mut admitted = 0;
        for _ in 0..25 {
            if fits(counts, 1_000, 10) {
                counts.current += 1;
                admitted += 1;
            }
        }
        assert_eq!(admitted, 10);
        assert_eq!(remaining(counts, 1_000, 10), 0);
    }

    #[test]
    fn the_previous_window_fades_linearly() {
        // 10 requests last minute, none this one: at the start nothing fits,
        // half-way through the previous minute counts for 5.
        assert!(!fits(c(10, 0), 0, 10));
        assert_eq!(remaining(c(10, 0), 30_000, 10), 5);
        assert!(fits(c(10, 0), 30_000, 10));
        assert_eq!(remaining(c(10, 0), 59_999, 10), 9);
    }

    #[test]
    fn wait_points_at_the_moment_one_more_fits() {
        // Full current window with no history: the next window starts with previous = 10,
        // so one request fits after 10% of it has passed (6 s).
        let w = wait(c(0, 10), 20_000, 10);
        assert_eq!(w, Duration::from_millis(40_000 + 6_000));
        // Previous window full, current empty: one fits once weight <= 0.9 → 6 s in.
        assert_eq!(wait(c(10, 0), 1_000, 10), Duration::from_millis(5_000));
        assert_eq!(wait(c(0, 3), 1_000, 10), Duration::ZERO);
        // After waiting that long it really fits.
        assert!(fits(c(10, 0), 6_000, 10));
        assert!(!fits(c(10, 0), 5_999, 10));
    }

    #[test]
    fn zero_limit_never_fits_and_wait_is_bounded() {
        assert!(!fits(c(0, 0), 0, 0));
        assert!(wait(c(0, 0), 0, 0) <= Duration::from_millis(2 * WINDOW_MS));
    }
}
