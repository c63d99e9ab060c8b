//! Running one scenario: N connections, each a virtual user sending requests back to
//! back (closed loop), first a warm-up whose samples are thrown away, then the measured
//! phase. Every phase is bounded both in requests and in time.
//!
//! The two routes of a scenario (direct, via the gateway) are measured in alternating
//! rounds rather than one after the other: this machine is shared, and background work
//! (a compiler, another test) then hits both routes alike instead of skewing one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::{Conn, Failure, Prepared, Target, Timing};
use crate::error::BenchError;

/// How much of a phase to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// Exactly this many requests, shared between the connections (latency runs), cut
    /// short after `limit`.
    Requests { count: u64, limit: Duration },
    /// Start requests until this much time has passed (throughput runs); requests in
    /// flight at the deadline are finished and counted.
    Time(Duration),
}

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub connections: usize,
    pub warmup: Amount,
    pub measure: Amount,
    /// Per-request cap: a hung request fails instead of stalling the run.
    pub request_timeout: Duration,
    /// The measured amount is split into this many slices per route, alternating routes.
    pub rounds: u32,
}

impl Amount {
    /// One of `rounds` equal slices (the first slice takes the remainder of a count).
    fn slice(self, rounds: u32, index: u32) -> Amount {
        let rounds = rounds.max(1);
        match self {
            Amount::Requests { count, limit } => {
                let base = count / u64::from(rounds);
                let extra = if index == 0 {
                    count % u64::from(rounds)
                } else {
                    0
                };
                Amount::Requests {
                    count: base + extra,
                    limit: limit / rounds,
                }
            }
            Amount::Time(d) => Amount::Time(d / rounds),
        }
    }
}

/// What the measured phase produced.
#[derive(Debug, Default)]
pub struct Outcome {
    pub timings: Vec<Timing>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// From the start of the measured phase until its last request finished.
    pub elapsed: Duration,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.timings.extend(other.timings);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub fn per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.timings.len() as f64 / secs
        } else {
            0.0
        }
    }
}

/// Opens the connections of every route, warms each up, then measures the routes in
/// alternating rounds (route order flipped every round). One outcome per route, in the
/// order given.
pub async fn compare(
    routes: &[(Target, Prepared)],
    plan: &Plan,
) -> Result<Vec<Outcome>, BenchError> {
    let mut sides = Vec::with_capacity(routes.len());
    for (target, req) in routes {
        let mut conns = Vec::with_capacity(plan.connections);
        for _ in 0..plan.connections.max(1) {
            conns.push(Conn::open(target.addr).await?);
        }
        let req = Arc::new(req.clone());
        let (conns, _) = phase(target, &req, conns, plan.warmup, plan.request_timeout).await;
        sides.push((target, req, conns, Outcome::default()));
    }
    let rounds = plan.rounds.max(1);
    for round in 0..rounds {
        let amount = plan.measure.slice(rounds, round);
        let order: Vec<usize> = if round % 2 == 0 {
            (0..sides.len()).collect()
        } else {
            (0..sides.len()).rev().collect()
        };
        for i in order {
            let (target, req, conns, total) = &mut sides[i];
            let (back, outcome) = phase(
                target,
                req,
                std::mem::take(conns),
                amount,
                plan.request_timeout,
            )
            .await;
            *conns = back;
            total.merge(outcome);
        }
    }
    Ok(sides.into_iter().map(|(_, _, _, o)| o).collect())
}

/// When a virtual user should stop taking work.
#[derive(Clone)]
enum Stop {
    Tickets(Arc<AtomicU64>, Instant),
    Deadline(Instant),
}

impl Stop {
    fn new(amount: Amount) -> Stop {
        let now = Instant::now();
        match amount {
            Amount::Requests { count, limit } => {
                Stop::Tickets(Arc::new(AtomicU64::new(count)), now + limit)
            }
            Amount::Time(d) => Stop::Deadline(now + d),
        }
    }

