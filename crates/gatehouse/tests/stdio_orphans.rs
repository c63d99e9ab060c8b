#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! A stdio MCP server (and whatever it spawned) dies with the gateway even when the
//! gateway is SIGKILLed and cannot clean up: the orphan guard's parent-death signal.

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, client, everything};
use serde_json::Value;

/// Pids whose parent is `pid`, from /proc.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may contain spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

fn descendants(pid: u32) -> Vec<u32> {
    let mut all = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children(p) {
            all.push(c);
            todo.push(c);
        }
    }
    all
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent (gone) could reap it.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z")
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn stdio_servers_and_their_children_die_with_a_sigkilled_gateway() {
    // `sh` keeps a grandchild (`sleep`) that would outlive the server's stdin closing.
    let cfg = format!(
        r#"
model_list: []
mcp_servers:
  ev:
    command: sh
    args: ["-c", "node {ev} stdio; sleep 600"]
"#,
        ev = everything()
    );
    let gw = Gateway::start(&cfg);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let tools: Value = client()
            .get(format!("{}/v1/mcp/tools", gw.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        if tools.to_string().contains("echo") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "server never ready: {}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = gw.pid();
    let tree = descendants(pid);
    assert!(tree.len() >= 3, "guard, sh and node expected: {tree:?}");
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<u32> = tree.iter().copied().filter(|p| alive(*p)).collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after the gateway was SIGKILLed: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
