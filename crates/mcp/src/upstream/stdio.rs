//! stdio transport: a child process in its own process group, newline-delimited JSON.
//! With a guard configured the group's leader is the orphan guard, which takes the group
//! down if the gateway dies without closing it (see `orphan_guard`).

use super::{DeathNote, UpstreamError, orphan_guard};
use crate::jsonrpc::{self, Message};
use gatehouse_config::McpServerConfig;
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Mutex, mpsc};

/// Time a server gets to exit after SIGTERM before the group is killed.
const GRACE: Duration = Duration::from_secs(2);

pub struct StdioTransport {
    name: String,
    stdin: Mutex<Option<ChildStdin>>,
    child: Mutex<Option<Child>>,
    pid: Option<u32>,
}

impl StdioTransport {
    pub(crate) fn spawn(
        name: &str,
        cfg: &McpServerConfig,
        guard: Option<&Path>,
        inbound: mpsc::Sender<Message>,
        death: DeathNote,
    ) -> Result<StdioTransport, UpstreamError> {
        let command = cfg
            .command
            .as_deref()
            .ok_or_else(|| UpstreamError::Config("stdio server without `command`".into()))?;
        let mut cmd = match guard {
            Some(guard) => {
                // The guard would only exit early; say what is missing at once instead.
                let path = cfg.env.get("PATH").map(std::ffi::OsString::from);
                if !orphan_guard::resolvable(command, path.as_ref(), cfg.cwd.as_deref()) {
                    return Err(UpstreamError::Spawn(format!(
                        "`{command}`: No such file or directory (not found on PATH)"
                    )));
                }
                let mut cmd = Command::new(guard);
                cmd.args(orphan_guard::guard_args(
                    std::process::id(),
                    command,
                    &cfg.args,
                ));
                cmd
            }
            None => {
                let mut cmd = Command::new(command);
                cmd.args(&cfg.args);
                cmd
            }
        };
        cmd.envs(&cfg.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own group: servers launched through npx/uvx/sh spawn grandchildren that
            // must die with them.
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cwd) = &cfg.cwd {
            cmd.current_dir(cwd);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| UpstreamError::Spawn(format!("`{command}`: {e}")))?;
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| UpstreamError::Spawn("no stdout pipe".into()))?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(super::stderr::drain(name.to_string(), stderr));
        }
        let server = name.to_string();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            loop {
                let line = tokio::select! {
                    l = lines.next_line() => l,
                    _ = death.token().cancelled() => break,
                };
                match line {
                    Ok(Some(line)) => {
                        let line = line.trim();
                        if line.is_empty() {
                            continue;
                        }
                        match jsonrpc::parse(line.as_bytes()) {
                            Ok(incoming) => {
                                for m in incoming.into_messages() {
                                    if inbound.send(m).await.is_err() {
                                        return;
                                    }
                                }
                            }
                            Err(e) => {
                                tracing::debug!(server = %server, error = %e, "non JSON-RPC line on stdout")
                            }
                        }
                    }
                    Ok(None) => {
                        death.die("process closed its stdout (exited)");
                        break;
                    }
                    Err(e) => {
                        death.die(format!("reading stdout: {e}"));
                        break;
                    }
                }
            }
        });
        Ok(StdioTransport {
            name: name.to_string(),
            stdin: Mutex::new(stdin),
            child: Mutex::new(Some(child)),
            pid,
        })
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    pub(crate) async fn send(&self, msg: &Value) -> Result<(), UpstreamError> {
        let mut line =
            serde_json::to_vec(msg).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let mut stdin = self.stdin.lock().await;
        let pipe = stdin
            .as_mut()
            .ok_or_else(|| UpstreamError::NotDelivered("stdin closed".into()))?;
        let written = async {
            pipe.write_all(&line).await?;
            pipe.flush().await
        };
        written
            .await
            .map_err(|e| UpstreamError::NotDelivered(format!("writing to stdin: {e}")))
    }

    /// Closes stdin, SIGTERMs the group, and SIGKILLs it after [`GRACE`].
    pub(crate) async fn close(&self) {
        // A writer stuck on a full pipe holds the lock; the kill below unblocks it.
        if let Ok(mut stdin) = self.stdin.try_lock() {
            stdin.take();
        }
        let Some(mut child) = self.child.lock().await.take() else {
            return;
        };
        signal_group(self.pid, Signal::TERM);
        match tokio::time::timeout(GRACE, child.wait()).await {
            Ok(_) => signal_group(self.pid, Signal::KILL), // stragglers in the group
            Err(_) => {
                tracing::warn!(server = %self.name, "did not exit after SIGTERM; killing its process group");
                signal_group(self.pid, Signal::KILL);
                let _ = child.wait().await;
            }
        }
    }
}

fn signal_group(pid: Option<u32>, sig: Signal) {
    let Some(pid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(Pid::from_raw)
    else {
        return;
    };
    // ESRCH (group already gone) is the expected outcome after a clean exit.
    let _ = kill_process_group(pid, sig);
}

impl Drop for StdioTransport {
    fn drop(&mut self) {
        // Not closed properly (hub dropped without shutdown): take the whole group down.
        if self.child.get_mut().is_some() {
            signal_group(self.pid, Signal::KILL);
        }
    }
}
