//! The lazy catalog over a catalog of real servers (server-everything, server-filesystem,
//! mcp-server-time): three tools instead of every schema, search → describe → call works
//! end to end, and what it saves in tokens (bytes / 4) is measured and printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hub_support;

use gatehouse_mcp::Hub;
use hub_support::*;
use serde_json::{Value, json};

struct Endpoint {
    base: String,
    http: reqwest::Client,
}

impl Endpoint {
    async fn initialize(&self, path: &str) -> String {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("accept", "application/json, text/event-stream")
            .json(
                &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "lazy", "version": "1"}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// The raw body of a JSON answer (its size is what a client puts in a model's context).
    async fn rpc(&self, path: &str, sid: &str, method: &str, params: Value) -> (String, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("accept", "application/json")
            .header("mcp-session-id", sid)
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        (text, v)
    }

    async fn call(&self, path: &str, sid: &str, tool: &str, args: Value) -> Value {
        let (_, v) = self
            .rpc(
                path,
                sid,
                "tools/call",
                json!({"name": tool, "arguments": args}),
            )
            .await;
        v["result"].clone()
    }
}

/// The JSON a lazy-catalog tool answers, from its text content.
fn json_of(result: &Value) -> Value {
    serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap()
}

fn time_server() -> Value {
    let venv =
        std::env::var("GATEHOUSE_VENV").unwrap_or_else(|_| "/root/.cache/gatehouse/venv".into());
    let bin = format!("{venv}/bin/mcp-server-time");
    assert!(
        std::path::Path::new(&bin).exists(),
        "{bin} missing: pip install mcp-server-time"
    );
    json!({"command": bin, "args": ["--local-timezone", "UTC"]})
}

#[tokio::test]
async fn lazy_catalog_over_real_servers_saves_most_of_the_tokens() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "lazy catalogs save tokens").unwrap();
    let cfg = config(json!({
        "everything": everything_stdio(),
        "files": {"command": "node", "args": [filesystem(), dir.path().to_str().unwrap()]},
        "time": time_server(),
    }));
    let hub = Hub::from_config(&cfg).unwrap();
    hub.start();
    wait_ready(&hub, &["everything", "files", "time"]).await;
    // mcp-server-time (Python SDK 2.x) answers the discover probe over stdio; the npm
    // servers fall back to the handshake: both kinds behind one lazy catalog.
    let speaks = |name: &str| {
        hub.status()
            .into_iter()
            .find(|s| s.name == name)
            .and_then(|s| s.protocol_version)
    };
    assert_eq!(speaks("time").as_deref(), Some("2026-07-28"));
    assert_eq!(speaks("everything").as_deref(), Some("2025-06-18"));
    let ep = Endpoint {
        base: serve_hub(&hub).await,
        http: reqwest::Client::new(),
    };

    let full_sid = ep.initialize("/mcp").await;
    let (full_text, full) = ep.rpc("/mcp", &full_sid, "tools/list", json!({})).await;
    let full_count = full["result"]["tools"].as_array().unwrap().len();
    assert!(
        full_count >= 25,
        "a catalog of several real servers: {full_count} tools"
    );

    let lazy = "/mcp?catalog=lazy";
    let sid = ep.initialize(lazy).await;
    let (lazy_text, listed) = ep.rpc(lazy, &sid, "tools/list", json!({})).await;
    let names: Vec<&str> = listed["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["search_tools", "describe_tool", "call_tool"]);

    let (full_tokens, lazy_tokens) = (full_text.len() / 4, lazy_text.len() / 4);
    println!(
        "lazy catalog: {full_count} tools, full tools/list {} bytes ≈ {full_tokens} tokens, lazy {} bytes ≈ {lazy_tokens} tokens ({:.1}% saved)",
        full_text.len(),
        lazy_text.len(),
        100.0 * (1.0 - lazy_text.len() as f64 / full_text.len() as f64)
    );
    assert!(
        lazy_tokens * 5 < full_tokens,
        "{lazy_tokens} vs {full_tokens}"
    );

    // search → describe → call, as a model would.
    let hits = ep
        .call(
            lazy,
            &sid,
            "search_tools",
            json!({"query": "current time timezone"}),
        )
        .await;
    let first = json_of(&hits)["tools"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(first, "time-get_current_time", "{hits}");
    let schema = ep
        .call(lazy, &sid, "describe_tool", json!({"name": first}))
        .await;
    assert!(
        json_of(&schema)["inputSchema"]["properties"]["timezone"].is_object(),
        "{schema}"
    );
    println!(
        "lazy catalog: one search answer {} bytes, one describe answer {} bytes",
        hits.to_string().len(),
        schema.to_string().len()
    );
    let now = ep
        .call(
            lazy,
            &sid,
            "call_tool",
            json!({"name": first, "arguments": {"timezone": "UTC"}}),
        )
        .await;
    assert!(
        now["content"][0]["text"].as_str().unwrap().contains("UTC"),
        "{now}"
    );

    let hits = ep
        .call(
            lazy,
            &sid,
            "search_tools",
            json!({"query": "read file", "limit": 3}),
        )
        .await;
    let hits = json_of(&hits);
    let found: Vec<&str> = hits["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        found.len() <= 3 && found.iter().any(|n| n.starts_with("files-read")),
        "{found:?}"
    );
    let path = dir.path().join("notes.txt");
    let read = ep
        .call(
            lazy,
            &sid,
            "call_tool",
            json!({"name": "files-read_text_file", "arguments": {"path": path}}),
        )
        .await;
    assert!(
        read["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("lazy catalogs save tokens"),
        "{read}"
    );

    let missing = ep
        .call(lazy, &sid, "describe_tool", json!({"name": "nope"}))
        .await;
    assert_eq!(missing["isError"], true);
    hub.shutdown().await;
}
