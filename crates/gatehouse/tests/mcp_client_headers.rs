#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Per-server client headers in the chat tool loop: the real gateway binary, a mock LLM
//! scripted to call tools, and two real streamable-HTTP MCP servers
//! (`crates/mcp/tests/py/header_echo_server.py`, official Python SDK) whose `headers`
//! tool returns the HTTP headers of the request that carried the call.
//!
//! Peer: `python3 -m venv /root/.cache/gatehouse/venv && /root/.cache/gatehouse/venv/bin/pip install mcp`.

mod common;

use std::path::PathBuf;

use common::{Gateway, client, free_port, wait_for_port};
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-client-headers";

/// A header echo server process, killed on drop.
struct Echo(std::process::Child, u16);

impl Echo {
    fn start() -> Echo {
        let venv = std::env::var("GATEHOUSE_VENV")
            .unwrap_or_else(|_| "/root/.cache/gatehouse/venv".into());
        let py = PathBuf::from(venv).join("bin/python");
        assert!(
            py.exists(),
            "{} missing: python3 -m venv /root/.cache/gatehouse/venv && /root/.cache/gatehouse/venv/bin/pip install mcp",
            py.display()
        );
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../mcp/tests/py/header_echo_server.py"
        );
        let port = free_port();
        let child = std::process::Command::new(py)
            .arg(script)
            .arg(port.to_string())
            .spawn()
            .unwrap();
        wait_for_port(port);
        Echo(child, port)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn chat(gw: &Gateway, headers: &[(&str, &str)], body: Value) -> Value {
    let mut req = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(MASTER)
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// The `tool` messages the model got in its `n`th request.
fn tool_results(mock: &MockServer, n: usize) -> Vec<String> {
    mock.requests()[n].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn each_mcp_server_gets_only_its_own_client_headers_in_the_tool_loop() {
    let (a, b) = (Echo::start(), Echo::start());
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: sk-up}}
mcp_servers:
  alpha:
    url: http://127.0.0.1:{pa}/mcp
    transport: http
  beta:
    url: http://127.0.0.1:{pb}/mcp
    transport: http
general_settings:
  master_key: {MASTER}
"#,
        base = mock.url(),
        pa = a.1,
        pb = b.1
    );
    let gw = Gateway::start(&cfg);

    // One round calling both servers at once, with a header for each.
    mock.push_reply(Reply::ToolCalls(vec![
        ("alpha-headers".into(), "{}".into()),
        ("beta-headers".into(), "{}".into()),
    ]));
    let body = chat(
        &gw,
        &[
            ("x-mcp-servers", "alpha,beta"),
            ("x-mcp-alpha-authorization", "Bearer user-alpha"),
            ("x-mcp-beta-authorization", "Bearer user-beta"),
        ],
        json!({"model": "gpt", "messages": [{"role": "user", "content": "go"}]}),
    )
    .await;
    let calls = body["mcp_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2, "{body}");
    assert!(calls.iter().all(|c| c["ok"] == true), "{calls:?}");
    let results = tool_results(&mock, 1);
    assert_eq!(results.len(), 2);
    let (alpha, beta) = (&results[0], &results[1]);
    assert!(alpha.contains("Bearer user-alpha"), "{alpha}");
    assert!(!alpha.contains("user-beta"), "{alpha}");
    assert!(beta.contains("Bearer user-beta"), "{beta}");
    assert!(!beta.contains("user-alpha"), "{beta}");
    // The gateway's own key never goes upstream.
    assert!(!alpha.contains(MASTER) && !beta.contains(MASTER));

    // A later request without the headers: nothing of the earlier ones.
    mock.push_reply(Reply::tool_call("alpha-headers", "{}"));
    let body = chat(
        &gw,
        &[("x-mcp-servers", "alpha")],
        json!({"model": "gpt", "messages": [{"role": "user", "content": "again"}]}),
    )
    .await;
    assert_eq!(body["mcp_calls"][0]["ok"], true, "{body}");
    let results = tool_results(&mock, 3);
    assert_eq!(results.len(), 1);
    assert!(!results[0].contains("user-alpha"), "{}", results[0]);
    assert!(!results[0].contains("authorization"), "{}", results[0]);
}
