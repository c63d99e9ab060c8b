//! Scale scenarios (`--scale`): many open streams against a slow upstream, and 1 MB
//! request and response bodies. Each starts a gateway of its own (auth, limits, spend
//! logging on) so its memory figures are not mixed with the other scenarios'.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::cli::Args;
use crate::client::{Conn, Prepared, Target};
use crate::error::BenchError;
use crate::keys_run::{VIRTUAL_KEY, keys_on_config};
use crate::load::{self, Amount, Plan};
use crate::procs::Service;
use crate::results::Route;
use crate::run::{Binaries, LATENCY_ROUNDS, REQUEST_TIMEOUT};
use crate::stats::Summary;
use crate::upstream::FastUpstream;

/// How long the held streams may take to all reach the upstream.
const OPEN_TIMEOUT: Duration = Duration::from_secs(120);
/// A held stream's whole exchange (it waits for every other stream to open first).
const HELD_TIMEOUT: Duration = Duration::from_secs(300);
/// Rounds of open-and-close: the second shows whether memory grows per round.
const STREAM_ROUNDS: usize = 2;
/// Requests per route and body kind (1 MB each way).
const BODY_REQUESTS: u64 = 200;
pub const BODY_BYTES: usize = 1_000_000;

/// Gateway memory around N streams held open at once, per round.
#[derive(Debug, Clone, Default)]
pub struct StreamsResult {
    pub streams: usize,
    /// KiB, after warm-up, before the first round.
    pub rss_before: Option<u64>,
    /// KiB with every stream open, per round.
    pub rss_open: Vec<Option<u64>>,
    /// KiB one second after every stream finished, per round.
    pub rss_after: Vec<Option<u64>>,
    /// How long opening all N took, per round.
    pub open_time: Vec<Duration>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl StreamsResult {
    /// Added RSS per open stream (first round), in KiB.
    pub fn kib_per_stream(&self) -> Option<f64> {
        let open = self.rss_open.first().copied().flatten()?;
        let before = self.rss_before?;
        Some(open.saturating_sub(before) as f64 / self.streams.max(1) as f64)
    }
}

/// One body scenario on one route: c=1 latency.
#[derive(Debug, Clone)]
pub struct BodyRow {
    pub kind: &'static str,
    pub route: Route,
    pub full: Option<Summary>,
    pub errors: u64,
    pub first_error: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ScaleResults {
    pub streams: Option<StreamsResult>,
    pub bodies: Vec<BodyRow>,
    /// Gateway KiB before and after the body scenarios (VmRSS), and its peak (VmHWM).
    pub body_rss: (Option<u64>, Option<u64>, Option<u64>),
}

/// Raises this process's open-file limit (inherited by the gateway and nginx it starts)
/// with util-linux's `prlimit`: root may raise the hard limit, anyone the soft one up to
/// it. Returns the soft limit in force afterwards.
pub fn raise_nofile(want: u64) -> u64 {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={want}:{want}")])
        .stderr(std::process::Stdio::null())
        .status();
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok());
    match soft {
        Some(soft) if soft >= want => soft,
        Some(soft) => {
            // Not allowed to raise the hard limit: at least use all of it.
            let hard = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(4))
                .and_then(|v| v.parse().ok())
                .unwrap_or(soft);
            let _ = std::process::Command::new("prlimit")
                .args(["--pid", &pid, &format!("--nofile={hard}:{hard}")])
                .status();
            hard
        }
        None => 1024,
    }
}

pub async fn run(
    args: &Args,
    bins: &Binaries,
    upstream: &FastUpstream,
    nginx_url: Option<&str>,
) -> Result<ScaleResults, BenchError> {
    // Each stream costs the bench two sockets (client, upstream) and the gateway two.
    let limit = raise_nofile(2 * args.streams as u64 + 4096);
    let streams = args.streams.min((limit.saturating_sub(1024) / 2) as usize);
    if streams < args.streams {
        eprintln!(
            "open-file limit {limit}: holding {streams} streams instead of {}",
            args.streams
        );
    }
    let mut out = ScaleResults {
        streams: Some(open_streams(bins, upstream, streams, args.hold_secs).await?),
        ..ScaleResults::default()
    };
    bodies(bins, &upstream.url, nginx_url, &mut out).await?;
    Ok(out)
}

