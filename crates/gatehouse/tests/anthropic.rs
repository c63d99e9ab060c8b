#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Claude behind the OpenAI chat API: the faithful Anthropic mock validates what the
//! gateway sends exactly as Anthropic does.

mod common;

use common::{Gateway, client};
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::{Value, json};

async fn setup(extra: &str) -> (MockServer, Gateway) {
    let mock = MockServer::start(MockOptions::with_api_key("sk-ant-test"))
        .await
        .unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: claude
    litellm_params:
      model: claude-3-haiku-20240307
      api_base: {base}
      api_key: sk-ant-test
{extra}
"#,
        base = mock.url()
    );
    let gw = Gateway::start(&cfg);
    (mock, gw)
}

async fn chat(gw: &Gateway, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn chat_is_translated_to_messages_and_back() {
    let (mock, gw) = setup("").await;
    let resp = chat(
        &gw,
        json!({"model": "claude", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello claude"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "claude");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: hello claude"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.body["model"], "claude-3-haiku-20240307");
    assert_eq!(sent.body["system"][0]["text"], "be brief");
    assert!(sent.body["max_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn tool_calls_round_trip_through_tool_use() {
    let (mock, gw) = setup("").await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "get_time",
        "parameters": {"type": "object", "properties": {}}}}]);
    let ask = "CALL get_weather {\"city\":\"Oslo\"}\nCALL get_time {}";
    let first: Value = chat(
        &gw,
        json!({"model": "claude", "tools": tools, "messages": [{"role": "user", "content": ask}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(first["choices"][0]["finish_reason"], "tool_calls");
    let calls = first["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(calls[0]["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Oslo"})
    );
    let second = chat(
        &gw,
        json!({"model": "claude", "tools": tools, "messages": [
            {"role": "user", "content": ask},
            first["choices"][0]["message"],
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny"},
            {"role": "tool", "tool_call_id": calls[1]["id"], "content": "noon"}]}),
    )
    .await;
    assert_eq!(
        second.status(),
        200,
        "the mock rejects a tool_result without its tool_use"
    );
    let second: Value = second.json().await.unwrap();
    assert!(
        second["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("Tool said:")
    );
    // Both results went back in ONE user turn, as Anthropic requires.
    let sent = &mock.requests()[1].body["messages"];
    assert_eq!(sent.as_array().unwrap().len(), 3);
    assert_eq!(sent[2]["role"], "user");
    assert_eq!(sent[2]["content"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn streamed_parallel_tool_calls_get_distinct_indices() {
    let (mock, gw) = setup("").await;
    mock.push_reply(Reply::TextAndToolCalls {
        text: "Let me check.".into(),
        calls: vec![
            ("get_weather".into(), r#"{"city":"Oslo"}"#.into()),
            ("get_weather".into(), r#"{"city":"Rome"}"#.into()),
        ],
    });
    let resp = chat(
        &gw,
        json!({"model": "claude", "stream": true, "stream_options": {"include_usage": true},
               "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
               "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let mut args = [String::new(), String::new()];
    let mut finish = None;
    let mut usage = false;
    let mut content = String::new();
    for data in text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
    {
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        usage |= chunk["usage"].is_object();
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        if let Some(c) = choice["delta"]["content"].as_str() {
            content.push_str(c);
        }
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().unwrap() as usize;
            args[i].push_str(call["function"]["arguments"].as_str().unwrap_or(""));
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
    }
    assert_eq!(content, "Let me check.");
    assert_eq!(args[0], r#"{"city":"Oslo"}"#);
    assert_eq!(args[1], r#"{"city":"Rome"}"#);
    assert_eq!(
        finish.as_deref(),
        Some("tool_calls"),
        "text before tools must not end as stop"
    );
    assert!(usage);
    assert!(text.trim_end().ends_with("data: [DONE]"));
}

#[tokio::test]
async fn overloaded_is_503_and_retried_before_the_first_byte() {
    let (mock, gw) = setup("      max_retries: 1").await;
    mock.push_reply(Reply::overloaded());
    let resp = chat(
        &gw,
        json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200, "retried after the 529");
    assert!(
        resp.text()
            .await
            .unwrap()
            .trim_end()
            .ends_with("data: [DONE]")
    );
    assert_eq!(mock.requests().len(), 2);

    // Without retries the client gets Anthropic's 529 as OpenAI's retryable 503.
    mock.push_reply(Reply::overloaded());
    let gw2 = Gateway::start(&format!(
        "model_list:\n  - model_name: claude\n    litellm_params: {{model: anthropic/claude-3-5-haiku-latest, api_base: \"{}\", api_key: sk-ant-test}}\n",
        mock.url()
    ));
    let resp = chat(
        &gw2,
        json!({"model": "claude", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 503);
    let err: Value = resp.json().await.unwrap();
    assert!(err["error"]["message"].is_string(), "OpenAI-shaped: {err}");
}

#[tokio::test]
async fn unsupported_params_fail_unless_dropped() {
    let (mock, gw) = setup("").await;
    let body = json!({"model": "claude", "logprobs": true, "messages": [{"role": "user", "content": "hi"}]});
    let resp = chat(&gw, body.clone()).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("logprobs"),
        "{err}"
    );
    assert!(mock.requests().is_empty());

    let (_mock2, gw2) = setup("litellm_settings:\n  drop_params: true").await;
    assert_eq!(chat(&gw2, body).await.status(), 200);
}

#[tokio::test]
async fn mid_stream_vendor_error_is_sent_in_band() {
    let (mock, gw) = setup("").await;
    mock.push_reply(Reply::ErrorMidStream {
        text: "partial answer here".into(),
        after_chunks: 4,
    });
    let resp = chat(
        &gw,
        json!({"model": "claude", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    let err: Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert!(err["error"]["message"].is_string(), "{text}");
}
