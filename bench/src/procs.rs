//! Starting the mock and the gateway as real processes (release binaries), learning their
//! address from the line they print when ready, reading their memory, and killing them
//! when done — also when the benchmark itself fails half-way.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::error::BenchError;

/// How long a process may take to print its address.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Log lines kept for error messages; the rest are read and dropped so a chatty
/// process never blocks on a full pipe.
const KEEP_LINES: usize = 40;

/// A child process that prints `... listening on http://HOST:PORT` when it serves.
pub struct Service {
    child: Child,
    pub url: String,
    /// When `spawn` was called, for start-up time.
    pub spawned: Instant,
    /// When the listening line was read.
    pub listening: Instant,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// Removed on drop (the gateway's config).
    scratch: Option<PathBuf>,
}

/// Which stream carries the readiness line.
#[derive(Clone, Copy)]
enum Channel {
    Stdout,
    Stderr,
}

impl Service {
    /// `gatehouse-mock --port 0`: zero delay, requests not recorded.
    pub fn mock(bin: &Path) -> Result<Service, BenchError> {
        let mut cmd = Command::new(bin);
        cmd.args(["--port", "0", "--host", "127.0.0.1"]);
        spawn(
            "gatehouse-mock",
            bin,
            cmd,
            Channel::Stdout,
            listening_url,
            None,
        )
    }

    /// `PORT=N node …/server-everything/dist/index.js streamableHttp` on a free port. It
    /// listens on all interfaces; the benchmark only talks to it on 127.0.0.1.
    pub fn everything(script: &Path) -> Result<Service, BenchError> {
        let port = free_port().map_err(|source| BenchError::Spawn {
            what: "server-everything",
            path: script.to_path_buf(),
            source,
        })?;
        let mut cmd = Command::new("node");
        cmd.arg(script)
            .arg("streamableHttp")
            .env("PORT", port.to_string());
        spawn(
            "server-everything",
            script,
            cmd,
            // `console.error("... listening on port N")`.
            Channel::Stderr,
            node_listening_url,
            None,
        )
    }

    /// `gatehouse --config FILE --port 0 --host 127.0.0.1` with `config` written to a
    /// fresh temp dir of its own, so the SQLite key store the gateway creates beside the
    /// config is never shared with another gateway of the run. `RUST_LOG` is removed so
    /// the default log level is what gets measured, and `DATABASE_URL` so the store is
    /// that file, not whatever the caller's shell points at.
    pub fn gateway_with_config(bin: &Path, config_text: &str) -> Result<Service, BenchError> {
        Self::gateway_with_config_env(bin, config_text, &[])
    }

    /// [`Service::gateway_with_config`] with extra environment variables.
    pub fn gateway_with_config_env(
        bin: &Path,
        config_text: &str,
        env: &[(&str, &str)],
    ) -> Result<Service, BenchError> {
        let dir = config_dir(config_text)?;
        let mut service = Service::gateway_in_env(bin, &dir, env)?;
        service.scratch = Some(dir);
        Ok(service)
    }

    /// `gateway_with_config` on a directory `config_dir` made (kept when the gateway
    /// stops: its store outlives it, for another start).
    pub fn gateway_in(bin: &Path, dir: &Path) -> Result<Service, BenchError> {
        Self::gateway_in_env(bin, dir, &[])
    }

    fn gateway_in_env(bin: &Path, dir: &Path, env: &[(&str, &str)]) -> Result<Service, BenchError> {
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(dir.join("config.yaml")).args([
            "--port",
            "0",
            "--host",
            "127.0.0.1",
        ]);
        gateway_env(&mut cmd);
        cmd.envs(env.iter().copied());
        spawn("gatehouse", bin, cmd, Channel::Stderr, listening_url, None)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Option<u64> {
        status_field(self.pid(), "VmRSS:")
    }

    /// Peak resident memory so far, in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        status_field(self.pid(), "VmHWM:")
    }