async fn gateway(bins: &Binaries, upstream_url: &str) -> Result<(Service, Target), BenchError> {
    let service = Service::gateway_with_config(&bins.gateway, &keys_on_config(upstream_url))?;
    let target = Target::from_url(&service.url, VIRTUAL_KEY)?;
    // Warm it up: the upstream pool, the key cache, the first allocations.
    let mut conn = Conn::open(target.addr).await?;
    for stream in [false, true] {
        for _ in 0..100 {
            conn.send(&Prepared::chat(&target, stream), REQUEST_TIMEOUT)
                .await
                .map_err(|e| BenchError::NotServing {
                    what: "gatehouse",
                    detail: format!("warm-up request: {e}"),
                })?;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    Ok((service, target))
}

/// N connections, each one stream request the upstream holds after its first event;
/// once every stream is open (the upstream holds N), RSS is read, the streams are let
/// go, each must end with `[DONE]`, and RSS is read again a second later.
async fn open_streams(
    bins: &Binaries,
    upstream: &FastUpstream,
    n: usize,
    hold_secs: f64,
) -> Result<StreamsResult, BenchError> {
    let (service, target) = gateway(bins, &upstream.url).await?;
    let mut result = StreamsResult {
        streams: n,
        rss_before: service.rss_kib(),
        ..StreamsResult::default()
    };
    let held = Prepared::chat_with(&target, true, "Hold this stream", r#","bench_hold":true"#);
    for round in 0..STREAM_ROUNDS {
        upstream.release(false);
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        for _ in 0..n {
            let mut conn = Conn::open(target.addr).await?;
            let req = held.clone();
            tasks.spawn(async move { conn.send(&req, HELD_TIMEOUT).await.map(|_| ()) });
        }
        let deadline = Instant::now() + OPEN_TIMEOUT;
        while upstream.held() < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        result.open_time.push(started.elapsed());
        // The first events are on their way to the clients; let them land.
        tokio::time::sleep(Duration::from_millis(500)).await;
        result.rss_open.push(service.rss_kib());
        eprintln!(
            "streams round {}: {} of {n} held after {:.1} s, gateway RSS {} KiB",
            round + 1,
            upstream.held(),
            started.elapsed().as_secs_f64(),
            service.rss_kib().unwrap_or(0)
        );
        if hold_secs > 0.0 {
            eprintln!("holding them {hold_secs} s (gateway pid {})", service.pid());
            tokio::time::sleep(Duration::from_secs_f64(hold_secs)).await;
        }
        upstream.release(true);
        while let Some(joined) = tasks.join_next().await {
            let failure = match joined {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            result.errors += 1;
            result.first_error.get_or_insert(failure);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        result.rss_after.push(service.rss_kib());
        if hold_secs > 0.0 {
            eprintln!(
                "streams closed; waiting {hold_secs} s (gateway pid {})",
                service.pid()
            );
            tokio::time::sleep(Duration::from_secs_f64(hold_secs)).await;
        }
    }
    Ok(result)
}

/// 1 MB up (a long user message) and 1 MB down (a long answer), c=1, on every route.
async fn bodies(
    bins: &Binaries,
    upstream_url: &str,
    nginx_url: Option<&str>,
    out: &mut ScaleResults,
) -> Result<(), BenchError> {
    let (service, via) = gateway(bins, upstream_url).await?;
    let before = service.rss_kib();
    let mut routes = vec![(
        Route::Direct,
        Target::from_url(upstream_url, "sk-upstream")?,
    )];
    if let Some(url) = nginx_url {
        routes.push((Route::Nginx, Target::from_url(url, "sk-upstream")?));
    }
    routes.push((Route::Gateway, via));
    let big = "x".repeat(BODY_BYTES);
    let pad = format!(r#","bench_pad":{BODY_BYTES}"#);
    let kinds: [(&'static str, &str, &str); 2] = [
        ("1 MB request", big.as_str(), ""),
        ("1 MB response", "Say hello to the benchmark", pad.as_str()),
    ];
    let plan = Plan {
        connections: 1,
        warmup: Amount::Requests {
            count: BODY_REQUESTS / 10,
            limit: Duration::from_secs(30),
        },
        measure: Amount::Requests {
            count: BODY_REQUESTS,
            limit: Duration::from_secs(60),
        },
        request_timeout: REQUEST_TIMEOUT,
        rounds: LATENCY_ROUNDS,
    };
    for (kind, content, extra) in kinds {
        let prepared: Vec<(Target, Prepared)> = routes
            .iter()
            .map(|(_, t)| (t.clone(), Prepared::chat_with(t, false, content, extra)))
            .collect();
        let outcomes = load::compare(&prepared, &plan).await?;
        for ((route, _), outcome) in routes.iter().zip(outcomes) {
            let full = Summary::of(outcome.timings.iter().map(|t| t.full).collect());
            eprintln!(
                "{kind:<14} {:<7} p50 {:.3} ms errors {}",
                route.label(),
                full.map(|s| s.p50.as_secs_f64() * 1e3).unwrap_or(f64::NAN),
                outcome.errors
            );
            out.bodies.push(BodyRow {
                kind,
                route: *route,
                full,
                errors: outcome.errors,
                first_error: outcome.first_error,
            });
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    out.body_rss = (before, service.rss_kib(), service.peak_rss_kib());
    Ok(())
}
