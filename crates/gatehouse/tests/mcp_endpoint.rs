#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The MCP hub through the real binary: a PyPI server (mcp-server-time) and an npm server
//! over stdio, listed and called through the JSON REST routes with scoped keys.

mod common;

use common::{Gateway, client, everything};
use serde_json::{Value, json};

fn time_server() -> String {
    let venv = std::env::var("GATEHOUSE_VENV").unwrap_or_else(|_| {
        format!(
            "{}/.cache/gatehouse/venv",
            std::env::var("HOME").unwrap_or_else(|_| "/root".into())
        )
    });
    let bin = format!("{venv}/bin/mcp-server-time");
    assert!(
        std::path::Path::new(&bin).exists(),
        "{bin} missing: run scripts/install-peers"
    );
    bin
}

#[tokio::test]
async fn pypi_and_npm_servers_are_listed_and_called_with_key_scopes() {
    let cfg = format!(
        r#"
model_list: []
mcp_servers:
  clock:
    command: {time}
    args: ["--local-timezone", "UTC"]
    description: Time from PyPI's mcp-server-time
  ev:
    command: node
    args: ["{ev}", "stdio"]
    allowed_tools: [echo, get-sum]
general_settings:
  master_key: sk-master-mcp
virtual_keys:
  - api_key: sk-clock-only
    mcp_servers: [clock]
"#,
        time = time_server(),
        ev = everything()
    );
    let gw = Gateway::start(&cfg);
    let get = |key: &'static str, path: &'static str| {
        let url = format!("{}{path}", gw.url);
        async move {
            let r = client().get(url).bearer_auth(key).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    // Servers declared in config are live at once and keep their descriptions.
    let (status, servers) = get("sk-master-mcp", "/v1/mcp/servers").await;
    assert_eq!(status, 200);
    let text = servers.to_string();
    assert!(
        text.contains("clock") && text.contains("Time from PyPI"),
        "{text}"
    );

    let call = |key: &'static str, body: Value| {
        let url = format!("{}/v1/mcp/tools/call", gw.url);
        async move {
            let r = client()
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, result) = call(
        "sk-clock-only",
        json!({"name": "clock-get_current_time", "arguments": {"timezone": "UTC"}}),
    )
    .await;
    assert_eq!(status, 200, "{result}");
    assert!(result.to_string().contains("UTC"), "{result}");

    // The clock-only key sees only the clock, and may not call ev.
    let (_, tools) = get("sk-clock-only", "/v1/mcp/tools").await;
    let names: Vec<String> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.iter().all(|n| n.starts_with("clock-")), "{names:?}");
    let (status, result) = call(
        "sk-clock-only",
        json!({"server": "ev", "tool": "echo", "arguments": {"message": "x"}}),
    )
    .await;
    assert_eq!(status, 403, "{result}");
    assert!(
        result.to_string().contains("ev"),
        "names the server: {result}"
    );
    // By aggregated name, a server outside the key's scope is not even visible.
    let (_, result) = call(
        "sk-clock-only",
        json!({"name": "ev-echo", "arguments": {"message": "x"}}),
    )
    .await;
    assert_eq!(result["isError"], true, "{result}");
    assert!(!result.to_string().contains("Echo: x"));

    // allowed_tools limits listing and calling alike.
    let (_, tools) = get("sk-master-mcp", "/v1/mcp/tools").await;
    let ev: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .filter(|n| n.starts_with("ev-"))
        .collect();
    assert_eq!(ev.len(), 2, "{ev:?}");
    let (status, result) = call(
        "sk-master-mcp",
        json!({"name": "ev-get-tiny-image", "arguments": {}}),
    )
    .await;
    assert!(
        status != 200 || result["isError"] == true,
        "disallowed tool ran: {status} {result}"
    );
}
