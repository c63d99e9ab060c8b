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

/// The longest JSON-RPC message read from a server: a stdout line here, a whole HTTP
/// answer in `http`. A server is untrusted: without a bound, one endless message would
/// hold memory without limit. A longer stdout line is skipped to its newline (the request
/// it answered then times out); a longer HTTP answer is the server's protocol error.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// One newline-delimited frame of a server's stdout.
enum Frame {
    Line(Vec<u8>),
    /// A line longer than [`MAX_MESSAGE`], skipped; its length.
    Oversized(usize),
}

/// Reads the next frame, holding at most `max` bytes of it; `None` at end of stream.
async fn next_frame(
    reader: &mut (impl tokio::io::AsyncBufRead + Unpin),
    max: usize,
) -> std::io::Result<Option<Frame>> {
    let mut line = Vec::new();
    let mut skipped = 0usize;
    loop {
        let chunk = reader.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(match (line.is_empty(), skipped) {
                (true, 0) => None,
                (_, 0) => Some(Frame::Line(line)),
                (_, n) => Some(Frame::Oversized(n)),
            });
        }
        let (part, done) = match memchr_newline(chunk) {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if skipped > 0 || line.len() + part.len() > max {
            skipped += line.len() + part.len();
            line = Vec::new();
        } else {
            line.extend_from_slice(part);
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(if skipped > 0 {
                Frame::Oversized(skipped)
            } else {
                Frame::Line(line)
            }));
        }
    }
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

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
            let mut reader = BufReader::new(stdout);
            loop {
                let frame = tokio::select! {
                    f = next_frame(&mut reader, MAX_MESSAGE) => f,
                    _ = death.token().cancelled() => break,
                };
                match frame {
                    Ok(Some(Frame::Oversized(len))) => {
                        tracing::warn!(server = %server, bytes = len, limit = MAX_MESSAGE, "skipped a stdout line longer than the message limit");
                    }
                    Ok(Some(Frame::Line(line))) => {
                        let line = line.trim_ascii();
                        if line.is_empty() {
                            continue;
                        }
                        match jsonrpc::parse(line) {
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8], max: usize) -> Vec<String> {
        // A tiny buffer so lines span many reads.
        let mut reader = BufReader::with_capacity(4, input);
        let mut out = Vec::new();
        while let Some(frame) = next_frame(&mut reader, max).await.unwrap() {
            out.push(match frame {
                Frame::Line(l) => String::from_utf8(l).unwrap(),
                Frame::Oversized(n) => format!("<skipped {n}>"),
            });
        }
        out
    }

    #[tokio::test]
    async fn lines_over_the_limit_are_skipped_and_the_next_is_whole() {
        let input = b"{\"a\":1}\n0123456789abcdef\n{\"b\":2}\nlast";
        assert_eq!(
            frames(input, 10).await,
            ["{\"a\":1}", "<skipped 16>", "{\"b\":2}", "last"]
        );
    }

    #[tokio::test]
    async fn an_endless_line_holds_no_more_than_the_limit() {
        let input = vec![b'x'; 100_000];
        assert_eq!(frames(&input, 1024).await, ["<skipped 100000>"]);
    }
}
