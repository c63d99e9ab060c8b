#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Bedrock (Converse / ConverseStream) behind the OpenAI chat and embeddings APIs: the
//! real gateway binary against the faithful Bedrock mock, which verifies the SigV4
//! signature with its test credentials, validates Converse bodies as Bedrock does and
//! streams in the AWS event-stream binary framing.

mod common;

use common::{Gateway, client};
use gatehouse_testkit::{AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, MockOptions, MockServer, Reply};
use serde_json::{Value, json};

const MODEL_ID: &str = "anthropic.claude-3-haiku-20240307-v1:0";
const RAW_PATH: &str = "/model/anthropic.claude-3-haiku-20240307-v1%3A0";

fn config(mock: &MockServer, credentials: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: claude-bedrock
    litellm_params:
      model: bedrock/{MODEL_ID}
      api_base: {base}
      aws_region_name: us-west-2
{credentials}
  - model_name: titan
    litellm_params:
      model: bedrock/amazon.titan-embed-text-v2:0
      api_base: {base}
      aws_region_name: us-west-2
      aws_access_key_id: {AWS_ACCESS_KEY_ID}
      aws_secret_access_key: "{AWS_SECRET_ACCESS_KEY}"
"#,
        base = mock.url()
    )
}

fn static_keys() -> String {
    format!(
        "      aws_access_key_id: {AWS_ACCESS_KEY_ID}\n      aws_secret_access_key: \"{AWS_SECRET_ACCESS_KEY}\"\n"
    )
}

async fn setup() -> (MockServer, Gateway) {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&config(&mock, &static_keys()));
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

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather",
         "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
    ])
}

