#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The real clients, unmodified, through the gateway: Codex CLI (Responses API + MCP over
//! streamable HTTP) and Claude Code (Anthropic Messages + MCP), installed from npm by
//! `scripts/install-peers` (pinned there). The upstreams are the faithful mocks; each
//! client runs with its own HOME and config dir in a temp dir, and must finish in 60 s.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Gateway, everything, npm_module};
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::json;

const MASTER: &str = "sk-master-real-clients";
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

async fn setup() -> (MockServer, Gateway) {
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: local-llm
    litellm_params: {{model: hosted_vllm/qwen3-coder, api_base: "{base}/v1", api_key: sk-up}}
  - model_name: gpt-native
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}/v1", api_key: sk-up}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-sonnet-4-20250514, api_base: "{base}", api_key: sk-up}}
  - model_name: claude-haiku
    litellm_params: {{model: anthropic/claude-3-5-haiku-20241022, api_base: "{base}", api_key: sk-up}}
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

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
    /// Codex's `-o` file (its final message).
    last: String,
}

async fn run(mut cmd: tokio::process::Command, last_file: Option<std::path::PathBuf>) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().expect("start the client");
    let out = tokio::time::timeout(CLIENT_TIMEOUT, child.wait_with_output())
        .await
        .expect("the client did not finish within 60 s")
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        last: last_file
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default(),
    }
}

/// `codex exec` against the gateway, with a fresh `CODEX_HOME` whose config.toml is the
/// one docs/clients.md documents.
async fn codex(gw: &Gateway, model: &str, prompt: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let codex_home = dir.path().join("codex");
    let work = dir.path().join("work");
    for d in [&home, &codex_home, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    let config = format!(
        r#"model = "{model}"
model_provider = "gw"
approval_policy = "never"
sandbox_mode = "read-only"

[model_providers.gw]
name = "Gatehouse"
base_url = "{url}/v1"
env_key = "GW_KEY"
wire_api = "responses"

[mcp_servers.gw]
url = "{url}/mcp"
bearer_token_env_var = "GW_KEY"
"#,
        url = gw.url
    );
    std::fs::write(codex_home.join("config.toml"), config).unwrap();
    let last = dir.path().join("LAST.txt");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(npm_module("@openai/codex/bin/codex.js"))
        .args(["exec", "--skip-git-repo-check", "-o"])
        .arg(&last)
        .arg(prompt)
        .current_dir(&work)
        .env("HOME", &home)
        .env("CODEX_HOME", &codex_home)
        .env("GW_KEY", MASTER)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL");
    let result = run(cmd, Some(last)).await;
    drop(dir);
    result
}

/// `claude -p` against the gateway, with the environment docs/clients.md documents.
async fn claude(gw: &Gateway, model: &str, prompt: &str, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut cmd =
        tokio::process::Command::new(npm_module("@anthropic-ai/claude-code/bin/claude.exe"));
    cmd.args(["-p", prompt, "--output-format", "text"])
        .args(extra)
        .current_dir(&work)
        .env("HOME", dir.path())
        .env("ANTHROPIC_BASE_URL", &gw.url)
        .env("ANTHROPIC_AUTH_TOKEN", MASTER)
        .env("ANTHROPIC_MODEL", model)
        .env("ANTHROPIC_DEFAULT_HAIKU_MODEL", model)
        .env("ANTHROPIC_DEFAULT_SONNET_MODEL", model)
        .env("ANTHROPIC_DEFAULT_OPUS_MODEL", model)
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("CLAUDE_CONFIG_DIR");
    let result = run(cmd, None).await;
    drop(dir);
    result
}

fn explain(r: &Run) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}\nlast:\n{}",
        r.stdout, r.stderr, r.last
    )
}

