#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! `POST /v1/messages` and `/v1/messages/count_tokens` in front of every provider:
//! passed through to Anthropic (headers and bytes unchanged), translated through chat for
//! OpenAI-compatible upstreams, with every error in Anthropic's shape.

mod common;

use common::{Gateway, client, everything};
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-messages";
const BETA: &str =
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27";

async fn setup() -> (MockServer, Gateway) {
    setup_with("").await
}

async fn setup_with(extra: &str) -> (MockServer, Gateway) {
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: claude-sonnet
    litellm_params: {{model: anthropic/claude-sonnet-4-20250514, api_base: "{base}", api_key: sk-up}}
  - model_name: local-llm
    litellm_params: {{model: hosted_vllm/qwen3-coder, api_base: "{base}/v1", api_key: sk-up}}
general_settings:
  master_key: {MASTER}
{extra}
"#,
        base = mock.url()
    );
    (mock, Gateway::start(&cfg))
}

async fn post(gw: &Gateway, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", gw.url))
        .header("x-api-key", MASTER)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", BETA)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// `(event name, data)` of every SSE event.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter_map(|block| {
            let name = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_string(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

fn text_of(message: &Value) -> String {
    message["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["text"].as_str())
        .collect()
}

#[tokio::test]
async fn anthropic_deployments_get_body_and_beta_headers_unchanged() {
    let (mock, gw) = setup().await;
    let body = json!({"model": "claude-sonnet", "max_tokens": 256,
        "system": [{"type": "text", "text": "be brief", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "u1"},
        "messages": [{"role": "user", "content": "hello claude"}]});
    let resp = post(&gw, "/v1/messages?beta=true", body).await;
    assert_eq!(resp.status(), 200);
    let message: Value = resp.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(text_of(&message), "Echo: hello claude");
    let sent = &mock.requests_to("/v1/messages")[0];
    assert_eq!(sent.header("anthropic-beta"), Some(BETA));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        sent.header("x-api-key"),
        Some("sk-up"),
        "the deployment's key, not the client's"
    );
    assert_eq!(sent.body["model"], "claude-sonnet-4-20250514");
    assert_eq!(
        sent.body["system"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert_eq!(sent.body["metadata"], json!({"user_id": "u1"}));
}

#[tokio::test]
async fn anthropic_streams_are_relayed_and_thinking_keeps_its_signature() {
    let (mock, gw) = setup().await;
    mock.push_reply(Reply::Thinking {
        thinking: "let me think".into(),
        signature: "sig-123".into(),
        text: "the answer".into(),
    });
    let resp = post(
        &gw,
        "/v1/messages",
        json!({"model": "claude-sonnet", "max_tokens": 2048, "stream": true,
               "thinking": {"type": "enabled", "budget_tokens": 1024},
               "messages": [{"role": "user", "content": "think"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let evs = events(&resp.text().await.unwrap());
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let sig = evs
        .iter()
        .find(|(_, d)| d["delta"]["type"] == "signature_delta")
        .map(|(_, d)| d["delta"]["signature"].clone());
    assert_eq!(sig, Some(json!("sig-123")));
}

#[tokio::test]
async fn other_providers_are_translated_with_tool_use_round_trips() {
    let (mock, gw) = setup().await;
    let tools = json!([{"name": "get_weather", "description": "weather",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let ask = "CALL get_weather {\"city\":\"Oslo\"}";
    let resp = post(
        &gw,
        "/v1/messages",
        json!({"model": "local-llm", "max_tokens": 100, "system": "sys", "tools": tools,
               "messages": [{"role": "user", "content": ask}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let first: Value = resp.json().await.unwrap();
    assert_eq!(first["stop_reason"], "tool_use");
    assert_eq!(first["model"], "local-llm");
    let tool_use = first["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .cloned()
        .unwrap();
    assert_eq!(tool_use["name"], "get_weather");
    assert_eq!(tool_use["input"], json!({"city": "Oslo"}));
    let sent = &mock.requests_to("/v1/chat/completions")[0].body;
    assert_eq!(sent["model"], "qwen3-coder");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "sys"})
    );

    let second: Value = post(
        &gw,
        "/v1/messages",
        json!({"model": "local-llm", "max_tokens": 100, "tools": tools, "messages": [
            {"role": "user", "content": ask},
            {"role": "assistant", "content": first["content"]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"],
                                          "content": "sunny"}]}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(text_of(&second), "Tool said: sunny");
    assert_eq!(second["stop_reason"], "end_turn");
    assert!(second["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn translated_streams_speak_the_messages_event_protocol() {
    let (_mock, gw) = setup().await;
    let resp = post(
        &gw,
        "/v1/messages?beta=true",
        json!({"model": "local-llm", "max_tokens": 100, "stream": true,
               "messages": [{"role": "user", "content": "stream me"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let evs = events(&resp.text().await.unwrap());
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    for needed in [
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
    ] {
        assert!(names.contains(&needed), "{needed} missing: {names:?}");
    }
    assert_eq!(names.last(), Some(&"message_stop"));
    let text: String = evs
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "Echo: stream me");
    let delta = evs.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "end_turn");
    assert!(delta.1["usage"]["output_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn errors_are_anthropic_shaped_with_anthropic_statuses() {
    let (mock, gw) = setup().await;
    let check = |status: u16, body: &Value, kind: &str| {
        assert_eq!(body["type"], "error", "{status}: {body}");
        assert_eq!(body["error"]["type"], kind, "{body}");
        assert!(body["error"]["message"].is_string());
    };
    let resp = post(
        &gw,
        "/v1/messages",
        json!({"model": "nope", "max_tokens": 5, "messages": []}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    check(404, &resp.json().await.unwrap(), "not_found_error");

    let resp = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", MASTER)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    check(400, &resp.json().await.unwrap(), "invalid_request_error");

    // Overloaded upstream: Anthropic's own 529 body reaches the client.
    mock.push_reply(Reply::overloaded());
    let resp = post(
        &gw,
        "/v1/messages",
        json!({"model": "claude-sonnet", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 529);
    check(529, &resp.json().await.unwrap(), "overloaded_error");

    // The same failure behind a translated provider is still Anthropic-shaped.
    mock.push_reply(Reply::rate_limited(60));
    let resp = post(
        &gw,
        "/v1/messages",
        json!({"model": "local-llm", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    check(429, &resp.json().await.unwrap(), "rate_limit_error");
}

#[tokio::test]
async fn a_wrong_key_is_refused_in_anthropic_shape() {
    let (_mock, gw) = setup().await;
    let resp = client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", "sk-wrong")
        .json(&json!({"model": "claude-sonnet", "max_tokens": 5, "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "authentication_error");
}

#[tokio::test]
async fn count_tokens_asks_anthropic_and_estimates_elsewhere() {
    let (mock, gw) = setup().await;
    let body = |model: &str| {
        json!({"model": model, "system": "You are a helpful assistant.",
               "messages": [{"role": "user", "content": "Count the tokens in this sentence please."}]})
    };
    let resp = post(
        &gw,
        "/v1/messages/count_tokens?beta=true",
        body("claude-sonnet"),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let counted: Value = resp.json().await.unwrap();
    let upstream = counted["input_tokens"].as_u64().unwrap();
    assert!(upstream > 0);
    let sent = &mock.requests_to("/v1/messages/count_tokens")[0];
    assert_eq!(sent.body["model"], "claude-sonnet-4-20250514");
    assert_eq!(sent.header("anthropic-beta"), Some(BETA));

    let resp = post(&gw, "/v1/messages/count_tokens", body("local-llm")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-gatehouse-token-estimate"], "true");
    let estimated = resp.json::<Value>().await.unwrap()["input_tokens"]
        .as_u64()
        .unwrap();
    // 28 + 4 + 41 characters -> 19 tokens, plus 4 for the one message.
    assert_eq!(estimated, 23);
}

/// Every path writes a spend row with the tokens the upstream reported: passthrough and
/// translated, JSON and streamed, on /v1/messages and /v1/responses.
#[tokio::test]
async fn spend_rows_carry_tokens_on_every_path() {
    let (_mock, gw) = setup().await;
    let http = client();
    let created: Value = http
        .post(format!("{}/key/generate", gw.url))
        .bearer_auth(MASTER)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let cases = [
        ("/v1/messages", "claude-sonnet", false),
        ("/v1/messages", "claude-sonnet", true),
        ("/v1/messages", "local-llm", false),
        ("/v1/messages", "local-llm", true),
        ("/v1/responses", "claude-sonnet", true),
        ("/v1/responses", "local-llm", true),
    ];
    for (path, model, stream) in cases {
        let body = if path == "/v1/messages" {
            json!({"model": model, "max_tokens": 50, "stream": stream,
                   "messages": [{"role": "user", "content": "count me"}]})
        } else {
            json!({"model": model, "input": "count me", "stream": stream, "store": false})
        };
        let resp = http
            .post(format!("{}{path}", gw.url))
            .bearer_auth(&key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path} {model} {stream}");
        resp.text().await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let rows = loop {
        let rows: Value = http
            .get(format!("{}/spend/logs?api_key={key}", gw.url))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if rows.as_array().is_some_and(|r| r.len() >= cases.len()) {
            break rows;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "spend rows missing: {rows}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    for row in rows.as_array().unwrap() {
        assert!(row["prompt_tokens"].as_u64().unwrap() > 0, "{row}");
        assert!(row["completion_tokens"].as_u64().unwrap() > 0, "{row}");
        assert!(
            row["model_id"].is_string() || row["model"].is_string(),
            "{row}"
        );
    }
}

#[tokio::test]
async fn mcp_servers_attached_by_header_run_in_the_gateway() {
    let servers = format!(
        "mcp_servers:\n  ev:\n    transport: stdio\n    command: node\n    args: [\"{}\", \"stdio\"]\n",
        everything()
    );
    let (mock, gw) = setup_with(&servers).await;
    for (model, stream) in [
        ("claude-sonnet", false),
        ("claude-sonnet", true),
        ("local-llm", true),
    ] {
        mock.push_reply(Reply::tool_call(
            "ev-echo",
            r#"{"message":"from messages"}"#,
        ));
        let resp = client()
            .post(format!("{}/v1/messages", gw.url))
            .header("x-api-key", MASTER)
            .header("x-mcp-servers", "ev")
            .json(&json!({"model": model, "max_tokens": 100, "stream": stream,
                          "messages": [{"role": "user", "content": "echo it"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{model}");
        let text = if stream {
            let evs = events(&resp.text().await.unwrap());
            assert_eq!(evs.first().unwrap().0, "message_start");
            assert_eq!(evs.last().unwrap().0, "message_stop");
            evs.iter()
                .filter_map(|(_, d)| d["delta"]["text"].as_str())
                .collect::<String>()
        } else {
            text_of(&resp.json().await.unwrap())
        };
        assert_eq!(text, "Tool said: Echo: from messages", "{model} {stream}");
    }
}