    /// The last lines the process wrote (for error messages).
    pub fn tail(&self) -> String {
        join_tail(&self.tail)
    }

    /// Whether the process is still running (it should be, for the whole run).
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The smallest LiteLLM config that routes model `bench` to the mock (and MCP server `ev`
/// to `mcp_url`).
pub fn gateway_config(upstream_url: &str, mcp_url: Option<&str>, master_key: &str) -> String {
    let mut config = format!(
        "{}general_settings:\n  master_key: {master_key}\n",
        model_list(upstream_url)
    );
    if let Some(url) = mcp_url {
        config.push_str(&format!(
            "mcp_servers:\n  ev:\n    transport: http\n    url: \"{url}\"\n"
        ));
    }
    config
}

/// `model_list` with the one model `bench`, served by `upstream_url`/v1 (the mock).
pub fn model_list(upstream_url: &str) -> String {
    format!(
        "model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/bench\n      \
         api_base: \"{upstream_url}/v1\"\n      api_key: sk-upstream\n"
    )
}

/// A port nobody listens on right now (bind to port 0, read it, release it). Another
/// process could take it before the child binds; the child then fails to start and the
/// run reports that, which is rare enough on a loopback-only benchmark.
fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A fresh temp dir holding `config.yaml` with `config_text`.
pub fn config_dir(config_text: &str) -> Result<PathBuf, BenchError> {
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-bench-{}-{}",
        std::process::id(),
        unique()
    ));
    let config = dir.join("config.yaml");
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&config, config_text))
        .map_err(|source| BenchError::Write {
            path: config.clone(),
            source,
        })?;
    Ok(dir)
}

/// What a gateway (or its CLI) must not inherit from the caller's shell.
pub fn gateway_env(cmd: &mut Command) {
    cmd.env_remove("RUST_LOG")
        .env_remove("LITELLM_LOG")
        .env_remove("GATEHOUSE_CONFIG")
        .env_remove("DATABASE_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT");
}

fn spawn(
    what: &'static str,
    bin: &Path,
    mut cmd: Command,
    channel: Channel,
    ready: fn(&str) -> Option<String>,
    scratch: Option<PathBuf>,
) -> Result<Service, BenchError> {
    match channel {
        Channel::Stdout => cmd.stdout(Stdio::piped()).stderr(Stdio::null()),
        Channel::Stderr => cmd.stdout(Stdio::null()).stderr(Stdio::piped()),
    };
    cmd.stdin(Stdio::null());
    let spawned = Instant::now();
    let mut child = cmd.spawn().map_err(|source| BenchError::Spawn {
        what,
        path: bin.to_path_buf(),
        source,
    })?;
    let pipe: Option<Box<dyn Read + Send>> = match channel {
        Channel::Stdout => child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        Channel::Stderr => child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    };
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(KEEP_LINES)));
    let (tx, rx) = mpsc::channel();
    if let Some(pipe) = pipe {
        let sink = tail.clone();
        std::thread::spawn(move || read_lines(pipe, &sink, &tx, ready));
    }
    let mut service = Service {
        child,
        url: String::new(),
        spawned,
        listening: spawned,
        tail,
        scratch,
    };
    match rx.recv_timeout(READY_TIMEOUT) {
        Ok(url) => {
            service.listening = Instant::now();
            service.url = url;
            Ok(service)
        }
        // Dropping `service` kills the process and removes its scratch dir.
        Err(_) => Err(BenchError::NotReady {
            what,
            secs: READY_TIMEOUT.as_secs(),
            output: service.tail(),
        }),
    }
}

fn read_lines(
    pipe: Box<dyn Read + Send>,
    tail: &Mutex<VecDeque<String>>,
    tx: &mpsc::Sender<String>,
    ready: fn(&str) -> Option<String>,
) {
    let mut sent = false;
    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
        if !sent && let Some(url) = ready(&line) {
            let _ = tx.send(url);
            sent = true;
        }
        if let Ok(mut tail) = tail.lock() {
            if tail.len() == KEEP_LINES {
                tail.pop_front();
            }
            tail.push_back(line);
        }
    }
}

