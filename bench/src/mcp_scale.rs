//! Issue 13's MCP scale scenario: 1,000 sessions on `/mcp` over one stdio upstream.
//!
//! A gateway of its own (master key, no spend logging to mix in) serves server-everything
//! over stdio as `ev`. Sessions are opened the way hosts open them — `initialize`,
//! `notifications/initialized`, `tools/list` — and all stay open. Then `tools/call echo`
//! is timed at one connection, each call on the next session in turn, against the same
//! server spoken to straight over its own stdio (the bench spawns a second copy and writes
//! JSON-RPC lines to it), in alternating slices like every latency scenario. Reported:
//! upstream processes under the gateway (one, however many sessions), added RSS per
//! session, the added latency, and RSS once the sessions are deleted.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::client::{Conn, Prepared, Target};
use crate::error::BenchError;
use crate::mcp::{self, Method};
use crate::procs::Service;
use crate::report::Table;
use crate::run::{Binaries, LATENCY_ROUNDS, MASTER_KEY, REQUEST_TIMEOUT};
use crate::stats::{Summary, added_ms, ms};
use crate::targets::Check;

const PATH: &str = "/mcp";
/// Calls before the sessions open (the upstream process starts on first use) and before
/// each route is measured.
const WARMUP_CALLS: usize = 100;

/// What the scenario measured. Memory in KiB (`VmRSS`).
#[derive(Debug, Clone, Default)]
pub struct SessionsResult {
    pub sessions: usize,
    /// server-everything processes among the gateway's descendants, all sessions open.
    pub upstream_processes: usize,
    pub rss_before: Option<u64>,
    pub rss_open: Option<u64>,
    pub rss_after_calls: Option<u64>,
    /// One second after every session was deleted.
    pub rss_closed: Option<u64>,
    pub open_time: Duration,
    pub direct: Option<Summary>,
    pub gateway: Option<Summary>,
    pub errors: u64,
    pub first_error: Option<String>,
}

impl SessionsResult {
    /// Added RSS per open session, in KiB.
    pub fn kib_per_session(&self) -> Option<f64> {
        let open = self.rss_open?;
        Some(open.saturating_sub(self.rss_before?) as f64 / self.sessions.max(1) as f64)
    }

    fn fail(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }
}

/// Endpoint limits raised to hold `sessions` for one key (the defaults are 64 per key).
fn config(upstream_url: &str, script: &Path, sessions: usize) -> String {
    let cap = sessions + 64;
    format!(
        "{}general_settings:\n  master_key: {MASTER_KEY}\nmcp_servers:\n  ev:\n    command: node\n    \
         args: [\"{}\", \"stdio\"]\nmcp_settings:\n  max_sessions: {cap}\n  max_sessions_per_key: {cap}\n",
        crate::procs::model_list(upstream_url),
        script.display()
    )
}

