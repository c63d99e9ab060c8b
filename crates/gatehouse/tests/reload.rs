#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Config hot reload on the real binary: SIGHUP (and `--watch-config`) replaces models,
//! keys and MCP servers while a stream is in flight; unchanged stdio MCP servers keep
//! their process and open MCP sessions keep their stream; a broken config is refused and
//! the old one keeps serving.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Gateway, client, everything};
use gatehouse_testkit::{MockOptions, MockServer};
use serde_json::{Value, json};

const MASTER_ONE: &str = "sk-master-before-reload";
const MASTER_TWO: &str = "sk-master-after-reload";

fn hup(gw: &Gateway) {
    let ok = Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP failed");
}

/// Replaces the file in one step, as editors and config-map updates do (a reader never
/// sees half of it).
fn save(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// SHA-256 of the file as `sha256sum` computes it.
fn sha256_file(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

async fn health(gw: &Gateway, key: &str) -> Value {
    let resp = client()
        .get(format!("{}/health", gw.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", gw.logs());
    resp.json().await.unwrap()
}

/// Polls `/health` with `key` until `done` holds (30 s at most).
async fn health_until(gw: &Gateway, key: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = client()
            .get(format!("{}/health", gw.url))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            let v: Value = resp.json().await.unwrap();
            if done(&v) {
                return v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "never: {what}; logs:\n{}",
            gw.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mcp_server<'a>(health: &'a Value, name: &str) -> Option<&'a Value> {
    health["mcp_servers"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name)
}

fn ready_pid(health: &Value, name: &str) -> Option<u64> {
    let s = mcp_server(health, name)?;
    (s["status"] == "ready")
        .then(|| s["pid"].as_u64())
        .flatten()
}

async fn chat(gw: &Gateway, key: &str, model: &str) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap()
}

fn alive(pid: u64) -> bool {
    // A zombie has exited; it only waits for its parent to reap it.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z")
        })
        .unwrap_or(false)
}

fn config(mock: &MockServer, master: &str, models: &[&str], keys: &[&str], mcp: &[&str]) -> String {
    let mut cfg = String::from("model_list:\n");
    for m in models {
        cfg.push_str(&format!(
            "  - model_name: {m}\n    litellm_params: {{model: openai/{m}, api_base: \"{}\"}}\n",
            mock.url()
        ));
    }
    cfg.push_str(&format!("general_settings:\n  master_key: {master}\n"));
    if !keys.is_empty() {
        cfg.push_str("virtual_keys:\n");
    }
    for (i, k) in keys.iter().enumerate() {
        cfg.push_str(&format!("  - api_key: {k}\n    key_alias: key-{i}\n"));
    }
    if !mcp.is_empty() {
        cfg.push_str("mcp_servers:\n");
    }
    // `name=mark`: the server with an `env` entry, so changing the mark changes it.
    for entry in mcp {
        let (name, mark) = entry.split_once('=').unwrap_or((entry, ""));
        cfg.push_str(&format!(
            "  {name}:\n    command: node\n    args: [\"{}\", \"stdio\"]\n",
            everything()
        ));
        if !mark.is_empty() {
            cfg.push_str(&format!("    env: {{RELOAD_MARK: \"{mark}\"}}\n"));
        }
    }
    cfg
}

#[tokio::test]
async fn sighup_swaps_models_keys_and_mcp_servers_without_cutting_a_stream() {
    let mock = MockServer::start(MockOptions {
        chunk_delay: Duration::from_millis(150),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let before = config(
        &mock,
        MASTER_ONE,
        &["kept-model", "removed-model"],
        &["sk-virtual-kept", "sk-virtual-removed"],
        &["ev", "gone", "chg=1"],
    );
    let gw = Gateway::start(&before);
    let h = health_until(&gw, MASTER_ONE, "the MCP servers ready", |h| {
        ["ev", "gone", "chg"]
            .iter()
            .all(|s| ready_pid(h, s).is_some())
    })
    .await;
    let ev_pid = ready_pid(&h, "ev").unwrap();
    let gone_pid = ready_pid(&h, "gone").unwrap();
    let chg_pid = ready_pid(&h, "chg").unwrap();
    let hash_before = h["config"]["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash_before, sha256_file(&gw.config_path()));
    assert_eq!(h["config"]["reloads"], 0);

    // A stream in flight across the reload: ~12 chunks 150 ms apart.
    let url = format!("{}/v1/chat/completions", gw.url);
    let stream = tokio::spawn(async move {
        let resp = client()
            .post(url)
            .bearer_auth(MASTER_ONE)
            .json(&json!({"model": "kept-model", "stream": true,
                "messages": [{"role": "user", "content": "one two three four five six seven eight nine ten"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(400)).await;

    let after = config(
        &mock,
        MASTER_TWO,
        &["kept-model", "new-model"],
        &["sk-virtual-kept", "sk-virtual-new"],
        &["ev", "added", "chg=2"],
    );
    save(&gw.config_path(), &after);
    hup(&gw);
    let hash_after = sha256_file(&gw.config_path());
    let h = health_until(&gw, MASTER_TWO, "the new config served", |h| {
        h["config"]["hash"] == hash_after.as_str()
    })
    .await;
    assert_eq!(h["config"]["reloads"], 1);
    assert!(!stream.is_finished(), "the stream ended before the reload");

    // The stream that started before the reload ends normally.
    let text = stream.await.unwrap();
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "stream cut: {text}"
    );
    assert!(text.contains("ten"), "stream incomplete: {text}");

    // Models: the new one answers, the removed one is unknown (OpenAI's error shape).
    let resp = chat(&gw, MASTER_TWO, "new-model").await;
    assert_eq!(resp.status(), 200, "{}", gw.logs());
    let resp = chat(&gw, MASTER_TWO, "removed-model").await;
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"]["message"].is_string(), "{err}");
    assert!(err["error"]["type"].is_string(), "{err}");
    let models: Value = client()
        .get(format!("{}/v1/models", gw.url))
        .bearer_auth(MASTER_TWO)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"new-model") && !ids.contains(&"removed-model"),
        "{ids:?}"
    );

    // Keys: the old master key is refused, the new one and the new virtual key work; a
    // virtual key dropped from the config stays valid (docs/keys.md), with a warning.
    assert_eq!(chat(&gw, MASTER_ONE, "kept-model").await.status(), 401);
    assert_eq!(chat(&gw, "sk-virtual-new", "new-model").await.status(), 200);
    assert_eq!(
        chat(&gw, "sk-virtual-kept", "kept-model").await.status(),
        200
    );
    assert!(
        gw.logs().contains("no longer in the config"),
        "{}",
        gw.logs()
    );

    // MCP: the unchanged server is the same process; the added one lists its tools; the
    // removed one's process is gone.
    let h = health_until(
        &gw,
        MASTER_TWO,
        "the added and changed MCP servers ready",
        |h| ready_pid(h, "added").is_some() && ready_pid(h, "chg").is_some_and(|p| p != chg_pid),
    )
    .await;
    assert_eq!(ready_pid(&h, "ev"), Some(ev_pid), "{h}");
    assert_eq!(mcp_server(&h, "ev").unwrap()["restarts"], 0);
    assert!(mcp_server(&h, "gone").is_none(), "{h}");
    let tools: Value = client()
        .get(format!("{}/v1/mcp/tools", gw.url))
        .bearer_auth(MASTER_TWO)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"added-echo") && names.contains(&"ev-echo"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("gone-")), "{names:?}");
    // The removed server and the changed server's old instance stop.
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(gone_pid) || alive(chg_pid) {
        assert!(
            Instant::now() < deadline,
            "a removed or replaced MCP server still runs (pids {gone_pid}, {chg_pid})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(alive(ev_pid));
    assert!(gw.logs().contains("config reloaded"), "{}", gw.logs());
}

#[tokio::test]
async fn a_broken_config_is_refused_and_the_old_one_keeps_serving() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let good = config(&mock, MASTER_ONE, &["m"], &[], &[]);
    let gw = Gateway::start(&good);
    let hash = health(&gw, MASTER_ONE).await["config"]["hash"]
        .as_str()
        .unwrap()
        .to_owned();

    let broken = [
        // Not YAML.
        "model_list:\n  - model_name: [unclosed\n".to_owned(),
        // Valid YAML, unknown provider.
        good.replace("openai/m", "nosuchprovider/m"),
    ];
    for (i, cfg) in broken.iter().enumerate() {
        save(&gw.config_path(), cfg);
        hup(&gw);
        health_until(&gw, MASTER_ONE, "the reload refused", |h| {
            h["config"]["failed_reloads"] == i + 1
        })
        .await;
        let h = health(&gw, MASTER_ONE).await;
        assert_eq!(h["config"]["hash"], hash.as_str(), "{h}");
        assert_eq!(h["config"]["reloads"], 0);
        assert!(h["config"]["last_reload_error"].is_string(), "{h}");
        assert_eq!(chat(&gw, MASTER_ONE, "m").await.status(), 200);
    }
    let logs = gw.logs();
    assert!(logs.contains("config reload refused"), "{logs}");
    assert!(logs.contains("nosuchprovider"), "{logs}");
    let metrics = client()
        .get(format!("{}/metrics", gw.url))
        .bearer_auth(MASTER_ONE)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("gatehouse_config_reloads_total{result=\"failure\"} 2"),
        "{metrics}"
    );

    // Fixed again: it loads.
    save(
        &gw.config_path(),
        &good.replace("- model_name: m", "- model_name: m2"),
    );
    hup(&gw);
    health_until(&gw, MASTER_ONE, "the fixed config served", |h| {
        h["config"]["reloads"] == 1 && h["config"]["last_reload_error"].is_null()
    })
    .await;
    assert_eq!(chat(&gw, MASTER_ONE, "m2").await.status(), 200);
}

/// A reload that turns auth off (no master key, no keys) is refused on a non-loopback
/// bind: it would open the gateway to the network.
#[tokio::test]
async fn a_reload_cannot_turn_auth_off_beyond_loopback() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let good = config(&mock, MASTER_ONE, &["m"], &[], &[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, &good).unwrap();
    let gw = Gateway::spawn(
        dir,
        &["--config", path.to_str().unwrap(), "--host", "0.0.0.0"],
        &[],
    );
    let open = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/m, api_base: \"{}\"}}\n",
        mock.url()
    );
    save(&path, &open);
    hup(&gw);
    let url = gw.url.replace("0.0.0.0", "127.0.0.1");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !gw.logs().contains("config reload refused") {
        assert!(Instant::now() < deadline, "{}", gw.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resp = client()
        .post(format!("{url}/v1/chat/completions"))
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "auth must stay on");
}

/// `--watch-config`: saving the file is enough.
#[tokio::test]
async fn watch_config_reloads_when_the_file_changes() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start_with(
        &config(&mock, MASTER_ONE, &["m"], &[], &[]),
        &["--watch-config"],
        &[],
    );
    assert_eq!(chat(&gw, MASTER_ONE, "watched").await.status(), 404);
    save(
        &gw.config_path(),
        &config(&mock, MASTER_ONE, &["m", "watched"], &[], &[]),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while chat(&gw, MASTER_ONE, "watched").await.status() != 200 {
        assert!(Instant::now() < deadline, "{}", gw.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A broken save is reported once, not at every poll.
    save(&gw.config_path(), "model_list: [\n");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let refused = gw
        .logs()
        .matches("still serving the config loaded before")
        .count();
    assert_eq!(refused, 1, "{}", gw.logs());
    assert_eq!(chat(&gw, MASTER_ONE, "watched").await.status(), 200);
}

/// Reads SSE events off a response, one at a time.
struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    fn new(resp: reqwest::Response) -> Self {
        Self {
            resp,
            buf: String::new(),
        }
    }

    async fn next(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event = self.buf[..end].to_owned();
                self.buf.drain(..end + 2);
                return event;
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .expect("no SSE event in time")
                .unwrap()
                .expect("the SSE stream ended");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// An MCP session and its open stream (legacy HTTP+SSE: the session lives only in this
/// process) carry on across a reload that leaves the MCP settings alone.
#[tokio::test]
async fn an_open_mcp_session_survives_a_reload() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&config(&mock, MASTER_ONE, &["m"], &[], &["ev"]));
    let resp = client()
        .get(format!("{}/mcp/sse", gw.url))
        .bearer_auth(MASTER_ONE)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", gw.logs());
    let mut sse = Sse::new(resp);
    let endpoint = sse.next().await;
    let path = endpoint
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap()
        .trim()
        .to_owned();
    let post = |body: Value| {
        client()
            .post(format!("{}{path}", gw.url))
            .bearer_auth(MASTER_ONE)
            .json(&body)
            .send()
    };
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2024-11-05", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    assert!(post(init).await.unwrap().status().is_success());
    assert!(sse.next().await.contains("\"id\":0"));
    post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await
        .unwrap();

    save(
        &gw.config_path(),
        &config(&mock, MASTER_ONE, &["m", "another"], &[], &["ev"]),
    );
    hup(&gw);
    health_until(&gw, MASTER_ONE, "the reload", |h| {
        h["config"]["reloads"] == 1
    })
    .await;

    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "ev-echo", "arguments": {"message": "after the reload"}}});
    let resp = post(call).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let answer = sse.next().await;
    assert!(answer.contains("Echo: after the reload"), "{answer}");
}
