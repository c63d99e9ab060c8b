//! What an optional feature costs or saves, each against the same gateway without it, in
//! one run: the response cache (issue 15: the same chat request again and again, every
//! request after the first a hit, `cache: true`, local) and OpenTelemetry tracing (spans
//! of every request exported over OTLP/HTTP to a receiver that accepts and drops them —
//! the bench's own upstream, which answers any POST). Straight to the upstream, through a
//! gateway without the feature, and through one with it; non-stream and streamed; one
//! connection (added latency) and 64 (throughput), in alternating slices like the other
//! scenarios so background load hits every route alike.

use std::time::Duration;

use crate::cli::Args;
use crate::client::{Prepared, Target};
use crate::error::BenchError;
use crate::load::{self, Amount, Plan};
use crate::procs::{Service, model_list};
use crate::report::Table;
use crate::run::{Binaries, COUNT_PHASE_LIMIT, LATENCY_ROUNDS, MOCK_KEY, REQUEST_TIMEOUT};
use crate::stats::{Summary, ms};

/// One optional feature: what turns it on.
struct Feature {
    name: &'static str,
    /// Appended to the config.
    config: &'static str,
    /// Set in the gateway's environment; `{upstream}` is replaced by the upstream's URL.
    env: &'static [(&'static str, &'static str)],
}

const FEATURES: [Feature; 2] = [
    Feature {
        name: "response cache (hit)",
        config: "litellm_settings:\n  cache: true\n  cache_params: {type: local, ttl: 3600}\n",
        env: &[],
    },
    Feature {
        name: "OTLP tracing",
        config: "",
        env: &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "{upstream}"),
            ("OTEL_SERVICE_NAME", "gatehouse-bench"),
        ],
    },
];

/// Local mode and no spend rows on both gateways: the difference is the feature alone.
fn config(upstream_url: &str, feature: Option<&Feature>) -> String {
    format!(
        "{}{}general_settings:\n  disable_spend_logs: true\n",
        model_list(upstream_url),
        feature.map_or("", |f| f.config)
    )
}

/// Runs the scenario and prints a table per feature; `--feature-requests 0` skips it.
pub async fn run(args: &Args, bins: &Binaries, upstream_url: &str) -> Result<(), BenchError> {
    if args.feature_requests == 0 {
        return Ok(());
    }
    for feature in &FEATURES {
        measure(args, bins, upstream_url, feature).await?;
    }
    Ok(())
}

async fn measure(
    args: &Args,
    bins: &Binaries,
    mock_url: &str,
    feature: &Feature,
) -> Result<(), BenchError> {
    let env: Vec<(&str, String)> = feature
        .env
        .iter()
        .map(|(k, v)| (*k, v.replace("{upstream}", mock_url)))
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut off = Service::gateway_with_config(&bins.gateway, &config(mock_url, None))?;
    let mut on =
        Service::gateway_with_config_env(&bins.gateway, &config(mock_url, Some(feature)), &env)?;
    let sides = ["direct", "gateway without", "gateway with"];
    let targets = [
        Target::from_url(mock_url, MOCK_KEY)?,
        Target::from_url(&off.url, "sk-bench")?,
        Target::from_url(&on.url, "sk-bench")?,
    ];
    let latency = Plan {
        connections: 1,
        warmup: Amount::Requests {
            count: args.feature_requests / 10 + 1,
            limit: COUNT_PHASE_LIMIT,
        },
        measure: Amount::Requests {
            count: args.feature_requests,
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
            "route",
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
            for ((side, outcome), summary) in sides.iter().zip(&outcomes).zip(&summaries) {
                let cell = |p: fn(&Summary) -> Duration| {
                    summary.map_or("-".into(), |s| format!("{:.3}", ms(p(&s))))
                };
                let added = |p: fn(&Summary) -> Duration| match (summary, direct) {
                    (Some(s), Some(d)) if *side != sides[0] => {
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
                    eprintln!("{} {side} stream={stream}: first error: {e}", feature.name);
                }
            }
        }
    }
    println!(
        "{}, the same chat request repeated (ms; added = route - direct):\n{}",
        feature.name,
        table.text()
    );
    for service in [&mut off, &mut on] {
        if !service.alive() {
            return Err(BenchError::NotServing {
                what: "gatehouse",
                detail: format!(
                    "it exited during the {} scenario; last output:\n{}",
                    feature.name,
                    service.tail()
                ),
            });
        }
    }
    Ok(())
}
