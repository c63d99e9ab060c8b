//! What the response cache saves (issue 15): the same non-stream and streamed chat
//! request, again and again, straight to the mock, through a gateway without the cache,
//! and through one with `cache: true` (local), where every request after the first is a
//! hit. One connection (added latency) and 64 (throughput), measured in alternating
//! slices like the other scenarios so background load hits every route alike.

use std::time::Duration;

use crate::cli::Args;
use crate::client::{Prepared, Target};
use crate::error::BenchError;
use crate::load::{self, Amount, Plan};
use crate::procs::{Service, model_list};
use crate::report::Table;
use crate::run::{Binaries, COUNT_PHASE_LIMIT, LATENCY_ROUNDS, MOCK_KEY, REQUEST_TIMEOUT};
use crate::stats::{Summary, ms};

/// Local mode and no spend rows on both gateways: the difference is the cache alone.
fn config(upstream_url: &str, cache: bool) -> String {
    let cache = if cache {
        "litellm_settings:\n  cache: true\n  cache_params: {type: local, ttl: 3600}\n"
    } else {
        ""
    };
    format!(
        "{}{cache}general_settings:\n  disable_spend_logs: true\n",
        model_list(upstream_url)
    )
}

const SIDES: [&str; 3] = ["direct", "gateway, no cache", "gateway, cache hit"];

/// Runs the scenario and prints its table; `--cache-requests 0` skips it.
pub async fn run(args: &Args, bins: &Binaries, mock_url: &str) -> Result<(), BenchError> {
    if args.cache_requests == 0 {
        return Ok(());
    }
    let mut off = Service::gateway_with_config(&bins.gateway, &config(mock_url, false))?;
    let mut on = Service::gateway_with_config(&bins.gateway, &config(mock_url, true))?;
    let targets = [
        Target::from_url(mock_url, MOCK_KEY)?,
        Target::from_url(&off.url, "sk-bench")?,
        Target::from_url(&on.url, "sk-bench")?,
    ];
    let latency = Plan {
        connections: 1,
        warmup: Amount::Requests {
            count: args.cache_requests / 10 + 1,
            limit: COUNT_PHASE_LIMIT,
        },
        measure: Amount::Requests {
            count: args.cache_requests,
            limit: COUNT_PHASE_LIMIT,
        },
        request_timeout: REQUEST_TIMEOUT,
        rounds: LATENCY_ROUNDS,
    };
    let throughput = Plan {
        connections: 64,
        warmup: Amount::Time(Duration::from_secs_f64(args.warmup)),
        measure: Amount::Time(Duration::from_secs_f64(args.duration)),
        request_timeout: REQUEST_TIMEOUT,
        rounds: LATENCY_ROUNDS,
    };
    let mut table = Table {
        header: [
            "cache",
            "stream",
            "conns",
            "requests",
            "p50",
            "p99",
            "req/s",
            "errors",
            "added p50",
            "added p99",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
    };
    for stream in [false, true] {
        for plan in [latency, throughput] {
            let routes: Vec<(Target, Prepared)> = targets
                .iter()
                .map(|t| (t.clone(), Prepared::chat(t, stream)))
                .collect();
            let outcomes = load::compare(&routes, &plan).await?;
            let summaries: Vec<Option<Summary>> = outcomes
                .iter()
                .map(|o| Summary::of(o.timings.iter().map(|t| t.full).collect()))
                .collect();
            let direct = summaries[0];
            for ((side, outcome), summary) in SIDES.iter().zip(&outcomes).zip(&summaries) {
                let cell = |p: fn(&Summary) -> Duration| {
                    summary.map_or("-".into(), |s| format!("{:.3}", ms(p(&s))))
                };
                let added = |p: fn(&Summary) -> Duration| match (summary, direct) {
                    (Some(s), Some(d)) if *side != SIDES[0] => {
                        format!("{:.3}", ms(p(s)) - ms(p(&d)))
                    }
                    _ => "-".into(),
                };
                table.rows.push(vec![
                    (*side).into(),
                    stream.to_string(),
                    plan.connections.to_string(),
                    outcome.timings.len().to_string(),
                    cell(|s| s.p50),
                    cell(|s| s.p99),
                    format!("{:.0}", outcome.per_second()),
                    outcome.errors.to_string(),
                    added(|s| s.p50),
                    added(|s| s.p99),
                ]);
                if let Some(e) = &outcome.first_error {
                    eprintln!("cache {side} stream={stream}: first error: {e}");
                }
            }
        }
    }
    println!(
        "Response cache, the same chat request repeated (ms; added = route - direct):\n{}",
        table.text()
    );
    for service in [&mut off, &mut on] {
        if !service.alive() {
            return Err(BenchError::NotServing {
                what: "gatehouse",
                detail: format!(
                    "it exited during the cache scenario; last output:\n{}",
                    service.tail()
                ),
            });
        }
    }
    Ok(())
}