    /// Claims the right to send one more request.
    fn take(&self) -> bool {
        match self {
            Stop::Tickets(left, limit) => {
                Instant::now() < *limit
                    && left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
            }
            Stop::Deadline(at) => Instant::now() < *at,
        }
    }
}

struct UserResult {
    conn: Option<Conn>,
    timings: Vec<Timing>,
    errors: u64,
    first_error: Option<Failure>,
}

async fn phase(
    target: &Target,
    req: &Arc<Prepared>,
    conns: Vec<Conn>,
    amount: Amount,
    request_timeout: Duration,
) -> (Vec<Conn>, Outcome) {
    let stop = Stop::new(amount);
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|conn| {
            let stop = stop.clone();
            let req = req.clone();
            let addr = target.addr;
            tokio::spawn(user(conn, addr, req, stop, request_timeout))
        })
        .collect();
    let mut outcome = Outcome::default();
    let mut conns = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(result) => {
                outcome.timings.extend(result.timings);
                outcome.errors += result.errors;
                if outcome.first_error.is_none() {
                    outcome.first_error = result.first_error.map(|f| f.to_string());
                }
                conns.extend(result.conn);
            }
            Err(e) => {
                outcome.errors += 1;
                outcome
                    .first_error
                    .get_or_insert_with(|| format!("virtual user crashed: {e}"));
            }
        }
    }
    outcome.elapsed = started.elapsed();
    (conns, outcome)
}

