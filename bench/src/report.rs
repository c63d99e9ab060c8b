//! Printing a run: aligned text for the terminal, Markdown for docs/benchmarks.md.

use std::fmt::Write as _;

use crate::results::{KeysSide, Mode, Results, Route};
use crate::stats::{Summary, added_ms, ms};
use crate::targets::Check;

/// A table as plain cells; rendered either way.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|h| (*h).to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Columns padded to their widest cell; numbers and text alike left-aligned.
    pub fn text(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            padded.join("  ").trim_end().to_string()
        };
        let mut out = line(&self.header);
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("| {} |\n", self.header.join(" | "));
        out.push_str(&format!("|{}\n", "---|".repeat(self.header.len())));
        for row in &self.rows {
            out.push_str(&format!("| {} |\n", row.join(" | ")));
        }
        out
    }
}

fn f3(v: f64) -> String {
    format!("{v:.3}")
}

fn lat(s: Option<Summary>, pick: fn(&Summary) -> std::time::Duration) -> String {
    s.map(|s| f3(ms(pick(&s)))).unwrap_or_else(|| "-".into())
}

/// Every scenario, one line each (latencies in ms).
pub fn scenarios(results: &Results) -> Table {
    let mut t = Table::new(&[
        "mode", "route", "conns", "requests", "p50", "p90", "p99", "p99.9", "mean", "TTFB p50",
        "TTFB p99", "req/s", "errors",
    ]);
    for r in &results.rows {
        let stream = r.mode == Mode::Stream;
        t.rows.push(vec![
            r.mode.label().into(),
            r.route.label().into(),
            r.connections.to_string(),
            r.full.map(|s| s.count).unwrap_or(0).to_string(),
            lat(r.full, |s| s.p50),
            lat(r.full, |s| s.p90),
            lat(r.full, |s| s.p99),
            lat(r.full, |s| s.p999),
            lat(r.full, |s| s.mean),
            if stream {
                lat(r.first_byte, |s| s.p50)
            } else {
                "-".into()
            },
            if stream {
                lat(r.first_byte, |s| s.p99)
            } else {
                "-".into()
            },
            format!("{:.0}", r.per_second),
            r.errors.to_string(),
        ]);
    }
    t
}

/// Each proxy (nginx, the gateway) minus direct, per scenario (ms), its throughput as a
/// share of direct's, and the gateway's as a share of nginx's.
pub fn comparison(results: &Results) -> Table {
    let mut t = Table::new(&[
        "mode",
        "conns",
        "route",
        "added p50",
        "added p99",
        "added p99.9",
        "added TTFB p50",
        "added TTFB p99",
        "throughput / direct",
        "gateway / nginx",
    ]);
    for r in &results.rows {
        if r.route == Route::Direct {
            continue;
        }
        let Some(direct) = results.row(r.mode, Route::Direct, r.connections) else {
            continue;
        };
        let added = |a: Option<Summary>,
                     b: Option<Summary>,
                     p: fn(&Summary) -> std::time::Duration| {
            match (a, b) {
                (Some(v), Some(d)) => f3(added_ms(p(&v), p(&d))),
                _ => "-".into(),
            }
        };
        let share = |of: f64| {
            if of > 0.0 {
                f3(r.per_second / of)
            } else {
                "-".into()
            }
        };
        let stream = r.mode == Mode::Stream;
        let of_nginx = match (r.route, results.row(r.mode, Route::Nginx, r.connections)) {
            (Route::Gateway, Some(nginx)) => share(nginx.per_second),
            _ => "-".into(),
        };
        t.rows.push(vec![
            r.mode.label().into(),
            r.connections.to_string(),
            r.route.label().into(),
            added(r.full, direct.full, |s| s.p50),
            added(r.full, direct.full, |s| s.p99),
            added(r.full, direct.full, |s| s.p999),
            if stream {
                added(r.first_byte, direct.first_byte, |s| s.p50)
            } else {
                "-".into()
            },
            if stream {
                added(r.first_byte, direct.first_byte, |s| s.p99)
            } else {
                "-".into()
            },
            share(direct.per_second),
            of_nginx,
        ]);
    }
    t
}

/// The MCP scenarios, one line per method and route, and the gateway's added latency
/// (latencies in ms).
pub fn mcp(results: &Results) -> Table {
    let mut t = Table::new(&[
        "method",
        "route",
        "conns",
        "requests",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "mean",
        "req/s",
        "errors",
        "added p50",
        "added p99",
    ]);
    for r in &results.mcp {
        let added =
            |p: fn(&Summary) -> std::time::Duration| match (r.route, results.mcp_pair(r.method)) {
                (Route::Gateway, Some((direct, via))) => match (via.full, direct.full) {
                    (Some(v), Some(d)) => f3(added_ms(p(&v), p(&d))),
                    _ => "-".into(),
                },
                _ => "-".into(),
            };
        t.rows.push(vec![
            r.method.label().into(),
            r.route.label().into(),
            "1".into(),
            r.full.map(|s| s.count).unwrap_or(0).to_string(),
            lat(r.full, |s| s.p50),
            lat(r.full, |s| s.p90),
            lat(r.full, |s| s.p99),
            lat(r.full, |s| s.p999),
            lat(r.full, |s| s.mean),
            format!("{:.0}", r.per_second),
            r.errors.to_string(),
            added(|s| s.p50),
            added(|s| s.p99),
        ]);
    }
    t
}

