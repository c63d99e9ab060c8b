//! One benchmark run: start the mock, time a few gateway start-ups (keeping the last
//! gateway), run every scenario straight to the mock and through the gateway, read the
//! gateway's memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::Args;
use crate::client::{Conn, Prepared, Target};
use crate::error::BenchError;
use crate::keys_run;
use crate::load::{self, Amount, Plan};
use crate::mcp_run;
use crate::procs::Service;
use crate::results::{Memory, Mode, Results, Route, Row, Startup};

pub const MASTER_KEY: &str = "sk-bench";
/// Any key works on the mock; the gateway sends its own (`sk-upstream`).
pub const MOCK_KEY: &str = "sk-upstream";
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A latency scenario is cut short after this, whatever `--requests` says.
pub const COUNT_PHASE_LIMIT: Duration = Duration::from_secs(30);
/// Latency scenarios alternate routes every `requests / 10` requests.
pub const LATENCY_ROUNDS: u32 = 10;
/// Throughput scenarios alternate routes every `duration / 3`.
const THROUGHPUT_ROUNDS: u32 = 3;
/// How long to poll for the first liveliness answer after the listening line.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Binaries {
    pub gateway: PathBuf,
    pub mock: PathBuf,
}

impl Binaries {
    /// Explicit paths, else the release binaries next to this one.
    pub fn resolve(args: &Args) -> Binaries {
        let dir = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("target/release"));
        Binaries {
            gateway: args
                .gateway_bin
                .clone()
                .unwrap_or_else(|| dir.join("gatehouse")),
            mock: args
                .mock_bin
                .clone()
                .unwrap_or_else(|| dir.join("gatehouse-mock")),
        }
    }
}

pub async fn run(args: &Args, bins: &Binaries) -> Result<Results, BenchError> {
    // A missing MCP peer fails the run before the chat scenarios, not after them.
    let everything = if args.no_mcp {
        None
    } else {
        Some(mcp_run::everything_script(args)?)
    };
    let mock = Service::mock(&bins.mock)?;
    let mut results = Results::default();
    if !args.mcp_only {
        chat(args, bins, &mock, &mut results).await?;
        // After `chat` has stopped its gateway: only the two gateways compared here run.
        results.keys = keys_run::run(args, bins, &mock.url).await?;
        crate::cache_run::run(args, bins, &mock.url).await?;
    }
    if let Some(script) = everything {
        results.mcp = mcp_run::run(args, bins, &script, &mock.url).await?;
    }
    Ok(results)
}

/// Start-up trials, the chat scenarios and the gateway's memory.
async fn chat(
    args: &Args,
    bins: &Binaries,
    mock: &Service,
    results: &mut Results,
) -> Result<(), BenchError> {
    let direct = Target::from_url(&mock.url, MOCK_KEY)?;

    let mut gateway: Option<Service> = None;
    for trial in 0..args.startup_trials.max(1) {
        // Dropping the previous trial's gateway kills it before the next starts.
        drop(gateway.take());
        let (service, startup) = start_gateway(bins, &mock.url, None).await?;
        eprintln!(
            "start-up #{}: liveliness after {:.1} ms, first chat after {:.1} ms",
            trial + 1,
            startup.to_liveliness.as_secs_f64() * 1e3,
            startup.to_first_chat.as_secs_f64() * 1e3
        );
        results.startups.push(startup);
        gateway = Some(service);
    }
    let Some(mut gateway) = gateway else {
        return Err(BenchError::NotServing {
            what: "gatehouse",
            detail: "no start-up trial ran".into(),
        });
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut memory = Memory {
        idle_after_start: gateway.rss_kib(),
        ..Memory::default()
    };
    let via = Target::from_url(&gateway.url, MASTER_KEY)?;

    for &mode in &args.modes {
        let latency = Plan {
            connections: 1,
            warmup: Amount::Requests {
                count: args.warmup_requests,
                limit: COUNT_PHASE_LIMIT,
            },
            measure: Amount::Requests {
                count: args.requests,
                limit: COUNT_PHASE_LIMIT,
            },
            request_timeout: REQUEST_TIMEOUT,
            rounds: LATENCY_ROUNDS,
        };
        let mut plans = vec![latency];
        for &c in &args.concurrency {
            plans.push(Plan {
                connections: c,
                warmup: Amount::Time(Duration::from_secs_f64(args.warmup)),
                measure: Amount::Time(Duration::from_secs_f64(args.duration)),
                request_timeout: REQUEST_TIMEOUT,
                rounds: THROUGHPUT_ROUNDS,
            });
        }
        let stream = mode == Mode::Stream;
        let routes = [
            (direct.clone(), Prepared::chat(&direct, stream)),
            (via.clone(), Prepared::chat(&via, stream)),
        ];
        for plan in plans {
            let outcomes = load::compare(&routes, &plan).await?;
            for (route, outcome) in [Route::Direct, Route::Gateway].into_iter().zip(outcomes) {
                let row = Row::new(mode, route, plan.connections, outcome);
                print_progress(&row);
                results.rows.push(row);
            }
        }
    }

    tokio::time::sleep(Duration::from_secs(1)).await;
    memory.idle_after_load = gateway.rss_kib();
    memory.peak = gateway.peak_rss_kib();
    results.memory = memory;
    if !gateway.alive() {
        return Err(BenchError::NotServing {
            what: "gatehouse",
            detail: format!("it exited during the run; last output:\n{}", gateway.tail()),
        });
    }
    Ok(())
}

fn print_progress(row: &Row) {
    let p50 = row
        .full
        .map(|s| s.p50.as_secs_f64() * 1e3)
        .unwrap_or(f64::NAN);
    eprintln!(
        "{:<10} {:<7} c={:<3} p50 {p50:.3} ms  {:.0} req/s  errors {}{}",
        row.mode.label(),
        row.route.label(),
        row.connections,
        row.per_second,
        row.errors,
        row.first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
}

/// Spawns the gateway and times spawn → listening line → first liveliness 200 → first
/// chat 200. Time is measured from just before `spawn`, so process start, config load
/// and bind all count.
pub async fn start_gateway(
    bins: &Binaries,
    mock_url: &str,
    mcp_url: Option<&str>,
) -> Result<(Service, Startup), BenchError> {
    let service = Service::gateway(&bins.gateway, mock_url, mcp_url, MASTER_KEY)?;
    let target = Target::from_url(&service.url, MASTER_KEY)?;
    let probe_deadline = Instant::now() + PROBE_TIMEOUT;
    let live = Prepared::get(&target, "/health/liveliness");
    let mut conn = loop {
        match Conn::open(target.addr).await {
            Ok(conn) => break conn,
            Err(e) if Instant::now() >= probe_deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    };
    conn.send(&live, PROBE_TIMEOUT)
        .await
        .map_err(|e| not_serving(&service, format!("GET /health/liveliness: {e}")))?;
    let to_liveliness = service.spawned.elapsed();
    conn.send(&Prepared::chat(&target, false), PROBE_TIMEOUT)
        .await
        .map_err(|e| not_serving(&service, format!("first chat completion: {e}")))?;
    let to_first_chat = service.spawned.elapsed();
    let startup = Startup {
        to_listening: service.listening - service.spawned,
        to_liveliness,
        to_first_chat,
    };
    Ok((service, startup))
}

fn not_serving(service: &Service, detail: String) -> BenchError {
    BenchError::NotServing {
        what: "gatehouse",
        detail: format!("{detail}; last output:\n{}", service.tail()),
    }
}
