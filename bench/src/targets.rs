//! The design's performance targets (DESIGN.md, "Performance targets"), judged on one
//! run's results. Latency targets compare the gateway route with the direct route of the
//! same run, so machine speed cancels out.

use std::time::Duration;

use crate::mcp::Method;
use crate::results::{Mode, Results, Route, Row};
use crate::stats::{Summary, added_ms, ms};

pub const ADDED_P50_MS: f64 = 0.1;
pub const ADDED_P99_MS: f64 = 0.5;
/// Issue #3: what the gateway may add to an MCP request at one connection (p50).
pub const MCP_ADDED_P50_MS: f64 = 1.0;
/// Issue #5: what keys, limits and spend logging may add to a non-stream chat completion
/// at one connection (p50), over the same gateway in local mode without spend logs.
pub const KEYS_ADDED_P50_MS: f64 = 0.05;
/// Gateway throughput as a share of nginx's, in front of the same upstream.
pub const MIN_THROUGHPUT_RATIO: f64 = 0.5;
/// The connection count the throughput target is stated for.
pub const THROUGHPUT_CONNECTIONS: usize = 64;
/// Decimal MB: the stricter reading of "MB".
pub const MAX_IDLE_RSS_BYTES: u64 = 20_000_000;
pub const MAX_AFTER_LOAD_RSS_BYTES: u64 = 30_000_000;
/// Issue 13: gateway memory per stream held open (decimal KB).
pub const MAX_KB_PER_STREAM: f64 = 20.0;
/// A second round of open streams may not leave the gateway bigger than the first did.
pub const MAX_ROUND_GROWTH_BYTES: u64 = 2_000_000;
pub const MAX_STARTUP: Duration = Duration::from_millis(200);

/// One target, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: String,
    pub measured: String,
    pub limit: String,
    pub pass: bool,
}

impl Check {
    pub fn new(name: impl Into<String>, measured: String, limit: String, pass: bool) -> Check {
        Check {
            name: name.into(),
            measured,
            limit,
            pass,
        }
    }

    /// A target that could not be measured counts as failed, never as passed.
    pub fn missing(name: impl Into<String>, limit: String) -> Check {
        Check::new(name, "not measured".into(), limit, false)
    }
}

pub fn evaluate(results: &Results) -> Vec<Check> {
    let mut checks = Vec::new();
    for mode in [Mode::NonStream, Mode::Stream] {
        added_latency(&mut checks, results, mode, "full response", |r| r.full);
        if mode == Mode::Stream {
            added_latency(&mut checks, results, mode, "first byte", |r| r.first_byte);
        }
    }
    for mode in [Mode::NonStream, Mode::Stream] {
        let name = format!(
            "{} throughput at c={THROUGHPUT_CONNECTIONS}, gateway/nginx",
            mode.label()
        );
        let limit = format!(">= {MIN_THROUGHPUT_RATIO:.3}");
        let nginx = results.row(mode, Route::Nginx, THROUGHPUT_CONNECTIONS);
        let via = results.row(mode, Route::Gateway, THROUGHPUT_CONNECTIONS);
        match (nginx, via) {
            (Some(nginx), Some(via)) if nginx.per_second > 0.0 => {
                let ratio = via.per_second / nginx.per_second;
                checks.push(Check::new(
                    name,
                    format!(
                        "{ratio:.3} ({:.0} / {:.0} req/s)",
                        via.per_second, nginx.per_second
                    ),
                    limit,
                    ratio >= MIN_THROUGHPUT_RATIO,
                ));
            }
            _ => checks.push(Check::missing(name, limit)),
        }
    }
    for method in [Method::ToolsList, Method::ToolsCall] {
        let name = format!("MCP {} c=1 added latency p50", method.label());
        let limit = format!("<= {MCP_ADDED_P50_MS} ms");
        let pair = results
            .mcp_pair(method)
            .and_then(|(d, v)| Some((d.full?, v.full?)));
        match pair {
            Some((direct, via)) => {
                let added = added_ms(via.p50, direct.p50);
                checks.push(Check::new(
                    name,
                    format!(
                        "{added:.3} ms ({:.3} vs {:.3})",
                        ms(via.p50),
                        ms(direct.p50)
                    ),
                    limit,
                    added <= MCP_ADDED_P50_MS,
                ));
            }
            None => checks.push(Check::missing(name, limit)),
        }
    }
    keys_added(&mut checks, results);
    for (name, kib, max) in [
        (
            "idle RSS after start",
            results.memory.idle_after_start,
            MAX_IDLE_RSS_BYTES,
        ),
        (
            "idle RSS after load",
            results.memory.idle_after_load,
            MAX_AFTER_LOAD_RSS_BYTES,
        ),
    ] {
        checks.push(at_most_bytes(name, kib.map(|k| k * 1024), max));
    }
    let startup_limit = format!("<= {} ms", MAX_STARTUP.as_millis());
    let startup_name = format!(
        "start to first served request (worst of {})",
        results.startups.len()
    );
    match results.worst_startup() {
        Some(s) => checks.push(Check::new(
            startup_name,
            format!("{:.1} ms", ms(s.to_liveliness)),
            startup_limit,
            s.to_liveliness <= MAX_STARTUP,
        )),
        None => checks.push(Check::missing(startup_name, startup_limit)),
    }
    if let Some(streams) = results.scale.as_ref().and_then(|s| s.streams.as_ref()) {
        held_streams(&mut checks, streams);
    }
    if let Some(s) = &results.mcp_sessions {
        checks.extend(crate::mcp_scale::checks(s));
    }
    let scale_errors = results.scale.as_ref().map_or(0, |s| {
        s.streams.as_ref().map_or(0, |t| t.errors) + s.bodies.iter().map(|b| b.errors).sum::<u64>()
    });
    let errors: u64 = scale_errors
        + results.rows.iter().map(|r| r.errors).sum::<u64>()
        + results.mcp.iter().map(|r| r.errors).sum::<u64>()
        + results.keys.iter().map(|r| r.errors).sum::<u64>()
        + results.mcp_sessions.as_ref().map_or(0, |s| s.errors);
    let ran = !results.rows.is_empty()
        || !results.mcp.is_empty()
        || !results.keys.is_empty()
        || results.mcp_sessions.is_some();
    checks.push(Check::new(
        "failed requests, all scenarios",
        errors.to_string(),
        "0".into(),
        errors == 0 && ran,
    ));
    checks
}

