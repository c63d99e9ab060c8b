//! One benchmark run: start the mock, time a few gateway start-ups (keeping the last
//! gateway), run every scenario straight to the mock and through the gateway, read the
//! gateway's memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::{Args, UpstreamKind};
use crate::client::{Conn, Prepared, Target};
use crate::error::BenchError;
use crate::keys_run;
use crate::load::{self, Amount, Plan};
use crate::mcp_run;
use crate::nginx::Nginx;
use crate::procs::Service;
use crate::results::{Memory, Mode, Results, Route, Row, Startup};
use crate::upstream::FastUpstream;

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
    pub nginx: PathBuf,
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
            nginx: args.nginx_bin.clone(),
        }
    }
}

pub async fn run(args: &Args, bins: &Binaries) -> Result<Results, BenchError> {
    if args.mcp_sessions_only {
        return mcp_sessions_only(args, bins).await;
    }
    // A missing MCP peer fails the run before the chat scenarios, not after them.
    let everything = if args.no_mcp {
        None
    } else {
        Some(mcp_run::everything_script(args)?)
    };
    // Whichever upstream answers, it lives for the whole run (dropped at the end).
    let (fast, _mock, upstream_url) = match args.upstream {
        UpstreamKind::Fast => {
            let fast = FastUpstream::start()?;
            let url = fast.url.clone();
            (Some(fast), None, url)
        }
        UpstreamKind::Mock => {
            let mock = Service::mock(&bins.mock)?;
            let url = mock.url.clone();
            (None, Some(mock), url)
        }
    };
    if args.many_keys > 0 {
        // A scenario of its own: it prints its table, judges no target.
        crate::many_keys::run(args, bins, &upstream_url).await?;
        return Ok(Results::default());
    }
    let nginx = match args.no_nginx || args.mcp_only {
        true => None,
        false => Some(Nginx::start(&bins.nginx, &upstream_url)?),
    };
    let nginx_url = nginx.as_ref().map(|n| n.url.as_str());
    let mut results = Results::default();
    if !args.mcp_only {
        chat(args, bins, &upstream_url, nginx_url, &mut results).await?;
        // After `chat` has stopped its gateway: only the two gateways compared here run.
        results.keys = keys_run::run(args, bins, &upstream_url).await?;
        crate::feature_run::run(args, bins, &upstream_url).await?;
    }
    if let Some(script) = &everything {
        results.mcp = mcp_run::run(args, bins, script, &upstream_url).await?;
    }
    if args.scale {
        let Some(fast) = &fast else {
            return Err(BenchError::NotServing {
                what: "the scale scenarios",
                detail: "they need the bench's own upstream (--upstream fast)".into(),
            });
        };
        results.scale = Some(crate::scale::run(args, bins, fast, nginx_url).await?);
        if let Some(script) = &everything {
            results.mcp_sessions = Some(
                crate::mcp_scale::run(
                    bins,
                    script,
                    &fast.url,
                    args.mcp_sessions,
                    args.mcp_requests,
                )
                .await?,
            );
        }
    }
    Ok(results)
}

/// `--mcp-sessions-only`: the MCP sessions scenario and nothing else.
async fn mcp_sessions_only(args: &Args, bins: &Binaries) -> Result<Results, BenchError> {
    let script = mcp_run::everything_script(args)?;
    // The gateway's config needs a model; nothing is sent to it.
    let fast = FastUpstream::start()?;
    let sessions = crate::mcp_scale::run(
        bins,
        &script,
        &fast.url,
        args.mcp_sessions,
        args.mcp_requests,
    )
    .await?;
    Ok(Results {
        mcp_sessions: Some(sessions),
        ..Results::default()
    })
}

/// Start-up trials, the chat scenarios and the gateway's memory.
async fn chat(
    args: &Args,
    bins: &Binaries,
    upstream_url: &str,
    nginx_url: Option<&str>,
    results: &mut Results,
) -> Result<(), BenchError> {
    let direct = Target::from_url(upstream_url, MOCK_KEY)?;
    // Auth, limits, spend logging and metrics on: what a deployment runs.
    let config = keys_run::keys_on_config(upstream_url);

    let mut gateway: Option<Service> = None;
    for trial in 0..args.startup_trials.max(1) {
        // Dropping the previous trial's gateway kills it before the next starts.
        drop(gateway.take());
        let (service, startup) = start_gateway(bins, &config).await?;
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
    let via = Target::from_url(&gateway.url, keys_run::VIRTUAL_KEY)?;
    let nginx_target = match nginx_url {
        Some(url) => Some(Target::from_url(url, MOCK_KEY)?),
        None => None,
    };

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
        let mut routes = vec![(Route::Direct, direct.clone())];
        routes.extend(nginx_target.clone().map(|t| (Route::Nginx, t)));
        routes.push((Route::Gateway, via.clone()));
        let prepared: Vec<(Target, Prepared)> = routes
            .iter()
            .map(|(_, t)| (t.clone(), Prepared::chat(t, stream)))
            .collect();
        for plan in plans {
            let outcomes = load::compare(&prepared, &plan).await?;
            for ((route, _), outcome) in routes.iter().zip(outcomes) {
                let route = *route;
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
    config: &str,
) -> Result<(Service, Startup), BenchError> {
    time_startup(Service::gateway_with_config(&bins.gateway, config)?).await
}

/// The start-up times of a gateway just spawned: listening line, first liveliness 200,
/// first chat 200 (with the master key).
pub async fn time_startup(service: Service) -> Result<(Service, Startup), BenchError> {
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
