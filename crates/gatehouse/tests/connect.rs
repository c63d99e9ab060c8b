#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! `gatehouse connect` for the SDKs and the MCP hosts, run as printed against the real
//! binary in front of the mock: the official openai and anthropic Python SDKs run the
//! printed snippet; the MCP JSON printed for VS Code and Cursor is read by the official
//! `mcp` Python SDK, which lists and calls a tool with that URL and those headers.
//! (Codex CLI and Claude Code run with their printed configuration in real_clients.rs.)

mod common;

use std::process::Command;

use common::{Gateway, connect, everything, fenced, venv_python};
use gatehouse_testkit::{MockOptions, MockServer};

const MASTER: &str = "sk-master-connect";

async fn setup() -> (MockServer, Gateway) {
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: local-llm
    litellm_params: {{model: hosted_vllm/qwen3-coder, api_base: "{base}/v1", api_key: sk-up}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-sonnet-4-20250514, api_base: "{base}", api_key: sk-up}}
mcp_servers:
  ev:
    transport: stdio
    command: node
    args: ["{everything}", "stdio"]
general_settings:
  master_key: {MASTER}
"#,
        base = mock.url(),
        everything = everything()
    );
    (mock, Gateway::start(&cfg))
}

/// Runs Python `code` with the key in `GW_KEY`; returns stdout (asserting success).
fn python(code: &str) -> String {
    let out = Command::new(venv_python())
        .args(["-c", code])
        .env("GW_KEY", MASTER)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{code}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn printed_python(client: &str, gw: &Gateway, model: &str) -> String {
    let out = connect(client, &gw.url, &["--key-env", "GW_KEY", "--model", model]);
    let blocks = fenced(&out, "python");
    assert_eq!(blocks.len(), 1, "one Python snippet:\n{out}");
    blocks[0].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_sdk_snippet_answers_through_the_gateway() {
    let (mock, gw) = setup().await;
    let out = python(&printed_python("openai-sdk", &gw, "local-llm"));
    assert_eq!(out.trim(), "Echo: hello");
    assert_eq!(
        mock.requests_to("/v1/chat/completions")[0].body["model"],
        "qwen3-coder"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_sdk_snippet_answers_through_the_gateway() {
    let (mock, gw) = setup().await;
    let out = python(&printed_python("anthropic-sdk", &gw, "claude"));
    assert_eq!(out.trim(), "Echo: hello");
    assert_eq!(
        mock.requests_to("/v1/messages")[0].body["model"],
        "claude-sonnet-4-20250514"
    );
}

/// Lists and calls `ev-echo` with the official MCP SDK, given a URL and headers.
const MCP_CLIENT: &str = r#"
import asyncio, json, sys
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

url, headers = sys.argv[1], json.loads(sys.argv[2])

async def main():
    http = create_mcp_http_client(headers=headers)
    async with streamable_http_client(url, http_client=http) as (read, write, *_):
        async with ClientSession(read, write) as s:
            await s.initialize()
            tools = sorted(t.name for t in (await s.list_tools()).tools)
            result = await s.call_tool("ev-echo", {"message": "via printed config"})
            print(json.dumps({"tools": tools, "text": result.content[0].text}))

asyncio.run(main())
"#;

fn mcp_client(url: &str, headers: &serde_json::Value) -> serde_json::Value {
    let out = Command::new(venv_python())
        .args(["-c", MCP_CLIENT, url, &headers.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mcp client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn vscode_and_cursor_mcp_json_reach_the_tools() {
    let (_mock, gw) = setup().await;
    // VS Code prompts for `${input:gatehouse-key}`; Cursor expands `${env:GW_KEY}`.
    for (client, root, placeholder) in [
        ("vscode", "servers", "${input:gatehouse-key}"),
        ("cursor", "mcpServers", "${env:GW_KEY}"),
    ] {
        let out = connect(client, &gw.url, &["--key-env", "GW_KEY", "--servers", "ev"]);
        let json = fenced(&out, "json");
        assert_eq!(json.len(), 1, "{client}: one JSON file:\n{out}");
        let config: serde_json::Value = serde_json::from_str(&json[0]).unwrap();
        let server = &config[root]["gatehouse"];
        let mut headers = server["headers"].clone();
        let auth = headers["Authorization"].as_str().unwrap().to_string();
        assert_eq!(auth, format!("Bearer {placeholder}"), "{client}");
        assert_eq!(headers["x-mcp-servers"], "ev", "{client}");
        headers["Authorization"] = auth.replace(placeholder, MASTER).into();
        let seen = mcp_client(server["url"].as_str().unwrap(), &headers);
        assert!(
            seen["tools"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "ev-echo"),
            "{client}: {seen}"
        );
        assert_eq!(seen["text"], "Echo: via printed config", "{client}");
    }
}

#[test]
fn every_client_prints_and_a_bad_url_is_refused() {
    for client in [
        "codex",
        "claude-code",
        "vscode",
        "cursor",
        "open-webui",
        "openai-sdk",
        "anthropic-sdk",
    ] {
        let out = connect(client, "http://gw.lan:4000", &[]);
        assert!(out.contains("http://gw.lan:4000"), "{client}:\n{out}");
        assert!(
            out.contains("MODEL_NAME") || ["vscode", "open-webui"].contains(&client),
            "{client}"
        );
        assert!(!out.contains("sk-master"), "{client}: no key value printed");
    }
    let (code, _, err) = common::run(&["connect", "codex", "--url", "gw.lan:4000"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("give the scheme"), "{err}");
    let (code, _, err) = common::run(&["connect", "emacs"], &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("codex") && err.contains("claude-code"),
        "{err}"
    );
}