/// Open streams: memory per stream, and no growth from one round to the next.
fn held_streams(checks: &mut Vec<Check>, s: &crate::scale::StreamsResult) {
    let name = format!("{} held streams: added RSS per stream", s.streams);
    let limit = format!("<= {MAX_KB_PER_STREAM} KB");
    match s.kib_per_stream() {
        Some(kib) => {
            let kb = kib * 1.024;
            checks.push(Check::new(
                name,
                format!("{kb:.1} KB"),
                limit,
                kb <= MAX_KB_PER_STREAM,
            ));
        }
        None => checks.push(Check::missing(name, limit)),
    }
    let name = "held streams: RSS growth from round 1 to round 2, after close";
    let growth = match (
        s.rss_after.first().copied().flatten(),
        s.rss_after.get(1).copied().flatten(),
    ) {
        (Some(first), Some(second)) => Some(second.saturating_sub(first) * 1024),
        _ => None,
    };
    checks.push(at_most_bytes(name, growth, MAX_ROUND_GROWTH_BYTES));
}

/// A memory figure against its limit, both in decimal MB.
fn at_most_bytes(name: &str, bytes: Option<u64>, max: u64) -> Check {
    let limit = format!("<= {:.1} MB", max as f64 / 1e6);
    match bytes {
        Some(b) => Check::new(name, format!("{:.1} MB", b as f64 / 1e6), limit, b <= max),
        None => Check::missing(name, limit),
    }
}

/// Keys, limits and spend logging on minus off, p50.
fn keys_added(checks: &mut Vec<Check>, results: &Results) {
    let name = "keys+limits+spend non-stream c=1 added latency p50 (on - off)";
    let limit = format!("<= {KEYS_ADDED_P50_MS} ms");
    let pair = results
        .keys_pair()
        .and_then(|(off, on)| Some((off.full?, on.full?)));
    match pair {
        Some((off, on)) => {
            let added = added_ms(on.p50, off.p50);
            checks.push(Check::new(
                name,
                format!("{added:.3} ms ({:.3} vs {:.3})", ms(on.p50), ms(off.p50)),
                limit,
                added <= KEYS_ADDED_P50_MS,
            ));
        }
        None => checks.push(Check::missing(name, limit)),
    }
}

