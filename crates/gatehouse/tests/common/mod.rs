//! Starts the real `gatehouse` binary on a free port with a real config file.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The variables the gateway discovers providers from when it has no config.
pub const DISCOVERY_ENV: &[&str] = &[
    "OPENAI_API_KEY",
    "OPENAI_API_BASE",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_API_BASE",
    "GEMINI_API_KEY",
    "GEMINI_API_BASE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
    "OLLAMA_HOST",
    "GATEHOUSE_DEFAULT_UPSTREAM",
    "GATEHOUSE_CONFIG",
];

pub struct Gateway {
    child: Option<Child>,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// Every log line the gateway wrote to stderr so far.
    pub logs: Arc<Mutex<Vec<String>>>,
    /// A directory from an earlier gateway this one reuses.
    pub keep: Option<PathBuf>,
}

impl Gateway {
    /// Writes `config` to a temp dir and starts `gatehouse --config it --port 0`.
    pub fn start(config: &str) -> Gateway {
        Self::start_with(config, &[], &[])
    }

    pub fn start_with(config: &str, args: &[&str], env: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, config).unwrap();
        let mut all = vec!["--config", path.to_str().unwrap()];
        all.extend_from_slice(args);
        Self::spawn(dir, &all, env)
    }

    /// Starts on `config` in an existing directory (to restart on the same database).
    pub fn start_with_dir(config: &str, dir: PathBuf) -> Gateway {
        let path = dir.join("config.yaml");
        std::fs::write(&path, config).unwrap();
        let holder = tempfile::tempdir().unwrap();
        let mut gw = Self::spawn(holder, &["--config", path.to_str().unwrap()], &[]);
        gw.keep = Some(dir);
        gw
    }

    /// Starts `gatehouse ARGS --port 0` (no config written).
    pub fn spawn(dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.args(args).args(["--port", "0"]);
        // Without --config the gateway serves what the environment offers: start from
        // none of it (a closed port for Ollama), then apply what the test sets.
        for name in DISCOVERY_ENV {
            cmd.env_remove(name);
        }
        cmd.env("OLLAMA_HOST", "127.0.0.1:9").env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start gatehouse");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent && let Some(url) = listening_url(&line) {
                    let _ = tx.send(url);
                    sent = true;
                }
                sink.lock().unwrap().push(line);
            }
        });
        // Generous: CI machines run many gateways and builds at once (start-up is ~15 ms idle).
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "gatehouse did not start; logs:\n{}",
                    logs.lock().unwrap().join("\n")
                );
            }
        };
        Gateway {
            child: Some(child),
            url,
            dir,
            logs,
            keep: None,
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "gatehouse did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn listening_url(line: &str) -> Option<String> {
    let at = line
        .find("listening on http://")
        .or_else(|| line.find("listening on https://"))?;
    let rest = &line[at + "listening on ".len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"' || c == '\\')
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// Runs the binary to completion (for `check` and refused starts).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run gatehouse");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A module installed by `scripts/install-peers` (npm), or a loud failure saying how to
/// install it: these tests never skip.
pub fn npm_module(rel: &str) -> String {
    let prefix = std::env::var("GATEHOUSE_NPM_PREFIX").unwrap_or_else(|_| {
        format!(
            "{}/.cache/gatehouse/npm",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into())
        )
    });
    let path = PathBuf::from(prefix).join("node_modules").join(rel);
    assert!(
        path.exists(),
        "MCP test server missing: {} — run scripts/install-peers",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

pub fn everything() -> String {
    npm_module("@modelcontextprotocol/server-everything/dist/index.js")
}

pub fn filesystem() -> String {
    npm_module("@modelcontextprotocol/server-filesystem/dist/index.js")
}

pub fn postgres_server() -> String {
    npm_module("@modelcontextprotocol/server-postgres/dist/index.js")
}

/// Runs SQL on the local Postgres as `postgres` (fails the test when it is down).
pub fn psql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-tAc",
            sql,
        ])
        .output()
        .expect("psql (postgresql-client) must be installed");
    assert!(
        out.status.success(),
        "psql failed (is Postgres running on 127.0.0.1:5432?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Drops a test database when the test ends, however it ends.
pub struct TempDatabase(pub String);

impl TempDatabase {
    pub fn create() -> TempDatabase {
        let name = format!("gh_test_{}", uuid_like());
        psql(&format!("CREATE DATABASE {name}"));
        TempDatabase(name)
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-tAc",
            ])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .output();
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", nanos, std::process::id())
}

pub fn supergateway() -> String {
    npm_module("supergateway/dist/index.js")
}

/// A child process killed (with its group) when the test ends.
pub struct Child2(pub Child);

impl Drop for Child2 {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on loopback (racy by nature; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port`.
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `gatehouse connect CLIENT --url URL ARGS...`: the configuration the binary prints.
pub fn connect(client: &str, url: &str, args: &[&str]) -> String {
    let mut all = vec!["connect", client, "--url", url];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(&all, &[]);
    assert_eq!(code, 0, "gatehouse connect {client} failed: {stderr}");
    stdout
}

/// The fenced blocks of `lang` (```lang ... ```) in printed output, in order.
pub fn fenced(out: &str, lang: &str) -> Vec<String> {
    let open = format!("```{lang}\n");
    let mut blocks = Vec::new();
    let mut rest = out;
    while let Some(start) = rest.find(&open) {
        let body = &rest[start + open.len()..];
        let end = body.find("\n```").expect("an unterminated block");
        blocks.push(body[..end].to_string());
        rest = &body[end + 4..];
    }
    blocks
}

/// The Python of the peers' venv (`scripts/install-peers`), or a loud failure.
pub fn venv_python() -> String {
    let venv = std::env::var("GATEHOUSE_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/gatehouse/venv",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into())
        )
    });
    let py = PathBuf::from(venv).join("bin/python");
    assert!(
        py.exists(),
        "{} missing — run scripts/install-peers",
        py.display()
    );
    py.to_string_lossy().into_owned()
}
