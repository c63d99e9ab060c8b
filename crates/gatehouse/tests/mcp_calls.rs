#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Tool calls made straight on the MCP endpoint count against the key's rate limit and
//! land in the audit table, like the tool loop's.

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, client, everything};
use serde_json::{Value, json};

#[tokio::test]
async fn direct_mcp_tool_calls_are_rate_limited_and_audited() {
    let cfg = format!(
        r#"
model_list: []
mcp_servers:
  ev:
    command: node
    args: ["{ev}", "stdio"]
general_settings:
  master_key: sk-master-mcpcalls
virtual_keys:
  - api_key: sk-two-per-minute
    key_alias: two-rpm
    rpm_limit: 2
"#,
        ev = everything()
    );
    let gw = Gateway::start(&cfg);
    let call = |n: u32| {
        let url = format!("{}/v1/mcp/tools/call", gw.url);
        async move {
            client()
                .post(url)
                .bearer_auth("sk-two-per-minute")
                .json(&json!({"server": "ev", "tool": "echo",
                               "arguments": {"message": format!("call {n}")}}))
                .send()
                .await
                .unwrap()
        }
    };
    // The server starts in the background: the first call may wait for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = call(0).await;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if status == 200 {
            assert!(body.to_string().contains("call 0"), "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "{status} {body}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Whatever the warm-up cost, a third call within the minute is refused.
    let mut statuses = Vec::new();
    for n in 1..4 {
        statuses.push(call(n).await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // JSON-RPC on /mcp is limited the same way, with a JSON-RPC error body.
    let rpc = client()
        .post(format!("{}/mcp", gw.url))
        .bearer_auth("sk-two-per-minute")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "ev-echo", "arguments": {"message": "x"},
                       "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(rpc.status(), 429);
    let body: Value = rpc.json().await.unwrap();
    assert_eq!(body["id"], 7, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");

    // The successful calls are audited under the key's hash, with sizes.
    let url = format!("sqlite://{}/gatehouse.db", gw.dir.path().display());
    let store = gatehouse_store::open(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let rows = loop {
        let page = store
            .audit_page(&gatehouse_store::AuditQuery {
                server: Some("ev".into()),
                tool: Some("echo".into()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        if page.rows.len() >= 2 {
            break page.rows;
        }
        assert!(Instant::now() < deadline, "audit rows: {}", page.rows.len());
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let hash = gatehouse_store::hash_key("sk-two-per-minute");
    assert!(
        rows.iter().all(|r| r.key_hash == hash),
        "audited under the key's hash"
    );
    assert!(rows.iter().any(|r| r.outcome == "ok" && r.args_size > 0));
}
