#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Handshake-era MCP sessions survive a change of replica: two gateway processes with the
//! same config (hence the same master key, which seals session ids), a session opened on
//! one continues on the other — with the key that opened it, and only with that key.

mod common;

use common::{Gateway, client, everything};
use serde_json::{Value, json};

const ACCEPT: &str = "application/json, text/event-stream";

async fn post(base: &str, key: &str, sid: Option<&str>, body: Value) -> reqwest::Response {
    let mut r = client()
        .post(format!("{base}/mcp"))
        .bearer_auth(key)
        .header("accept", ACCEPT)
        .json(&body);
    if let Some(s) = sid {
        r = r.header("mcp-session-id", s);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn a_session_opened_on_one_gateway_continues_on_another() {
    let cfg = format!(
        r#"
model_list: []
mcp_servers:
  ev:
    command: node
    args: ["{ev}", "stdio"]
general_settings:
  master_key: sk-master-replicas
virtual_keys:
  - api_key: sk-user-a
    key_alias: shared-alias
  - api_key: sk-user-b
    key_alias: shared-alias
"#,
        ev = everything()
    );
    let one = Gateway::start(&cfg);
    let two = Gateway::start(&cfg);
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let resp = post(&one.url, "sk-user-a", None, init).await;
    assert_eq!(resp.status(), 200, "{}", one.logs());
    let sid = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "ev-echo", "arguments": {"message": "on the other replica"}}});
    let resp = post(&two.url, "sk-user-a", Some(&sid), call.clone()).await;
    assert_eq!(resp.status(), 200, "{}", two.logs());
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["result"]["content"][0]["text"], "Echo: on the other replica",
        "{v}"
    );

    // Same alias, another key: not its session, on either replica.
    for gw in [&one, &two] {
        let resp = post(&gw.url, "sk-user-b", Some(&sid), call.clone()).await;
        assert_eq!(resp.status(), 404);
    }
    // An altered id is not a session.
    let forged = format!("{sid}x");
    assert_eq!(
        post(&two.url, "sk-user-a", Some(&forged), call.clone())
            .await
            .status(),
        404
    );
    // And it continues on the first one too.
    assert_eq!(
        post(&one.url, "sk-user-a", Some(&sid), call).await.status(),
        200
    );
}

/// The tool names `tools/list` answers on `path` for `key` (a fresh handshake session).
async fn listed(base: &str, path: &str, key: &str) -> Vec<String> {
    let send = |sid: Option<String>, body: Value| {
        let mut r = client()
            .post(format!("{base}{path}"))
            .bearer_auth(key)
            .header("accept", ACCEPT)
            .json(&body);
        if let Some(s) = sid {
            r = r.header("mcp-session-id", s);
        }
        r.send()
    };
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let resp = send(None, init).await.unwrap();
    assert_eq!(resp.status(), 200);
    let sid = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let v: Value = send(Some(sid), list).await.unwrap().json().await.unwrap();
    v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_keys_mcp_catalog_metadata_chooses_the_lazy_catalog_and_the_url_still_wins() {
    let cfg = format!(
        r#"
model_list: []
mcp_servers:
  ev:
    command: node
    args: ["{ev}", "stdio"]
general_settings:
  master_key: sk-master-catalog
virtual_keys:
  - api_key: sk-lazy-key
    metadata: {{mcp_catalog: lazy}}
  - api_key: sk-plain-key
"#,
        ev = everything()
    );
    let gw = Gateway::start(&cfg);
    let meta = ["search_tools", "describe_tool", "call_tool"];
    assert_eq!(listed(&gw.url, "/mcp", "sk-lazy-key").await, meta);
    assert_eq!(listed(&gw.url, "/mcp/ev", "sk-lazy-key").await, meta);
    let full = listed(&gw.url, "/mcp?catalog=full", "sk-lazy-key").await;
    assert!(full.contains(&"ev-echo".to_owned()), "{full:?}");
    let plain = listed(&gw.url, "/mcp", "sk-plain-key").await;
    assert_eq!(plain, full);
    assert_eq!(
        listed(&gw.url, "/mcp?catalog=lazy", "sk-plain-key").await,
        meta
    );
}
