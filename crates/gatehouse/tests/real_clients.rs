#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The real clients, unmodified, through the gateway: Codex CLI (Responses API + MCP over
//! streamable HTTP) and Claude Code (Anthropic Messages + MCP), installed from npm by
//! `scripts/install-peers` (pinned there). The upstreams are the faithful mocks; each
//! client runs with its own HOME and config dir in a temp dir, and must finish in 60 s.
//! Each runs with the configuration `gatehouse connect <client>` prints, as printed.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Gateway, connect, everything, fenced, npm_module};
use gatehouse_testkit::{MockOptions, MockServer, Reply};

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

/// `codex exec` against the gateway, with a fresh `CODEX_HOME` holding the config.toml
/// that `gatehouse connect codex` prints (plus the approval policy `codex exec` needs).
async fn codex(gw: &Gateway, model: &str, prompt: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let codex_home = dir.path().join("codex");
    let work = dir.path().join("work");
    for d in [&home, &codex_home, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    let printed = connect("codex", &gw.url, &["--key-env", "GW_KEY", "--model", model]);
    let toml = fenced(&printed, "toml");
    assert_eq!(toml.len(), 1, "one config.toml printed:\n{printed}");
    let config = format!(
        "approval_policy = \"never\"\nsandbox_mode = \"read-only\"\n{}\n",
        toml[0]
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

/// `claude -p` against the gateway, in a shell that first runs the environment block
/// `gatehouse connect claude-code` prints. With `mcp`, the printed `.mcp.json` is
/// passed with `--mcp-config` (its header reads the key from the environment).
async fn claude(gw: &Gateway, model: &str, prompt: &str, mcp: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let printed = connect(
        "claude-code",
        &gw.url,
        &["--key-env", "GW_KEY", "--model", model],
    );
    let env_block = fenced(&printed, "sh")
        .into_iter()
        .find(|b| b.contains("ANTHROPIC_BASE_URL"))
        .expect("an environment block");
    let mut args: Vec<String> = vec![
        "-p".into(),
        prompt.into(),
        "--output-format".into(),
        "text".into(),
    ];
    if mcp {
        let json = fenced(&printed, "json");
        assert_eq!(json.len(), 1, "one .mcp.json printed:\n{printed}");
        let file = work.join(".mcp.json");
        std::fs::write(&file, &json[0]).unwrap();
        args.extend([
            "--mcp-config".into(),
            file.to_string_lossy().into_owned(),
            "--strict-mcp-config".into(),
            "--allowedTools".into(),
            "mcp__gatehouse".into(),
        ]);
    }
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{env_block}\nexec \"$0\" \"$@\""))
        .arg(npm_module("@anthropic-ai/claude-code/bin/claude.exe"))
        .args(&args)
        .current_dir(&work)
        .env("HOME", dir.path())
        .env("GW_KEY", MASTER)
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
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
        names.contains(&"mcp__gatehouse__ev_echo"),
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
        // Codex names the gateway's `ev-echo` as `ev_echo` inside namespace `mcp__gatehouse`;
        // the model sees the flattened name.
        mock.push_reply(Reply::tool_call(
            "mcp__gatehouse__ev_echo",
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
    let r = claude(&gw, "claude", "hello from claude code", false).await;
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
    let r = claude(&gw, "local-llm", "hello translated claude code", false).await;
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
    for model in ["claude", "local-llm"] {
        mock.clear_requests();
        mock.push_reply(Reply::tool_call(
            "mcp__gatehouse__ev-echo",
            r#"{"message":"hi from claude code"}"#,
        ));
        let r = claude(&gw, model, "use the echo tool", true).await;
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
                .any(|r| r.body.to_string().contains("mcp__gatehouse__ev-echo")),
            "{model}: Claude Code told the model about the gateway's MCP tool"
        );
    }
}