fn added_latency(
    checks: &mut Vec<Check>,
    results: &Results,
    mode: Mode,
    what: &str,
    pick: impl Fn(&Row) -> Option<Summary>,
) {
    let base = format!("{} c=1 added latency, {what}", mode.label());
    let limits = [
        ("p50", format!("<= {ADDED_P50_MS} ms"), ADDED_P50_MS),
        ("p99", format!("<= {ADDED_P99_MS} ms"), ADDED_P99_MS),
    ];
    let pair = results
        .pair(mode, 1)
        .and_then(|(d, v)| Some((pick(d)?, pick(v)?)));
    for (pct, limit, max) in limits {
        let name = format!("{base} {pct}");
        let Some((direct, via)) = pair else {
            checks.push(Check::missing(name, limit));
            continue;
        };
        let (d, v) = if pct == "p50" {
            (direct.p50, via.p50)
        } else {
            (direct.p99, via.p99)
        };
        let added = added_ms(v, d);
        checks.push(Check::new(
            name,
            format!("{added:.3} ms ({:.3} vs {:.3})", ms(v), ms(d)),
            limit,
            added <= max,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{KeysRow, KeysSide, McpRow, Memory, Startup};

    fn summary(p50_us: u64, p99_us: u64) -> Option<Summary> {
        let d = Duration::from_micros;
        Some(Summary {
            count: 1000,
            p50: d(p50_us),
            p90: d(p50_us),
            p99: d(p99_us),
            p999: d(p99_us),
            max: d(p99_us),
            mean: d(p50_us),
        })
    }

    fn row(mode: Mode, route: Route, c: usize, p50: u64, p99: u64, rps: f64) -> Row {
        Row {
            mode,
            route,
            connections: c,
            full: summary(p50, p99),
            first_byte: summary(p50 / 2, p99 / 2),
            per_second: rps,
            errors: 0,
            first_error: None,
        }
    }

    fn mcp_row(method: Method, route: Route, p50_us: u64) -> McpRow {
        McpRow {
            method,
            route,
            full: summary(p50_us, p50_us * 3),
            per_second: 1000.0,
            errors: 0,
            first_error: None,
        }
    }

    fn keys_row(side: KeysSide, p50_us: u64) -> KeysRow {
        KeysRow {
            side,
            full: summary(p50_us, p50_us * 2),
            per_second: 4000.0,
            errors: 0,
            first_error: None,
        }
    }

    fn passing() -> Results {
        let mut rows = Vec::new();
        for mode in [Mode::NonStream, Mode::Stream] {
            rows.push(row(mode, Route::Direct, 1, 100, 200, 9000.0));
            rows.push(row(mode, Route::Nginx, 1, 130, 250, 7000.0));
            rows.push(row(mode, Route::Gateway, 1, 180, 600, 5000.0));
            rows.push(row(mode, Route::Direct, 64, 5000, 9000, 30000.0));
            rows.push(row(mode, Route::Nginx, 64, 7000, 12000, 16000.0));
            rows.push(row(mode, Route::Gateway, 64, 9000, 20000, 9000.0));
        }
        Results {
            rows,
            startups: vec![Startup {
                to_listening: Duration::from_millis(5),
                to_liveliness: Duration::from_millis(7),
                to_first_chat: Duration::from_millis(9),
            }],
            memory: Memory {
                idle_after_start: Some(8_000),
                idle_after_load: Some(12_000),
                peak: Some(20_000),
            },
            mcp: vec![
                mcp_row(Method::ToolsList, Route::Direct, 1200),
                mcp_row(Method::ToolsList, Route::Gateway, 300),
                mcp_row(Method::ToolsCall, Route::Direct, 600),
                mcp_row(Method::ToolsCall, Route::Gateway, 1600),
            ],
            keys: vec![keys_row(KeysSide::Off, 250), keys_row(KeysSide::On, 300)],
            scale: None,
            mcp_sessions: None,
        }
    }

    fn failed(checks: &[Check]) -> Vec<&str> {
        checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.name.as_str())
            .collect()
    }

    /// Replaces the row of the same mode, route and connection count.
    fn set(r: &mut Results, new: Row) {
        for old in &mut r.rows {
            if (old.mode, old.route, old.connections) == (new.mode, new.route, new.connections) {
                *old = new.clone();
            }
        }
    }

    #[test]
    fn all_targets_met() {
        let checks = evaluate(&passing());
        assert_eq!(failed(&checks), Vec::<&str>::new());
        // 2 + 4 latency, 2 throughput, 2 MCP, 1 keys, 2 RSS, 1 start-up, 1 errors.
        assert_eq!(checks.len(), 15);
    }

    #[test]
    fn mcp_added_p50_over_one_ms_fails_and_mcp_errors_count() {
        let mut r = passing();
        // 600 µs direct, 1601 µs through the gateway: 1.001 ms added.
        r.mcp[3] = mcp_row(Method::ToolsCall, Route::Gateway, 1601);
        r.mcp[0].errors = 2;
        assert_eq!(
            failed(&evaluate(&r)),
            vec![
                "MCP tools/call c=1 added latency p50",
                "failed requests, all scenarios"
            ]
        );
    }

    #[test]
    fn mcp_left_out_is_not_measured_not_passed() {
        let mut r = passing();
        r.mcp.clear();
        let checks = evaluate(&r);
        assert_eq!(
            failed(&checks),
            vec![
                "MCP tools/list c=1 added latency p50",
                "MCP tools/call c=1 added latency p50"
            ]
        );
        assert!(checks.iter().any(|c| c.measured == "not measured"));
    }

    #[test]
    fn keys_adding_over_fifty_microseconds_fails_and_their_errors_count() {
        let mut r = passing();
        // 250 µs off, 301 µs on: 0.051 ms added.
        r.keys[1] = keys_row(KeysSide::On, 301);
        r.keys[0].errors = 1;
        let checks = evaluate(&r);
        assert_eq!(
            failed(&checks),
            vec![
                "keys+limits+spend non-stream c=1 added latency p50 (on - off)",
                "failed requests, all scenarios"
            ]
        );
        let keys = checks.iter().find(|c| c.name.starts_with("keys+")).unwrap();
        assert_eq!(keys.measured, "0.051 ms (0.301 vs 0.250)");
    }

    #[test]
    fn keys_left_out_is_not_measured_not_passed() {
        let mut r = passing();
        r.keys.truncate(1);
        let checks = evaluate(&r);
        assert_eq!(
            failed(&checks),
            vec!["keys+limits+spend non-stream c=1 added latency p50 (on - off)"]
        );
    }

    #[test]
    fn too_much_added_p50_fails_only_that_target() {
        let mut r = passing();
        // 100 µs direct, 201 µs through the gateway: 0.101 ms added.
        set(
            &mut r,
            row(Mode::NonStream, Route::Gateway, 1, 201, 600, 4000.0),
        );
        assert_eq!(
            failed(&evaluate(&r)),
            vec!["non-stream c=1 added latency, full response p50"]
        );
    }

    #[test]
    fn low_throughput_ratio_fails() {
        let mut r = passing();
        // 7,900 of nginx's 16,000 req/s: 0.494.
        set(
            &mut r,
            row(Mode::Stream, Route::Gateway, 64, 9000, 20000, 7900.0),
        );
        assert_eq!(
            failed(&evaluate(&r)),
            vec!["stream throughput at c=64, gateway/nginx"]
        );
    }

    #[test]
    fn throughput_without_nginx_is_not_measured() {
        let mut r = passing();
        r.rows.retain(|row| row.route != Route::Nginx);
        assert_eq!(
            failed(&evaluate(&r)),
            vec![
                "non-stream throughput at c=64, gateway/nginx",
                "stream throughput at c=64, gateway/nginx"
            ]
        );
    }

    #[test]
    fn rss_startup_and_errors_fail() {
        let mut r = passing();
        r.memory.idle_after_start = Some(19_600); // 20.07 MB
        r.memory.idle_after_load = Some(30_000); // 30.7 MB
        r.startups.push(Startup {
            to_listening: Duration::from_millis(150),
            to_liveliness: Duration::from_millis(201),
            to_first_chat: Duration::from_millis(210),
        });
        r.rows[0].errors = 1;
        let checks = evaluate(&r);
        assert_eq!(
            failed(&checks),
            vec![
                "idle RSS after start",
                "idle RSS after load",
                "start to first served request (worst of 2)",
                "failed requests, all scenarios"
            ]
        );
    }

    #[test]
    fn held_streams_are_judged_per_stream_and_by_growth() {
        let mut r = passing();
        r.scale = Some(crate::scale::ScaleResults {
            streams: Some(crate::scale::StreamsResult {
                streams: 1000,
                // 16 MiB before; +19,000 KiB open is 19.5 KB per stream.
                rss_before: Some(16_384),
                rss_open: vec![Some(16_384 + 19_000), Some(40_000)],
                rss_after: vec![Some(30_000), Some(30_000 + 1_000)],
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(failed(&evaluate(&r)), Vec::<&str>::new());
        let streams = r.scale.as_mut().and_then(|s| s.streams.as_mut()).unwrap();
        streams.rss_open[0] = Some(16_384 + 20_000); // 20.5 KB per stream
        streams.rss_after[1] = Some(30_000 + 2_000); // 2.05 MB more after round 2
        streams.errors = 3;
        assert_eq!(
            failed(&evaluate(&r)),
            vec![
                "1000 held streams: added RSS per stream",
                "held streams: RSS growth from round 1 to round 2, after close",
                "failed requests, all scenarios"
            ]
        );
    }

    #[test]
    fn unmeasured_targets_fail() {
        let checks = evaluate(&Results::default());
        assert!(checks.iter().all(|c| !c.pass));
        assert!(checks.iter().any(|c| c.measured == "not measured"));
    }
}
