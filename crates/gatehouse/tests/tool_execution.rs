#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! MCP tool calls executed server-side inside chat requests: real MCP servers from npm,
//! faithful mock LLMs scripted to call tools (the mock turns a `CALL <tool> <json>` line
//! into a tool call, and answers `Tool said: <result>` once it sees tool results).

mod common;

use std::time::Duration;

use common::{Gateway, TempDatabase, client, everything, filesystem, postgres_server};
use futures_util::StreamExt;
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-tools";
const VIRTUAL: &str = "sk-litellm-test-9768ce8475df0a3c";

fn base_config(mock: &MockServer, model_block: &str, servers: &str, extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: sk-up}}
  - model_name: claude-3-haiku-orchestrator
    litellm_params: {{model: claude-3-haiku-20240307, api_base: "{base}", api_key: sk-up}}
{model_block}
mcp_servers:
{servers}
general_settings:
  master_key: {MASTER}
{extra}
"#,
        base = mock.url()
    )
}

fn everything_server(name: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    transport: stdio\n    command: node\n    args: [\"{}\", \"stdio\"]\n{extra}",
        everything()
    )
}

async fn chat(gw: &Gateway, key: &str, headers: &[(&str, &str)], body: Value) -> reqwest::Response {
    let mut req = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(key)
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn content(v: &Value) -> &str {
    v["choices"][0]["message"]["content"].as_str().unwrap_or("")
}

/// The seed scenario: Claude + MCP Postgres + a config-declared virtual key. LiteLLM
/// stops at `finish_reason: "tool_calls"`; Gatehouse answers with real rows.
#[tokio::test]
async fn claude_lists_databases_through_mcp_postgres_with_a_config_key() {
    let db = TempDatabase::create();
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    let servers = format!(
        "  db_main:\n    transport: stdio\n    command: node\n    args: [\"{}\", \"postgresql://postgres@127.0.0.1:5432/postgres\"]\n    api_keys: [os.environ/LITELLM_VIRTUAL_KEY_TEST]\n    require_approval: never\n",
        postgres_server()
    );
    let extra = "virtual_keys:\n  - api_key: os.environ/LITELLM_VIRTUAL_KEY_TEST\n    key_alias: test-virtual-key\n    models: [claude-3-haiku-orchestrator]\n    mcp_servers: [db_main]\n";
    let gw = Gateway::start_with(
        &base_config(&mock, "", &servers, extra),
        &[],
        &[("LITELLM_VIRTUAL_KEY_TEST", VIRTUAL)],
    );
    let resp = chat(
        &gw,
        VIRTUAL,
        &[("x-mcp-servers", "db_main")],
        json!({"model": "claude-3-haiku-orchestrator", "messages": [{"role": "user",
               "content": "CALL db_main-query {\"sql\": \"SELECT datname FROM pg_database ORDER BY datname\"}"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(
        content(&body).contains(&db.0),
        "answer lacks the new database: {}",
        content(&body)
    );
    let calls = body["mcp_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["server"], "db_main");
    assert_eq!(calls[0]["tool"], "query");
    assert_eq!(calls[0]["ok"], true);
    // Usage covers both model calls.
    let first = mock.requests()[0].body.clone();
    assert_eq!(mock.requests().len(), 2);
    assert!(
        first["tools"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "db_main-query")
    );
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn model_info_attaches_a_filesystem_server_for_plain_clients() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "the secret word is marmalade").unwrap();
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let servers = format!(
        "  files:\n    command: node\n    args: [\"{}\", \"{}\"]\n",
        filesystem(),
        dir.path().display()
    );
    let model_block = format!(
        "  - model_name: gpt-files\n    litellm_params: {{model: openai/x, api_base: \"{}\"}}\n    model_info: {{mcp_servers: [fs]}}\n",
        mock.url()
    );
    let cfg = base_config(
        &mock,
        &model_block,
        &servers,
        "litellm_settings:\n  mcp_aliases: {fs: files}\n",
    );
    let gw = Gateway::start(&cfg);
    let ask = format!(
        "CALL files-read_text_file {{\"path\": \"{}\"}}",
        file.display()
    );
    let resp = chat(
        &gw,
        MASTER,
        &[],
        json!({"model": "gpt-files", "messages": [{"role": "user", "content": ask}]}),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert!(content(&body).contains("marmalade"), "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn two_servers_parallel_calls_and_a_multi_round_chain() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha-content").unwrap();
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let servers = format!(
        "{}  files:\n    command: node\n    args: [\"{}\", \"{}\"]\n",
        everything_server("ev", ""),
        filesystem(),
        dir.path().display()
    );
    let gw = Gateway::start(&base_config(&mock, "", &servers, ""));
    // Round 1: two calls on two servers at once; round 2: another call; then the answer.
    mock.push_reply(Reply::ToolCalls(vec![
        ("ev-echo".into(), r#"{"message": "ping"}"#.into()),
        (
            "files-read_text_file".into(),
            json!({"path": dir.path().join("a.txt")}).to_string(),
        ),
    ]));
    mock.push_reply(Reply::tool_call("ev-get-sum", r#"{"a": 2, "b": 40}"#));
    let resp = chat(
        &gw,
        MASTER,
        &[("x-mcp-servers", "ev, files")],
        json!({"model": "gpt", "messages": [{"role": "user", "content": "go"}]}),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(content(&body).contains("42"), "{body}");
    let calls = body["mcp_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|c| c["ok"] == true), "{calls:?}");
    // The second model call saw both results of the parallel round, in call order.
    let second = &mock.requests()[1].body["messages"];
    let tool_msgs: Vec<&Value> = second
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(tool_msgs.len(), 2);
    assert!(
        tool_msgs[0]["content"]
            .as_str()
            .unwrap()
            .contains("Echo: ping")
    );
    assert!(
        tool_msgs[1]["content"]
            .as_str()
            .unwrap()
            .contains("alpha-content")
    );
}

#[tokio::test]
async fn tool_errors_and_unknown_tools_reach_the_model_not_the_client() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&base_config(&mock, "", &everything_server("ev", ""), ""));
    mock.push_reply(Reply::ToolCalls(vec![
        ("ev-get-sum".into(), r#"{"a": "not a number"}"#.into()),
        ("ev-does-not-exist".into(), "{}".into()),
    ]));
    let resp = chat(
        &gw,
        MASTER,
        &[("x-mcp-servers", "ev")],
        json!({"model": "gpt", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let text = content(&body);
    assert!(text.contains("Error: invalid arguments"), "{text}");
    assert!(text.contains("unknown tool 'ev-does-not-exist'"), "{text}");
    let calls = body["mcp_calls"].as_array().unwrap();
    assert!(calls.iter().all(|c| c["ok"] == false));
}

#[tokio::test]
async fn approval_always_returns_the_call_to_the_client() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&base_config(
        &mock,
        "",
        &everything_server("ev", "    require_approval: always\n"),
        "",
    ));
    let resp = chat(
        &gw,
        MASTER,
        &[],
        json!({"model": "gpt", "tools": [{"type": "mcp", "server_label": "ev", "require_approval": "never"}],
               "messages": [{"role": "user", "content": "CALL ev-echo {\"message\": \"hi\"}"}]}),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "ev-echo"
    );
    assert_eq!(body["mcp_calls"], json!([]));
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn a_mixed_turn_runs_mcp_and_returns_the_clients_call_then_resumes_whole() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&base_config(&mock, "", &everything_server("ev", ""), ""));
    let weather = json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    let ask = "CALL ev-echo {\"message\": \"from mcp\"}\nCALL get_weather {\"city\": \"Oslo\"}";
    let first: Value = chat(
        &gw,
        MASTER,
        &[("x-mcp-servers", "ev")],
        json!({"model": "gpt", "tools": [weather], "messages": [{"role": "user", "content": ask}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    let calls = first["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(
        calls.len(),
        1,
        "only the client's own call comes back: {calls:?}"
    );
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(first["mcp_calls"][0]["tool"], "echo");

    let second: Value = chat(
        &gw,
        MASTER,
        &[("x-mcp-servers", "ev")],
        json!({"model": "gpt", "tools": [weather], "messages": [
            {"role": "user", "content": ask},
            first["choices"][0]["message"],
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "rainy"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
    // The model saw the whole turn: both calls, the MCP result and the client's.
    let sent = mock.requests()[1].body["messages"].clone();
    let assistant = sent
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "assistant")
        .unwrap();
    assert_eq!(assistant["tool_calls"].as_array().unwrap().len(), 2);
    let tools: Vec<&str> = sent
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(tools.len(), 2);
    assert!(
        tools[0].contains("Echo: from mcp") && tools[1] == "rainy",
        "{tools:?}"
    );
}

#[tokio::test]
async fn the_iteration_cap_ends_the_loop_with_a_marker() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&base_config(
        &mock,
        "",
        &everything_server("ev", ""),
        "litellm_settings:\n  mcp_max_iterations: 2\n",
    ));
    for _ in 0..3 {
        mock.push_reply(Reply::tool_call("ev-echo", r#"{"message": "again"}"#));
    }
    let body: Value = chat(
        &gw,
        MASTER,
        &[("x-mcp-servers", "ev")],
        json!({"model": "gpt", "messages": [{"role": "user", "content": "loop"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["mcp_max_iterations_reached"], true);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(content(&body).contains("mcp_max_iterations"));
    assert_eq!(mock.requests().len(), 2);
    assert_eq!(body["mcp_calls"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn streaming_shows_one_clean_answer_with_progress_in_extension_fields() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&base_config(&mock, "", &everything_server("ev", ""), ""));
    let resp = chat(
        &gw,
        MASTER,
        &[("x-mcp-servers", "ev")],
        json!({"model": "claude-3-haiku-orchestrator", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "CALL ev-echo {\"message\": \"streamed\"}"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let mut answer = String::new();
    let mut finish = None;
    let mut statuses = Vec::new();
    for data in text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
    {
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        assert_eq!(chunk["object"], "chat.completion.chunk");
        if let Some(s) = chunk["mcp_call"]["status"].as_str() {
            statuses.push(s.to_string());
        }
        if let Some(choice) = chunk["choices"].get(0) {
            assert!(
                choice["delta"]["tool_calls"].is_null(),
                "no intermediate tool-call turn"
            );
            answer.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = Some(f.to_string());
            }
        }
    }
    assert_eq!(answer, "Tool said: Echo: streamed");
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(statuses, ["running", "completed"]);
    assert!(text.trim_end().ends_with("data: [DONE]"));
}

#[tokio::test]
async fn a_client_that_leaves_mid_loop_stops_the_loop() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&base_config(&mock, "", &everything_server("ev", ""), ""));
    mock.push_reply(Reply::tool_call(
        "ev-trigger-long-running-operation",
        r#"{"duration": 3, "steps": 3}"#,
    ));
    let resp = chat(
        &gw,
        MASTER,
        &[("x-mcp-servers", "ev")],
        json!({"model": "gpt", "stream": true, "messages": [{"role": "user", "content": "long"}]}),
    )
    .await;
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("running"));
    drop(stream);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        mock.requests().len(),
        1,
        "no model call after the client left"
    );
}

#[tokio::test]
async fn access_is_checked_before_anything_runs() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let extra = "virtual_keys:\n  - api_key: sk-no-mcp\n    mcp_servers: []\n";
    let gw = Gateway::start(&base_config(&mock, "", &everything_server("ev", ""), extra));
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "CALL ev-echo {\"message\": \"x\"}"}]});
    let resp = chat(&gw, "sk-no-mcp", &[("x-mcp-servers", "ev")], body.clone()).await;
    assert_eq!(resp.status(), 403);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"]["message"].as_str().unwrap().contains("'ev'"),
        "{err}"
    );

    let resp = chat(&gw, MASTER, &[("x-mcp-servers", "nope")], body).await;
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"]["message"].as_str().unwrap().contains("ev"),
        "lists what exists: {err}"
    );
    assert!(mock.requests().is_empty());
}

/// The loop over every adapter: each vendor mock answers in its own wire format, so the
/// tool call and the result round-trip through each translation.
#[tokio::test]
async fn the_loop_runs_over_every_provider_adapter() {
    use gatehouse_testkit::{AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY};
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let base = mock.url();
    let cfg = format!(
        r#"
model_list:
  - model_name: openai
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: k}}
  - model_name: anthropic
    litellm_params: {{model: anthropic/claude-3-5-haiku-latest, api_base: "{base}", api_key: k}}
  - model_name: gemini
    litellm_params: {{model: gemini/gemini-2.0-flash, api_base: "{base}", api_key: k}}
  - model_name: azure
    litellm_params: {{model: azure/gpt4o-prod, api_base: "{base}", api_key: k, api_version: "2024-10-21"}}
  - model_name: bedrock
    litellm_params:
      model: bedrock/anthropic.claude-3-haiku-20240307-v1:0
      api_base: "{base}"
      aws_region_name: us-west-2
      aws_access_key_id: {AWS_ACCESS_KEY_ID}
      aws_secret_access_key: "{AWS_SECRET_ACCESS_KEY}"
mcp_servers:
{ev}
general_settings:
  master_key: {MASTER}
"#,
        ev = everything_server("ev", "")
    );
    let gw = Gateway::start(&cfg);
    for model in ["openai", "anthropic", "gemini", "azure", "bedrock"] {
        for stream in [false, true] {
            let resp = chat(
                &gw,
                MASTER,
                &[("x-mcp-servers", "ev")],
                json!({"model": model, "stream": stream, "messages": [{"role": "user",
                       "content": "CALL ev-get-sum {\"a\": 40, \"b\": 2}"}]}),
            )
            .await;
            assert_eq!(resp.status(), 200, "{model}");
            let text = resp.text().await.unwrap();
            let answer = if stream {
                text.split("\n\n")
                    .filter_map(|e| e.trim().strip_prefix("data: "))
                    .filter(|d| *d != "[DONE]")
                    .filter_map(|d| serde_json::from_str::<Value>(d).ok())
                    .filter_map(|c| {
                        c["choices"][0]["delta"]["content"]
                            .as_str()
                            .map(str::to_owned)
                    })
                    .collect::<String>()
            } else {
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["choices"][0]["finish_reason"], "stop", "{model}: {v}");
                content(&v).to_string()
            };
            assert!(answer.contains("42"), "{model} stream={stream}: {answer}");
        }
    }
}

/// The function names offered to the model in the mock's `n`-th request.
fn offered(mock: &MockServer, n: usize) -> Vec<String> {
    mock.requests_to("/v1/chat/completions")[n].body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
        .collect()
}

/// A key whose metadata asks for the lazy catalog gets three functions instead of the
/// catalog, and the model reaches a real tool through them; another key gets every tool.
#[tokio::test]
async fn a_lazy_key_gets_search_describe_call_and_the_tool_still_runs() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let extra = "virtual_keys:\n  - api_key: sk-lazy-chat\n    metadata: {mcp_catalog: lazy}\n  - api_key: sk-full-chat\n";
    let gw = Gateway::start(&base_config(&mock, "", &everything_server("ev", ""), extra));
    let ask = |key: &'static str, text: String| {
        let gw = &gw;
        async move {
            let resp = chat(
                gw,
                key,
                &[("x-mcp-servers", "ev")],
                json!({"model": "gpt", "messages": [{"role": "user", "content": text}]}),
            )
            .await;
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };

    let body = ask(
        "sk-lazy-chat",
        r#"CALL search_tools {"query": "echo message"}"#.into(),
    )
    .await;
    assert_eq!(
        offered(&mock, 0),
        ["search_tools", "describe_tool", "call_tool"]
    );
    let text = content(&body);
    assert!(text.starts_with("Tool said: "), "{text}");
    let found: Value = serde_json::from_str(text.trim_start_matches("Tool said: ")).unwrap();
    assert_eq!(found["tools"][0]["name"], "ev-echo", "{found}");

    let body = ask(
        "sk-lazy-chat",
        r#"CALL describe_tool {"name": "ev-get-sum"}"#.into(),
    )
    .await;
    let text = content(&body);
    assert!(
        text.contains("\"inputSchema\"") && text.contains("\"a\""),
        "{text}"
    );

    let call = r#"CALL call_tool {"name": "ev-echo", "arguments": {"message": "lazily"}}"#;
    let body = ask("sk-lazy-chat", call.into()).await;
    assert_eq!(content(&body), "Tool said: Echo: lazily", "{body}");
    let calls = body["mcp_calls"].as_array().unwrap();
    assert_eq!(
        (
            calls[0]["server"].as_str(),
            calls[0]["tool"].as_str(),
            &calls[0]["ok"]
        ),
        (Some("ev"), Some("echo"), &json!(true)),
        "{calls:?}"
    );

    // Bad lazy calls are answered to the model, never sent anywhere.
    let call = r#"CALL call_tool {"name": "ev-nope", "arguments": {}}"#;
    let body = ask("sk-lazy-chat", call.into()).await;
    assert!(
        content(&body).contains("Error: unknown tool 'ev-nope'"),
        "{body}"
    );

    mock.clear_requests();
    let body = ask(
        "sk-full-chat",
        r#"CALL ev-echo {"message": "fully"}"#.into(),
    )
    .await;
    assert_eq!(content(&body), "Tool said: Echo: fully");
    let names = offered(&mock, 0);
    assert!(
        names.len() > 3 && names.contains(&"ev-echo".to_owned()),
        "{names:?}"
    );
    assert!(!names.contains(&"search_tools".to_owned()));
}

/// `mcp_settings.catalog: lazy` makes every chat loop lazy; a tool that needs approval
/// stays an ordinary function so its call still reaches the client.
#[tokio::test]
async fn configured_lazy_catalog_keeps_tools_needing_approval_visible() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let servers = format!(
        "{}{}",
        everything_server("ev", ""),
        everything_server(
            "careful",
            "    require_approval: always\n    allowed_tools: [echo]\n"
        )
    );
    let gw = Gateway::start(&base_config(
        &mock,
        "",
        &servers,
        "mcp_settings:\n  catalog: lazy\n",
    ));
    let resp = chat(
        &gw,
        MASTER,
        &[("x-mcp-servers", "ev,careful")],
        json!({"model": "gpt", "messages": [{"role": "user", "content": "CALL careful-echo {\"message\": \"ok?\"}"}]}),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        offered(&mock, 0),
        ["careful-echo", "search_tools", "describe_tool", "call_tool"]
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "{body}");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["name"],
        "careful-echo"
    );
}
