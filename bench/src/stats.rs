//! Latency percentiles from raw samples: sort, then nearest rank. Runs are a few
//! thousand to a few hundred thousand samples, so sorting is cheap and exact — no
//! histogram approximation to explain.

use std::time::Duration;

/// Percentiles and mean of one set of latency samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Summary {
    /// `None` when there are no samples (every request failed).
    pub fn of(mut samples: Vec<Duration>) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let total: Duration = samples.iter().sum();
        let count = samples.len();
        Some(Summary {
            count,
            p50: nearest_rank(&samples, 50.0),
            p90: nearest_rank(&samples, 90.0),
            p99: nearest_rank(&samples, 99.0),
            p999: nearest_rank(&samples, 99.9),
            max: samples[count - 1],
            mean: total / u32::try_from(count).unwrap_or(u32::MAX),
        })
    }
}

/// The smallest sample with at least `pct` % of the samples at or below it.
/// `sorted` must be non-empty and ascending.
fn nearest_rank(sorted: &[Duration], pct: f64) -> Duration {
    let n = sorted.len();
    // rank is 1-based: ceil(pct/100 * n), at least 1.
    let rank = ((pct / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Milliseconds with three decimals, the unit every table uses.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `later - earlier` in milliseconds, negative when the gateway path was faster
/// (it happens within noise, and hiding it would bias the table).
pub fn added_ms(via: Duration, direct: Duration) -> f64 {
    ms(via) - ms(direct)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    #[test]
    fn nearest_rank_percentiles_of_one_to_hundred() {
        let samples: Vec<Duration> = (1..=100).rev().map(us).collect();
        let s = Summary::of(samples).unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50, us(50));
        assert_eq!(s.p90, us(90));
        assert_eq!(s.p99, us(99));
        assert_eq!(s.max, us(100));
        assert_eq!(s.mean, Duration::from_nanos(50_500));
    }

    #[test]
    fn one_slow_request_in_a_hundred_shows_in_p99_not_p90() {
        let mut samples = vec![us(100); 99];
        samples.push(us(5000));
        let s = Summary::of(samples).unwrap();
        assert_eq!(s.p90, us(100));
        assert_eq!(
            s.p99,
            us(100),
            "exactly 1% slow: p99 is still the fast value"
        );
        let mut samples = vec![us(100); 98];
        samples.extend([us(5000), us(6000)]);
        let s = Summary::of(samples).unwrap();
        assert_eq!(s.p99, us(5000), "2% slow: p99 lands on the slow ones");
    }

    #[test]
    fn single_sample_and_empty() {
        let s = Summary::of(vec![us(7)]).unwrap();
        assert_eq!((s.p50, s.p99, s.max, s.mean), (us(7), us(7), us(7), us(7)));
        assert!(Summary::of(Vec::new()).is_none());
    }

    #[test]
    fn added_latency_can_be_negative() {
        assert!((added_ms(us(150), us(100)) - 0.05).abs() < 1e-9);
        assert!(added_ms(us(90), us(100)) < 0.0);
    }
}