#[tokio::test]
async fn chat_is_signed_translated_to_converse_and_back() {
    let (mock, gw) = setup().await;
    let resp = chat(
        &gw,
        json!({"model": "claude-bedrock", "max_tokens": 64, "temperature": 0.5, "top_k": 5,
               "messages": [{"role": "system", "content": "be brief"},
                            {"role": "user", "content": "hello bedrock"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "claude-bedrock");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: hello bedrock"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() > 0);

    let sent = &mock.requests()[0];
    assert_eq!(sent.path, format!("{RAW_PATH}/converse"));
    let auth = sent.header("authorization").unwrap();
    assert!(
        auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={AWS_ACCESS_KEY_ID}/"))
            && auth.contains("/us-west-2/bedrock/aws4_request"),
        "{auth}"
    );
    assert!(sent.header("x-amz-date").is_some());
    assert_eq!(sent.body["system"][0]["text"], "be brief");
    assert_eq!(
        sent.body["messages"][0]["content"][0]["text"],
        "hello bedrock"
    );
    assert_eq!(sent.body["inferenceConfig"]["maxTokens"], 64);
    assert_eq!(sent.body["inferenceConfig"]["temperature"], 0.5);
    assert_eq!(sent.body["additionalModelRequestFields"]["top_k"], 5);
    // Credentials are for signing, never part of the body.
    let text = sent.body.to_string();
    assert!(
        !text.contains("aws_") && !text.contains(AWS_SECRET_ACCESS_KEY),
        "{text}"
    );
}

#[tokio::test]
async fn env_credentials_with_a_session_token_and_a_bad_secret() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start_with(
        &config(&mock, ""),
        &[],
        &[
            ("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY),
            ("AWS_SESSION_TOKEN", "session-token-123"),
        ],
    );
    let resp = chat(
        &gw,
        json!({"model": "claude-bedrock", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let sent = &mock.requests()[0];
    assert_eq!(
        sent.header("x-amz-security-token"),
        Some("session-token-123")
    );
    assert!(
        sent.header("authorization")
            .unwrap()
            .contains("x-amz-security-token")
    );

    // The mock recomputes the signature: a wrong secret is Bedrock's 403
    // InvalidSignatureException, an auth error for OpenAI clients.
    let bad = format!(
        "      aws_access_key_id: {AWS_ACCESS_KEY_ID}\n      aws_secret_access_key: not-the-secret\n"
    );
    let gw = Gateway::start(&config(&mock, &bad));
    let resp = chat(
        &gw,
        json!({"model": "claude-bedrock", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{body}"
    );
}

#[tokio::test]
async fn bedrock_api_keys_go_as_bearer_tokens() {
    let mock = MockServer::start(MockOptions::with_api_key("bedrock-api-key-1"))
        .await
        .unwrap();
    let gw = Gateway::start(&config(&mock, "      api_key: bedrock-api-key-1\n"));
    let resp = chat(
        &gw,
        json!({"model": "claude-bedrock", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.requests()[0].header("authorization"),
        Some("Bearer bedrock-api-key-1")
    );
}

#[tokio::test]
async fn parallel_tool_calls_and_results_round_trip() {
    let (mock, gw) = setup().await;
    let ask = "CALL get_weather {\"city\":\"Oslo\"}\nCALL get_time {}";
    let first: Value = chat(
        &gw,
        json!({"model": "claude-bedrock", "tools": tools(), "tool_choice": "required",
               "messages": [{"role": "user", "content": ask}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        first["choices"][0]["finish_reason"], "tool_calls",
        "{first}"
    );
    let calls = first["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Oslo\"}");
    let sent = &mock.requests()[0].body;
    assert_eq!(sent["toolConfig"]["toolChoice"], json!({"any": {}}));
    assert_eq!(
        sent["toolConfig"]["tools"][0]["toolSpec"]["name"],
        "get_weather"
    );

    let second = chat(
        &gw,
        json!({"model": "claude-bedrock", "tools": tools(), "messages": [
            {"role": "user", "content": ask},
            first["choices"][0]["message"].clone(),
            {"role": "tool", "tool_call_id": calls[1]["id"], "content": "noon"},
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny"}]}),
    )
    .await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
    let answer = second["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        answer.contains("noon") && answer.contains("sunny"),
        "{answer}"
    );
    // Both results in one user turn, answering the assistant's toolUse ids.
    let msgs = &mock.requests()[1].body["messages"];
    assert_eq!(msgs.as_array().unwrap().len(), 3);
    let results: Vec<&str> = msgs[2]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["toolResult"]["toolUseId"].as_str().unwrap())
        .collect();
    assert_eq!(
        results,
        [
            calls[1]["id"].as_str().unwrap(),
            calls[0]["id"].as_str().unwrap()
        ]
    );
}

#[tokio::test]
async fn event_stream_with_parallel_calls_maps_to_openai_chunks() {
    let (mock, gw) = setup().await;
    mock.push_reply(Reply::TextAndToolCalls {
        text: "Let me check.".into(),
        calls: vec![
            ("get_weather".into(), r#"{"city":"Oslo"}"#.into()),
            ("get_weather".into(), r#"{"city":"Rome"}"#.into()),
        ],
    });
    let resp = chat(
        &gw,
        json!({"model": "claude-bedrock", "stream": true, "stream_options": {"include_usage": true},
               "tools": tools(), "messages": [{"role": "user", "content": "weather?"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.requests()[0].path,
        format!("{RAW_PATH}/converse-stream")
    );
    let text = resp.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let mut content = String::new();
    let mut args = vec![String::new(); 2];
    let mut ids = vec![String::new(); 2];
    let mut fragments = 0;
    let mut finish = Vec::new();
    let mut usage = None;
    for data in text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
    {
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        assert!(chunk.get("error").is_none(), "{chunk}");
        if chunk["usage"].is_object() {
            usage = Some(chunk["usage"].clone());
        }
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        content.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().unwrap() as usize;
            if let Some(id) = call["id"].as_str() {
                ids[i] = id.to_owned();
            }
            let piece = call["function"]["arguments"].as_str().unwrap_or("");
            if !piece.is_empty() {
                fragments += 1;
            }
            args[i].push_str(piece);
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            finish.push(f.to_owned());
        }
    }
    assert_eq!(content, "Let me check.");
    assert_eq!(args, [r#"{"city":"Oslo"}"#, r#"{"city":"Rome"}"#]);
    assert!(
        fragments > 2,
        "arguments must stream as they arrive, not buffered"
    );
    assert!(ids[0].starts_with("tooluse_") && ids[0] != ids[1]);
    assert_eq!(finish, ["tool_calls"]);
    let usage = usage.expect("usage chunk");
    assert!(usage["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn throttling_and_mid_stream_exceptions() {
    let (mock, gw) = setup().await;
    mock.push_reply(Reply::Status {
        status: 429,
        retry_after_secs: None,
    });
    let resp = chat(
        &gw,
        json!({"model": "claude-bedrock", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Too many requests")
    );

    // A Bedrock validation error keeps its message and is the client's fault.
    let resp = chat(
        &gw,
        json!({"model": "claude-bedrock", "messages": [{"role": "assistant", "content": "I start"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must start with a user message"),
        "{body}"
    );

    mock.push_reply(Reply::ErrorMidStream {
        text: "one two three four".into(),
        after_chunks: 3,
    });
    let resp = chat(
        &gw,
        json!({"model": "claude-bedrock", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "one two ");
    assert!(events.last().unwrap()["error"].is_object(), "{text}");
}

#[tokio::test]
async fn titan_embeddings_are_signed_and_mapped() {
    let (mock, gw) = setup().await;
    let resp = client()
        .post(format!("{}/v1/embeddings", gw.url))
        .json(&json!({"model": "titan", "input": ["alpha", "beta gamma"], "dimensions": 16}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    let v: Vec<f32> = serde_json::from_value(data[1]["embedding"].clone()).unwrap();
    assert_eq!(v, gatehouse_testkit::embedding_for("beta gamma", 16));
    assert_eq!(body["usage"]["prompt_tokens"], 3);
    let sent = mock.requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].path, "/model/amazon.titan-embed-text-v2%3A0/invoke");
    assert_eq!(
        sent[0].body,
        json!({"inputText": "alpha", "dimensions": 16})
    );
}