/// The key-overhead scenario (issue #5): both gateways, and what "on" adds over "off"
/// on the "on" line (latencies in ms).
pub fn keys(results: &Results) -> Table {
    let mut t = Table::new(&[
        "keys, limits, spend",
        "conns",
        "requests",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "mean",
        "req/s",
        "errors",
        "added p50",
        "added p99",
    ]);
    for r in &results.keys {
        let added = |p: fn(&Summary) -> std::time::Duration| match (r.side, results.keys_pair()) {
            (KeysSide::On, Some((off, on))) => match (on.full, off.full) {
                (Some(v), Some(d)) => f3(added_ms(p(&v), p(&d))),
                _ => "-".into(),
            },
            _ => "-".into(),
        };
        t.rows.push(vec![
            r.side.label().into(),
            "1".into(),
            r.full.map(|s| s.count).unwrap_or(0).to_string(),
            lat(r.full, |s| s.p50),
            lat(r.full, |s| s.p90),
            lat(r.full, |s| s.p99),
            lat(r.full, |s| s.p999),
            lat(r.full, |s| s.mean),
            format!("{:.0}", r.per_second),
            r.errors.to_string(),
            added(|s| s.p50),
            added(|s| s.p99),
        ]);
    }
    t
}

/// Start-up trials and memory.
pub fn process(results: &Results) -> Table {
    let mut t = Table::new(&["measure", "value"]);
    for (i, s) in results.startups.iter().enumerate() {
        t.rows.push(vec![
            format!(
                "start #{}: spawn → listening / → liveliness 200 / → first chat 200",
                i + 1
            ),
            format!(
                "{:.1} / {:.1} / {:.1} ms",
                ms(s.to_listening),
                ms(s.to_liveliness),
                ms(s.to_first_chat)
            ),
        ]);
    }
    let mib = |k: Option<u64>| {
        k.map(|k| {
            format!(
                "{:.1} MiB ({:.1} MB)",
                k as f64 / 1024.0,
                k as f64 * 1024.0 / 1e6
            )
        })
        .unwrap_or_else(|| "-".into())
    };
    let m = results.memory;
    t.rows.push(vec![
        "gateway RSS after start (idle)".into(),
        mib(m.idle_after_start),
    ]);
    t.rows.push(vec![
        "gateway RSS after load (idle)".into(),
        mib(m.idle_after_load),
    ]);
    t.rows
        .push(vec!["gateway peak RSS (VmHWM)".into(), mib(m.peak)]);
    t
}

/// The scale scenarios: held streams and 1 MB bodies (empty without `--scale`).
pub fn scale(results: &Results) -> Table {
    let mut t = Table::new(&["measure", "value"]);
    let Some(scale) = &results.scale else {
        return t;
    };
    let kib = |k: Option<u64>| k.map(|k| format!("{:.1} MiB", k as f64 / 1024.0));
    let dash = |s: Option<String>| s.unwrap_or_else(|| "-".into());
    if let Some(s) = &scale.streams {
        t.rows.push(vec![
            "streams held open at once".into(),
            s.streams.to_string(),
        ]);
        t.rows.push(vec![
            "gateway RSS before the streams".into(),
            dash(kib(s.rss_before)),
        ]);
        for (i, (open, after)) in s.rss_open.iter().zip(&s.rss_after).enumerate() {
            let secs = s.open_time.get(i).map(|d| d.as_secs_f64()).unwrap_or(0.0);
            t.rows.push(vec![
                format!(
                    "round {}: RSS with all open (opened in) / 1 s after they ended",
                    i + 1
                ),
                format!("{} ({secs:.1} s) / {}", dash(kib(*open)), dash(kib(*after))),
            ]);
        }
        t.rows.push(vec![
            "added RSS per open stream (round 1)".into(),
            dash(s.kib_per_stream().map(|k| format!("{:.1} KB", k * 1.024))),
        ]);
        t.rows.push(vec![
            "held-stream errors".into(),
            format!(
                "{}{}",
                s.errors,
                s.first_error
                    .as_deref()
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default()
            ),
        ]);
    }
    for b in &scale.bodies {
        let direct = scale
            .bodies
            .iter()
            .find(|d| d.kind == b.kind && d.route == Route::Direct);
        let added = match (b.full, direct.and_then(|d| d.full)) {
            (Some(v), Some(d)) if b.route != Route::Direct => {
                format!(", added p50 {}", f3(added_ms(v.p50, d.p50)))
            }
            _ => String::new(),
        };
        t.rows.push(vec![
            format!("{}, {}, c=1: p50 / p99 ms", b.kind, b.route.label()),
            format!(
                "{} / {}{added}, errors {}{}",
                lat(b.full, |s| s.p50),
                lat(b.full, |s| s.p99),
                b.errors,
                b.first_error
                    .as_deref()
                    .map(|e| format!(" (first: {e})"))
                    .unwrap_or_default()
            ),
        ]);
    }
    let (before, after, peak) = scale.body_rss;
    if !scale.bodies.is_empty() {
        t.rows.push(vec![
            "gateway RSS before / after the 1 MB bodies, peak".into(),
            format!(
                "{} / {}, {}",
                dash(kib(before)),
                dash(kib(after)),
                dash(kib(peak))
            ),
        ]);
    }
    t
}

