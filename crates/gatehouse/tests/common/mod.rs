//! Starts the real `gatehouse` binary on a free port with a real config file.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Gateway {
    child: Option<Child>,
    pub url: String,
    pub dir: tempfile::TempDir,
    /// Every log line the gateway wrote to stderr so far.
    pub logs: Arc<Mutex<Vec<String>>>,
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

    /// Starts `gatehouse ARGS --port 0` (no config written).
    pub fn spawn(dir: tempfile::TempDir, args: &[&str], env: &[(&str, &str)]) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        cmd.args(args).args(["--port", "0"]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env_remove("RUST_LOG").env_remove("OPENAI_API_KEY");
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
        let url = match rx.recv_timeout(Duration::from_secs(20)) {
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
    let at = line.find("listening on http://")?;
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