fn join_tail(tail: &Mutex<VecDeque<String>>) -> String {
    tail.lock()
        .map(|t| t.iter().cloned().collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// `http://HOST:PORT` out of a log line, which may carry colour codes or JSON quoting.
pub fn listening_url(line: &str) -> Option<String> {
    let at = line.find("listening on http://")?;
    let rest = &line[at + "listening on ".len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '.' | '[' | ']')))
        .unwrap_or(rest.len());
    Some(rest[..end].trim_end_matches('/').to_string())
}

/// server-everything's `... listening on port N` → `http://127.0.0.1:N` (it binds every
/// interface; loopback is the one the benchmark uses).
pub fn node_listening_url(line: &str) -> Option<String> {
    let at = line.find("listening on port ")?;
    let digits: String = line[at + "listening on port ".len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let port: u16 = digits.parse().ok()?;
    Some(format!("http://127.0.0.1:{port}"))
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, field)
}

/// `VmRSS:    12345 kB` (a tab after the colon) → 12345.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A scratch-dir suffix: the clock, plus a counter because the key-overhead section
/// starts two gateways back to back and each needs its own dir (its own key store).
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_url_in_plain_ansi_and_json_lines() {
        assert_eq!(
            listening_url("gatehouse-mock listening on http://127.0.0.1:4321").as_deref(),
            Some("http://127.0.0.1:4321")
        );
        let ansi = "2026-11-25T04:00:00Z \x1b[32m INFO\x1b[0m gatehouse listening on http://127.0.0.1:39999\x1b[0m \x1b[3mmodels\x1b[0m=1";
        assert_eq!(
            listening_url(ansi).as_deref(),
            Some("http://127.0.0.1:39999")
        );
        let json =
            r#"{"level":"INFO","message":"gatehouse listening on http://127.0.0.1:80","models":1}"#;
        assert_eq!(listening_url(json).as_deref(), Some("http://127.0.0.1:80"));
        assert_eq!(listening_url("starting"), None);
    }

    #[test]
    fn reads_rss_from_proc_status_text() {
        let status = "Name:\tgatehouse\nVmHWM:\t   20480 kB\nVmRSS:\t   12345 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(12345));
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn own_process_has_a_resident_set() {
        let rss = status_field(std::process::id(), "VmRSS:").unwrap();
        assert!(
            rss > 100,
            "a running test binary uses more than 100 KiB: {rss}"
        );
    }

    #[test]
    fn config_routes_bench_to_the_mock() {
        let c = gateway_config("http://127.0.0.1:9", None, "sk-bench");
        assert!(c.contains("model_name: bench"));
        assert!(c.contains("api_base: \"http://127.0.0.1:9/v1\""));
        assert!(c.contains("master_key: sk-bench"));
        assert!(!c.contains("mcp_servers"));
    }

    #[test]
    fn config_adds_the_mcp_server_ev() {
        let c = gateway_config("http://127.0.0.1:9", Some("http://127.0.0.1:7/mcp"), "k");
        assert!(c.ends_with(
            "mcp_servers:\n  ev:\n    transport: http\n    url: \"http://127.0.0.1:7/mcp\"\n"
        ));
        assert!(c.contains("master_key: k\n"), "{c}");
    }

    #[test]
    fn finds_the_port_server_everything_prints() {
        assert_eq!(
            node_listening_url("MCP Streamable HTTP Server listening on port 38771").as_deref(),
            Some("http://127.0.0.1:38771")
        );
        assert_eq!(
            node_listening_url("Starting Streamable HTTP server..."),
            None
        );
        assert_eq!(node_listening_url("listening on port x"), None);
    }
}
