//! Stdio servers die with the gateway, even when the gateway is SIGKILLed.
//!
//! Linux's parent-death signal (`PR_SET_PDEATHSIG`) must be set in the child between fork
//! and exec, which `Command::pre_exec` allows only in `unsafe` code — and the workspace
//! forbids `unsafe`. So the gateway runs each stdio server under itself: `gatehouse
//! __mcp-stdio-guard <gateway pid> <command> <args>...`. That guard process (the leader of
//! the server's process group):
//! 1. asks the kernel for SIGUSR1 when its parent dies (`rustix`'s safe `prctl` wrapper),
//!    and exits at once if the gateway is already gone (the race before the `prctl`);
//! 2. starts the server with its own stdin/stdout/stderr (the gateway's pipes);
//! 3. on SIGUSR1 terminates the whole group — the server and anything it spawned
//!    (`npx`, `uvx`, `sh -c` grandchildren) — SIGTERM, then SIGKILL after a grace;
//! 4. otherwise exits with the server's status. The gateway's own SIGTERM/SIGKILL of the
//!    group at shutdown reaches the server directly; the guard just waits for it.
//!
//! The kernel sends the parent-death signal when the *thread* that spawned the guard
//! exits; the hub spawns from Tokio worker threads, which live as long as the runtime.

use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

use rustix::process::{Pid, Signal, getpgrp, getppid, kill_process_group};

/// The first argument that makes `gatehouse` a guard instead of a server.
pub const GUARD_ARG: &str = "__mcp-stdio-guard";

/// The server's time to exit after SIGTERM once the gateway is gone.
const GRACE: Duration = Duration::from_secs(2);

/// The guard's argument list for `command args...` run by the gateway process `parent`.
pub fn guard_args(parent: u32, command: &str, args: &[String]) -> Vec<OsString> {
    let mut out: Vec<OsString> = vec![GUARD_ARG.into(), parent.to_string().into(), command.into()];
    out.extend(args.iter().map(OsString::from));
    out
}

/// If this process was started as a guard (`argv[1] == GUARD_ARG`), runs it to the end
/// and returns its exit code; `None` for a normal start.
pub fn run_if_requested() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(GUARD_ARG.as_ref()) {
        return None;
    }
    let rest: Vec<OsString> = args.collect();
    Some(match run(&rest) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("gatehouse stdio guard: {message}");
            ExitCode::from(127)
        }
    })
}

fn run(args: &[OsString]) -> Result<ExitCode, String> {
    let [parent, command, server_args @ ..] = args else {
        return Err("usage: __mcp-stdio-guard <parent pid> <command> [args...]".into());
    };
    let parent: i32 = parent
        .to_str()
        .and_then(|p| p.parse().ok())
        .ok_or("the parent pid is not a number")?;
    rustix::process::set_parent_process_death_signal(Some(Signal::USR1))
        .map_err(|e| format!("cannot set the parent-death signal: {e}"))?;
    // Signals are set up before the check below, so a death right after it is seen.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut parent_died = signal(SignalKind::user_defined1()).map_err(|e| e.to_string())?;
        // SIGTERM is the gateway stopping the group: the server got it too; wait for it.
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        if getppid().map(Pid::as_raw_nonzero).map(i32::from) != Some(parent) {
            return Err("the gateway exited before the server started".to_string());
        }
        let mut child = tokio::process::Command::new(command)
            .args(server_args)
            .spawn()
            .map_err(|e| format!("`{}`: {e}", command.to_string_lossy()))?;
        loop {
            tokio::select! {
                status = child.wait() => {
                    let status = status.map_err(|e| e.to_string())?;
                    return Ok(exit_code(status));
                }
                _ = parent_died.recv() => {
                    stop_group(&mut child).await;
                    return Ok(ExitCode::from(137));
                }
                _ = term.recv() => {}
            }
        }
    })
}

/// SIGTERM to the group (the guard itself ignores it, see above), SIGKILL after
/// [`GRACE`] — which ends the guard too.
async fn stop_group(child: &mut tokio::process::Child) {
    let group = getpgrp();
    let _ = kill_process_group(group, Signal::TERM);
    let _ = tokio::time::timeout(GRACE, child.wait()).await;
    let _ = kill_process_group(group, Signal::KILL);
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Whether `command` can be started (a path that exists, or a name found on `PATH`).
/// Through the guard a missing command would only show as an early exit; this keeps the
/// error the operator needs ("No such file or directory") at spawn time.
pub fn resolvable(command: &str, path_var: Option<&OsString>, cwd: Option<&str>) -> bool {
    if command.contains('/') {
        let p = std::path::Path::new(command);
        return match cwd {
            Some(dir) if p.is_relative() => std::path::Path::new(dir).join(p).exists(),
            _ => p.exists(),
        };
    }
    let path = path_var.cloned().or_else(|| std::env::var_os("PATH"));
    path.is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(command).is_file()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_arguments_and_command_lookup() {
        let args = guard_args(42, "node", &["server.js".into(), "--x".into()]);
        assert_eq!(
            args,
            ["__mcp-stdio-guard", "42", "node", "server.js", "--x"]
        );
        assert!(resolvable("sh", None, None));
        assert!(resolvable("/bin/sh", None, None));
        assert!(!resolvable("gatehouse-no-such-command", None, None));
        assert!(!resolvable("/nonexistent/x", None, None));
        assert!(!resolvable(
            "sh",
            Some(&OsString::from("/nonexistent")),
            None
        ));
        assert!(run(&[]).is_err());
    }
}