pub fn checks(checks: &[Check]) -> Table {
    let mut t = Table::new(&["target", "measured", "limit", "result"]);
    for c in checks {
        t.rows.push(vec![
            c.name.clone(),
            c.measured.clone(),
            c.limit.clone(),
            if c.pass { "PASS" } else { "FAIL" }.into(),
        ]);
    }
    t
}

/// Facts about the machine and the run, printed above the tables.
pub struct Facts {
    pub date: String,
    pub commit: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub command: String,
    /// 1-minute load average before and after the run: how busy the shared machine was.
    pub load: (String, String),
}

pub fn markdown(facts: &Facts, results: &Results, judged: &[Check]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "- date: {}", facts.date);
    let _ = writeln!(out, "- commit: {}", facts.commit);
    let _ = writeln!(out, "- machine: {} CPUs ({})", facts.cpus, facts.cpu_model);
    let _ = writeln!(out, "- command: `{}`", facts.command);
    let _ = writeln!(
        out,
        "- 1-minute load average before / after the run: {} / {}",
        facts.load.0, facts.load.1
    );
    let _ = writeln!(out, "\nLatencies in milliseconds.\n");
    out.push_str(&scenarios(results).markdown());
    out.push('\n');
    out.push_str(&comparison(results).markdown());
    out.push('\n');
    if !results.mcp.is_empty() {
        out.push_str(&mcp(results).markdown());
        out.push('\n');
    }
    if !results.keys.is_empty() {
        out.push_str(&keys(results).markdown());
        out.push('\n');
    }
    out.push_str(&process(results).markdown());
    out.push('\n');
    if results.scale.is_some() {
        out.push_str(&scale(results).markdown());
        out.push('\n');
    }
    if let Some(s) = &results.mcp_sessions {
        out.push_str(&crate::mcp_scale::table(s).markdown());
        out.push('\n');
    }
    out.push_str(&checks(judged).markdown());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_markdown_render_every_cell() {
        let mut t = Table::new(&["a", "bb"]);
        t.rows.push(vec!["xxx".into(), "1".into()]);
        assert_eq!(t.text(), "a    bb\nxxx  1\n");
        assert_eq!(t.markdown(), "| a | bb |\n|---|---|\n| xxx | 1 |\n");
    }

    #[test]
    fn keys_table_shows_on_minus_off_on_the_on_line() {
        use crate::results::KeysRow;
        let us = std::time::Duration::from_micros;
        let row = |side, p50, p99| KeysRow {
            side,
            full: Summary::of(
                (0..100)
                    .map(|i| if i < 98 { us(p50) } else { us(p99) })
                    .collect(),
            ),
            per_second: 4000.0,
            errors: 0,
            first_error: None,
        };
        let results = Results {
            keys: vec![row(KeysSide::Off, 200, 400), row(KeysSide::On, 230, 500)],
            ..Results::default()
        };
        let t = keys(&results);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][0], "off");
        // p99.9 sits after p99, so "added" starts at column 10.
        assert_eq!(t.rows[0][10], "-");
        assert_eq!(t.rows[1][0], "on");
        assert_eq!(t.rows[1][2], "100");
        assert_eq!(t.rows[1][3], "0.230");
        assert_eq!(t.rows[1][10], "0.030");
        assert_eq!(t.rows[1][11], "0.100");
        let md = markdown(
            &Facts {
                date: "d".into(),
                commit: "c".into(),
                cpus: 2,
                cpu_model: "cpu".into(),
                command: "cmd".into(),
                load: ("0".into(), "0".into()),
            },
            &results,
            &[],
        );
        assert!(md.contains("| on | 1 | 100 | 0.230 |"), "{md}");
    }

    #[test]
    fn mcp_table_shows_added_latency_on_the_gateway_line() {
        use crate::mcp::Method;
        use crate::results::McpRow;
        let us = std::time::Duration::from_micros;
        let row = |route, p50| McpRow {
            method: Method::ToolsCall,
            route,
            full: Summary::of(vec![us(p50); 10]),
            per_second: 100.0,
            errors: 0,
            first_error: None,
        };
        let results = Results {
            mcp: vec![row(Route::Direct, 600), row(Route::Gateway, 850)],
            ..Results::default()
        };
        let t = mcp(&results);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0][11], "-");
        assert_eq!(t.rows[1][11], "0.250");
        assert_eq!(t.rows[1][3], "10");
    }
}