pub async fn run(
    bins: &Binaries,
    script: &Path,
    upstream_url: &str,
    sessions: usize,
    calls: u64,
) -> Result<SessionsResult, BenchError> {
    let gateway =
        Service::gateway_with_config(&bins.gateway, &config(upstream_url, script, sessions))?;
    let via = Target::from_url(&gateway.url, MASTER_KEY)?;
    let mut direct = StdioServer::start(script).await?;
    let mut out = SessionsResult {
        sessions,
        ..SessionsResult::default()
    };

    // One session warms the gateway and starts its upstream process.
    let first = crate::mcp_run::open_session(&via, PATH, "gateway").await?;
    let mut conn = Conn::open(via.addr).await?;
    let warm = Prepared::mcp(&via, PATH, &first, Method::AggregatedToolsCall);
    for _ in 0..WARMUP_CALLS {
        if let Err(e) = conn.send(&warm, REQUEST_TIMEOUT).await {
            return Err(not_serving(&gateway, format!("warm-up tools/call: {e}")));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    out.rss_before = gateway.rss_kib();

    let started = Instant::now();
    let mut ids = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let id = crate::mcp_run::open_session(&via, PATH, "gateway").await?;
        let list = Prepared::mcp(&via, PATH, &id, Method::AggregatedToolsList);
        if let Err(e) = conn.send(&list, REQUEST_TIMEOUT).await {
            out.fail(format!("tools/list: {e}"));
            conn = Conn::open(via.addr).await?;
        }
        ids.push(id);
    }
    out.open_time = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    out.rss_open = gateway.rss_kib();
    out.upstream_processes = descendants_running(gateway.pid(), &script.to_string_lossy());
    eprintln!(
        "mcp sessions: {sessions} open after {:.1} s, gateway RSS {} KiB, {} upstream process(es)",
        out.open_time.as_secs_f64(),
        out.rss_open.unwrap_or(0),
        out.upstream_processes
    );

    let calls_on: Vec<Prepared> = ids
        .iter()
        .map(|id| Prepared::mcp(&via, PATH, id, Method::AggregatedToolsCall))
        .collect();
    for _ in 0..WARMUP_CALLS {
        direct
            .echo(REQUEST_TIMEOUT)
            .await
            .map_err(|e| direct_failed(&e))?;
    }
    let (mut d, mut g) = (Vec::new(), Vec::new());
    let slice = (calls / u64::from(LATENCY_ROUNDS)).max(1);
    let mut next = 0usize;
    for round in 0..LATENCY_ROUNDS {
        for side in [round % 2, 1 - round % 2] {
            for _ in 0..slice {
                if side == 0 {
                    match direct.echo(REQUEST_TIMEOUT).await {
                        Ok(t) => d.push(t),
                        Err(e) => return Err(direct_failed(&e)),
                    }
                    continue;
                }
                let req = &calls_on[next % calls_on.len().max(1)];
                next += 1;
                match conn.send(req, REQUEST_TIMEOUT).await {
                    Ok(t) => g.push(t.full),
                    Err(e) => {
                        out.fail(format!("tools/call: {e}"));
                        conn = Conn::open(via.addr).await?;
                    }
                }
            }
        }
    }
    out.direct = Summary::of(d);
    out.gateway = Summary::of(g);
    out.rss_after_calls = gateway.rss_kib();

    for id in &ids {
        if let Err(e) = conn
            .send(&Prepared::mcp_delete(&via, PATH, id), REQUEST_TIMEOUT)
            .await
        {
            out.fail(format!("DELETE session: {e}"));
            conn = Conn::open(via.addr).await?;
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    out.rss_closed = gateway.rss_kib();
    Ok(out)
}

/// Issue 13's figures for this scenario.
pub const MAX_UPSTREAM_PROCESSES: usize = 1;
/// Decimal KB per open session.
pub const MAX_KB_PER_SESSION: f64 = 50.0;
pub const MAX_ADDED_P50_MS: f64 = 1.0;

pub fn table(s: &SessionsResult) -> Table {
    let mut t = Table::new(&["measure", "value"]);
    let kib =
        |k: Option<u64>| k.map_or_else(|| "-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
    let lat = |s: Option<Summary>| {
        s.map_or_else(
            || "-".into(),
            |s| format!("{:.3} / {:.3} / {:.3}", ms(s.p50), ms(s.p99), ms(s.p999)),
        )
    };
    let mut row = |k: &str, v: String| t.rows.push(vec![k.to_owned(), v]);
    row("MCP sessions open at once on /mcp", s.sessions.to_string());
    row(
        "upstream processes under the gateway",
        s.upstream_processes.to_string(),
    );
    row(
        "gateway RSS before / with all open (opened in) / after the calls / 1 s after DELETE",
        format!(
            "{} / {} ({:.1} s) / {} / {}",
            kib(s.rss_before),
            kib(s.rss_open),
            s.open_time.as_secs_f64(),
            kib(s.rss_after_calls),
            kib(s.rss_closed)
        ),
    );
    row(
        "added RSS per open session",
        s.kib_per_session()
            .map_or_else(|| "-".into(), |k| format!("{:.1} KB", k * 1.024)),
    );
    row(
        "tools/call direct over stdio, c=1: p50 / p99 / p99.9",
        lat(s.direct),
    );
    row(
        "tools/call via /mcp, each on the next session, c=1: p50 / p99 / p99.9",
        lat(s.gateway),
    );
    row(
        "tools/call added p50 / p99",
        match (s.gateway, s.direct) {
            (Some(g), Some(d)) => format!(
                "{:.3} / {:.3}",
                added_ms(g.p50, d.p50),
                added_ms(g.p99, d.p99)
            ),
            _ => "-".into(),
        },
    );
    row(
        "errors",
        format!(
            "{}{}",
            s.errors,
            s.first_error
                .as_deref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        ),
    );
    t
}

pub fn checks(s: &SessionsResult) -> Vec<Check> {
    let n = s.sessions;
    let mut out = vec![Check::new(
        format!("{n} MCP sessions: upstream processes"),
        s.upstream_processes.to_string(),
        format!("{MAX_UPSTREAM_PROCESSES}"),
        s.upstream_processes == MAX_UPSTREAM_PROCESSES,
    )];
    let name = format!("{n} MCP sessions: added RSS per session");
    let limit = format!("<= {MAX_KB_PER_SESSION} KB");
    out.push(match s.kib_per_session() {
        Some(k) => Check::new(
            name,
            format!("{:.1} KB", k * 1.024),
            limit,
            k * 1.024 <= MAX_KB_PER_SESSION,
        ),
        None => Check::missing(name, limit),
    });
    let name = format!("{n} MCP sessions: tools/call added p50");
    let limit = format!("<= {MAX_ADDED_P50_MS} ms");
    out.push(match (s.gateway, s.direct) {
        (Some(g), Some(d)) => {
            let added = added_ms(g.p50, d.p50);
            Check::new(
                name,
                format!("{added:.3} ms"),
                limit,
                added <= MAX_ADDED_P50_MS,
            )
        }
        _ => Check::missing(name, limit),
    });
    out
}

fn not_serving(gateway: &Service, detail: String) -> BenchError {
    BenchError::NotServing {
        what: "gatehouse",
        detail: format!("{detail}; last output:\n{}", gateway.tail()),
    }
}

fn direct_failed(e: &str) -> BenchError {
    BenchError::NotServing {
        what: "server-everything (stdio)",
        detail: e.to_string(),
    }
}

/// Processes below `root` whose command line mentions `needle` (the orphan guard sits
/// between the gateway and the server; it runs the gateway binary, not the script).
fn descendants_running(root: u32, needle: &str) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let procs: Vec<(u32, u32, String)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid …`: comm may hold spaces, so split after its `)`.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            Some((pid, ppid, String::from_utf8_lossy(&cmd).replace('\0', " ")))
        })
        .collect();
    let mut below = vec![root];
    let mut i = 0;
    while i < below.len() {
        let parent = below[i];
        below.extend(procs.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    let hit = |p: &&(u32, u32, String)| p.0 != root && below.contains(&p.0) && p.2.contains(needle);
    // The guard's own command line names the script too: count only the innermost hits.
    procs
        .iter()
        .filter(hit)
        .filter(|p| !procs.iter().filter(hit).any(|c| c.1 == p.0))
        .count()
}

/// server-everything over stdio, driven by the bench itself: the baseline for the
/// gateway's `tools/call` (same server, same transport, no gateway).
struct StdioServer {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl StdioServer {
    async fn start(script: &Path) -> Result<StdioServer, BenchError> {
        let mut child = Command::new("node")
            .arg(script)
            .arg("stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BenchError::Spawn {
                what: "server-everything (stdio)",
                path: script.to_path_buf(),
                source,
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(direct_failed("no stdio pipes"));
        };
        let mut s = StdioServer {
            _child: child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            next_id: 2,
        };
        s.exchange(&mcp::initialize_body(1), Some(1), None, REQUEST_TIMEOUT)
            .await
            .map_err(|e| direct_failed(&format!("initialize: {e}")))?;
        s.exchange(mcp::INITIALIZED_BODY, None, None, REQUEST_TIMEOUT)
            .await
            .map_err(|e| direct_failed(&format!("notifications/initialized: {e}")))?;
        Ok(s)
    }

    /// One `tools/call echo`, timed from writing the line to reading its answer.
    async fn echo(&mut self, timeout: Duration) -> Result<Duration, String> {
        let id = self.next_id;
        self.next_id += 1;
        let (before, after) = Method::ToolsCall.body_parts();
        let body = format!("{before}{id}{after}");
        let started = Instant::now();
        self.exchange(&body, Some(id), Some(Method::ToolsCall), timeout)
            .await?;
        Ok(started.elapsed())
    }

    /// Writes one line; with `id`, reads lines (skipping the server's notifications)
    /// until the answer to it, which must be a result (of `method`, when given).
    async fn exchange(
        &mut self,
        line: &str,
        id: Option<u64>,
        method: Option<Method>,
        timeout: Duration,
    ) -> Result<(), String> {
        let work = async {
            self.stdin
                .write_all(format!("{line}\n").as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            self.stdin.flush().await.map_err(|e| e.to_string())?;
            let Some(id) = id else { return Ok(()) };
            loop {
                let Some(l) = self.lines.next_line().await.map_err(|e| e.to_string())? else {
                    return Err("the server closed its stdout".into());
                };
                match mcp::check_response(l.as_bytes(), id, method) {
                    Err(mcp::RpcFailure::Missing(_)) => continue,
                    r => return r.map_err(|e| e.to_string()),
                }
            }
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {timeout:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_holds_the_sessions_for_one_key() {
        let text = config("http://127.0.0.1:9", Path::new("/x/index.js"), 1000);
        let cfg = gatehouse_config::load::load_str(&text, "bench.yaml", &|_| None)
            .unwrap()
            .config;
        assert_eq!(cfg.mcp_settings.max_sessions_per_key, Some(1064));
        assert_eq!(cfg.mcp_servers["ev"].command.as_deref(), Some("node"));
        assert_eq!(cfg.mcp_servers["ev"].args, ["/x/index.js", "stdio"]);
    }

    #[test]
    fn finds_itself_below_its_parent() {
        let me = std::process::id();
        let parent = std::fs::read_to_string(format!("/proc/{me}/stat"))
            .unwrap()
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy().into_owned();
        assert!(descendants_running(parent, &name) >= 1);
        assert_eq!(descendants_running(me, "no-such-command-line"), 0);
    }
}