/// Text of every tool result the model was sent (chat `tool` messages or Anthropic
/// `tool_result` blocks).
fn tool_results_seen(mock: &MockServer) -> String {
    mock.requests()
        .iter()
        .flat_map(|r| r.body["messages"].as_array().cloned().unwrap_or_default())
        .filter(|m| {
            m["role"] == "tool"
                || m["content"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|b| b["type"] == "tool_result"))
        })
        .map(|m| m["content"].to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_answers_through_chat_translation() {
    let (mock, gw) = setup().await;
    let r = codex(&gw, "local-llm", "say hello through the gateway").await;
    assert!(r.ok, "{}", explain(&r));
    assert_eq!(
        r.last.trim(),
        "Echo: say hello through the gateway",
        "{}",
        explain(&r)
    );
    let sent = mock.requests_to("/v1/chat/completions");
    assert!(!sent.is_empty(), "Responses translated to chat");
    assert_eq!(sent[0].body["stream"], true);
    assert_eq!(sent[0].body["model"], "qwen3-coder");
    let names: Vec<&str> = sent[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(
        names.contains(&"mcp__gw__ev_echo"),
        "Codex listed the gateway's MCP tools and they reached the model flattened: {names:?}"
    );
    assert!(!names.contains(&"web_search"), "hosted tool dropped");
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_answers_through_responses_passthrough() {
    let (mock, gw) = setup().await;
    let r = codex(&gw, "gpt-native", "say hello natively").await;
    assert!(r.ok, "{}", explain(&r));
    assert_eq!(r.last.trim(), "Echo: say hello natively", "{}", explain(&r));
    let sent = mock.requests_to("/v1/responses");
    assert!(!sent.is_empty(), "passed through to the Responses API");
    assert_eq!(sent[0].body["model"], "gpt-4o-mini");
    assert!(
        sent[0].body["tools"].to_string().contains("\"namespace\""),
        "Codex's namespace tools reach an OpenAI upstream unchanged"
    );
    assert!(mock.requests_to("/v1/chat/completions").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_answers_through_an_anthropic_upstream() {
    let (mock, gw) = setup().await;
    let r = codex(&gw, "claude", "hello anthropic via codex").await;
    assert!(r.ok, "{}", explain(&r));
    let last = r.last.trim();
    assert!(
        last.starts_with("Echo: ") && last.ends_with("hello anthropic via codex"),
        "{}",
        explain(&r)
    );
    let sent = mock.requests_to("/v1/messages");
    assert!(!sent.is_empty());
    assert_eq!(sent[0].body["model"], "claude-sonnet-4-20250514");
}

#[tokio::test(flavor = "multi_thread")]
async fn codex_calls_a_gateway_mcp_tool_and_feeds_the_result_back() {
    let (mock, gw) = setup().await;
    for model in ["local-llm", "claude"] {
        mock.clear_requests();
        // Codex names the gateway's `ev-echo` as `ev_echo` inside namespace `mcp__gw`;
        // the model sees the flattened name.
        mock.push_reply(Reply::tool_call(
            "mcp__gw__ev_echo",
            r#"{"message":"hi from codex"}"#,
        ));
        let r = codex(&gw, model, "use the echo tool").await;
        assert!(r.ok, "{model}: {}", explain(&r));
        let seen = tool_results_seen(&mock);
        assert!(
            seen.contains("Echo: hi from codex"),
            "{model}: the real MCP result went back to the model: {seen}\n{}",
            explain(&r)
        );
        let last = r.last.trim();
        assert!(
            last.starts_with("Tool said:") && last.contains("Echo: hi from codex"),
            "{model}: {}",
            explain(&r)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_code_answers_through_an_anthropic_upstream() {
    let (mock, gw) = setup().await;
    let r = claude(&gw, "claude", "hello from claude code", &[]).await;
    assert!(r.ok, "{}", explain(&r));
    let out = r.stdout.trim();
    assert!(
        out.starts_with("Echo: ") && out.ends_with("hello from claude code"),
        "{}",
        explain(&r)
    );
    let sent = mock.requests_to("/v1/messages");
    assert!(!sent.is_empty());
    let first = &sent[0];
    assert_eq!(first.body["model"], "claude-sonnet-4-20250514");
    assert!(
        first
            .header("anthropic-beta")
            .is_some_and(|b| b.contains("claude-code-20250219")),
        "anthropic-beta forwarded: {:?}",
        first.header("anthropic-beta")
    );
    assert!(first.header("anthropic-version").is_some());
    assert_eq!(first.header("x-api-key"), Some("sk-up"));
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_code_answers_through_an_openai_compatible_upstream() {
    let (mock, gw) = setup().await;
    let r = claude(&gw, "local-llm", "hello translated claude code", &[]).await;
    assert!(r.ok, "{}", explain(&r));
    let out = r.stdout.trim();
    assert!(
        out.starts_with("Echo: ") && out.ends_with("hello translated claude code"),
        "{}",
        explain(&r)
    );
    let sent = mock.requests_to("/v1/chat/completions");
    assert!(!sent.is_empty(), "Messages translated to chat");
    assert_eq!(sent[0].body["model"], "qwen3-coder");
    assert!(mock.requests_to("/v1/messages").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn claude_code_calls_a_gateway_mcp_tool() {
    let (mock, gw) = setup().await;
    let mcp = json!({"mcpServers": {"gw": {"type": "http", "url": format!("{}/mcp", gw.url),
        "headers": {"Authorization": format!("Bearer {MASTER}")}}}})
    .to_string();
    for model in ["claude", "local-llm"] {
        mock.clear_requests();
        mock.push_reply(Reply::tool_call(
            "mcp__gw__ev-echo",
            r#"{"message":"hi from claude code"}"#,
        ));
        let r = claude(
            &gw,
            model,
            "use the echo tool",
            &[
                "--mcp-config",
                &mcp,
                "--strict-mcp-config",
                "--allowedTools",
                "mcp__gw",
            ],
        )
        .await;
        assert!(r.ok, "{model}: {}", explain(&r));
        let seen = tool_results_seen(&mock);
        assert!(
            seen.contains("Echo: hi from claude code"),
            "{model}: the real MCP result went back to the model: {seen}\n{}",
            explain(&r)
        );
        assert!(r.stdout.contains("Tool said:"), "{model}: {}", explain(&r));
        // Claude Code defers MCP tools behind its ToolSearch tool: the name reaches the
        // model in the deferred-tools list rather than in `tools`.
        assert!(
            mock.requests()
                .iter()
                .any(|r| r.body.to_string().contains("mcp__gw__ev-echo")),
            "{model}: Claude Code told the model about the gateway's MCP tool"
        );
    }
}