/// One virtual user: send, wait for the whole response, repeat. A failed connection is
/// replaced; if that fails too the user gives up (the error is counted).
async fn user(
    conn: Conn,
    addr: std::net::SocketAddr,
    req: Arc<Prepared>,
    stop: Stop,
    request_timeout: Duration,
) -> UserResult {
    let mut result = UserResult {
        conn: Some(conn),
        timings: Vec::with_capacity(1024),
        errors: 0,
        first_error: None,
    };
    while stop.take() {
        let Some(conn) = result.conn.as_mut() else {
            break;
        };
        match conn.send(&req, request_timeout).await {
            Ok(t) => result.timings.push(t),
            Err(failure) => {
                result.errors += 1;
                result.first_error.get_or_insert(failure);
                result.conn = Conn::open(addr).await.ok();
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_testkit::{MockOptions, MockServer};

    async fn mock(opts: MockOptions) -> (MockServer, Target) {
        let server = MockServer::start(MockOptions {
            record_requests: false,
            ..opts
        })
        .await
        .unwrap();
        let target = Target::from_url(&server.url(), "sk-test").unwrap();
        (server, target)
    }

    fn count_plan(connections: usize, count: u64, rounds: u32) -> Plan {
        let limit = Duration::from_secs(20);
        Plan {
            connections,
            warmup: Amount::Requests { count: 3, limit },
            measure: Amount::Requests { count, limit },
            request_timeout: Duration::from_secs(5),
            rounds,
        }
    }

    #[tokio::test]
    async fn measures_each_route_separately_and_exactly() {
        let (_fast, fast) = mock(MockOptions::default()).await;
        let (_slow, slow) = mock(MockOptions {
            latency: Duration::from_millis(8),
            ..MockOptions::default()
        })
        .await;
        let routes = [
            (fast.clone(), Prepared::chat(&fast, false)),
            (slow.clone(), Prepared::chat(&slow, false)),
        ];
        let out = compare(&routes, &count_plan(2, 30, 3)).await.unwrap();
        assert_eq!(out.len(), 2);
        for o in &out {
            assert_eq!(o.timings.len(), 30, "exactly the requested count");
            assert_eq!(o.errors, 0, "{:?}", o.first_error);
        }
        let p50 = |o: &Outcome| {
            crate::stats::Summary::of(o.timings.iter().map(|t| t.full).collect())
                .unwrap()
                .p50
        };
        assert!(
            p50(&out[1]) >= Duration::from_millis(8),
            "{:?}",
            p50(&out[1])
        );
        assert!(
            p50(&out[0]) < Duration::from_millis(8),
            "{:?}",
            p50(&out[0])
        );
        // Two connections in parallel: 30 requests of >= 8 ms take >= 120 ms, not 240.
        assert!(out[1].elapsed >= Duration::from_millis(120));
    }

    #[tokio::test]
    async fn stream_first_byte_comes_before_the_end() {
        let (_m, target) = mock(MockOptions {
            chunk_delay: Duration::from_millis(4),
            ..MockOptions::default()
        })
        .await;
        let routes = [(target.clone(), Prepared::chat(&target, true))];
        let out = compare(&routes, &count_plan(1, 5, 1)).await.unwrap();
        assert_eq!(out[0].errors, 0, "{:?}", out[0].first_error);
        assert_eq!(out[0].timings.len(), 5);
        for t in &out[0].timings {
            // Several chunks, 4 ms apart: the end is well after the first byte.
            assert!(t.full >= t.first_byte + Duration::from_millis(8), "{t:?}");
        }
    }

    #[tokio::test]
    async fn failures_are_counted_not_timed_and_the_connection_replaced() {
        let (_m, target) = mock(MockOptions {
            fail_every_n: Some(4),
            fail_status: 500,
            ..MockOptions::default()
        })
        .await;
        let routes = [(target.clone(), Prepared::chat(&target, false))];
        let mut plan = count_plan(1, 20, 2);
        plan.warmup = Amount::Requests {
            count: 0,
            limit: Duration::from_secs(1),
        };
        let out = compare(&routes, &plan).await.unwrap();
        assert_eq!(out[0].errors, 5, "every 4th of 20 fails");
        assert_eq!(out[0].timings.len(), 15, "the rest still succeed");
        let first = out[0].first_error.as_deref().unwrap();
        assert!(first.contains("HTTP 500"), "{first}");
    }

    #[tokio::test]
    async fn wrong_key_fails_every_request() {
        let (_m, good) = mock(MockOptions::with_api_key("sk-right")).await;
        let target = Target::from_url(&format!("http://{}", good.addr), "sk-wrong").unwrap();
        let routes = [(target.clone(), Prepared::chat(&target, false))];
        let out = compare(&routes, &count_plan(1, 6, 1)).await.unwrap();
        assert_eq!(out[0].timings.len(), 0);
        assert!(out[0].errors >= 6);
        assert!(out[0].first_error.as_deref().unwrap().contains("HTTP 401"));
    }

    #[tokio::test]
    async fn time_bounded_phase_stops_near_its_deadline() {
        let (_m, target) = mock(MockOptions::default()).await;
        let routes = [(target.clone(), Prepared::chat(&target, true))];
        let plan = Plan {
            connections: 4,
            warmup: Amount::Time(Duration::from_millis(50)),
            measure: Amount::Time(Duration::from_millis(300)),
            request_timeout: Duration::from_secs(5),
            rounds: 3,
        };
        let out = compare(&routes, &plan).await.unwrap();
        assert_eq!(out[0].errors, 0, "{:?}", out[0].first_error);
        assert!(out[0].elapsed >= Duration::from_millis(300));
        assert!(
            out[0].elapsed < Duration::from_secs(3),
            "{:?}",
            out[0].elapsed
        );
        assert!(out[0].per_second() > 10.0);
    }

    #[test]
    fn slices_add_up_to_the_whole() {
        let limit = Duration::from_secs(30);
        let whole = Amount::Requests { count: 1003, limit };
        let total: u64 = (0..10)
            .map(|i| match whole.slice(10, i) {
                Amount::Requests { count, .. } => count,
                Amount::Time(_) => 0,
            })
            .sum();
        assert_eq!(total, 1003);
        assert_eq!(
            Amount::Time(Duration::from_secs(3)).slice(3, 2),
            Amount::Time(Duration::from_secs(1))
        );
    }
}
