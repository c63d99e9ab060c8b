#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may unwrap/panic (project rule); this covers the helpers too
mod common;

use common::*;
use gatehouse_testkit::{MockOptions, MockServer};
use serde_json::{Value, json};

#[tokio::test]
async fn non_stream_echo_has_message_shape() {
    let s = server().await;
    let resp = anthropic_messages(
        &s,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "be nice",
               "messages": [{"role": "user", "content": "hi there"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let v: Value = resp.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(
        v["content"],
        json!([{"type": "text", "text": "Echo: hi there"}])
    );
    assert_eq!(v["stop_reason"], "end_turn");
    assert!(v["stop_sequence"].is_null());
    // 2 system + 2 text + 3 per message.
    assert_eq!(v["usage"]["input_tokens"], 7);
    assert_eq!(v["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn stream_event_sequence() {
    let s = server().await;
    let resp = anthropic_messages(
        &s,
        json!({"model": "claude-x", "max_tokens": 100, "stream": true,
               "messages": [{"role": "user", "content": [{"type": "text", "text": "a b c"}]}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events = parse_sse(&resp.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|e| e.name.as_deref().unwrap()).collect();
    assert_eq!(
        &names[..3],
        &["message_start", "content_block_start", "ping"]
    );
    assert_eq!(
        &names[names.len() - 3..],
        &["content_block_stop", "message_delta", "message_stop"]
    );
    for e in &events {
        assert_eq!(
            e.json()["type"],
            e.name.as_deref().unwrap(),
            "event name matches data.type"
        );
    }
    let start = events[0].json();
    assert_eq!(start["message"]["content"], json!([]));
    assert!(start["message"]["stop_reason"].is_null());
    assert_eq!(start["message"]["usage"]["input_tokens"], 6);
    let text: String = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("content_block_delta"))
        .map(|e| {
            let d = e.json();
            assert_eq!(d["index"], 0);
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(text, "Echo: a b c");
    let delta = events[events.len() - 2].json();
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn directive_yields_tool_use_blocks() {
    let s = server().await;
    let body = json!({"model": "claude-x", "max_tokens": 100, "tools": [weather_tool_anthropic()],
        "messages": [{"role": "user", "content": "CALL get_weather {\"city\":\"Paris\"}\nCALL get_weather {\"city\":\"Oslo\"}"}]});
    let v: Value = anthropic_messages(&s, body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    let content = v["content"].as_array().unwrap();
    assert_eq!(content.len(), 2);
    assert_eq!(content[0]["type"], "tool_use");
    assert_eq!(content[0]["name"], "get_weather");
    assert_eq!(content[0]["input"], json!({"city": "Paris"}));
    assert_eq!(content[1]["input"], json!({"city": "Oslo"}));
    assert!(content[0]["id"].as_str().unwrap().starts_with("toolu_"));

    // Streamed: one tool_use block per call, input rebuilt from input_json_delta.
    let mut body = body;
    body["stream"] = json!(true);
    let events = parse_sse(&anthropic_messages(&s, body).await.text().await.unwrap());
    let mut inputs = vec![String::new(); 2];
    let mut starts = 0;
    for e in &events {
        let d = e.json();
        match e.name.as_deref().unwrap() {
            "content_block_start" => {
                assert_eq!(d["content_block"]["type"], "tool_use");
                assert_eq!(d["content_block"]["input"], json!({}));
                starts += 1;
            }
            "content_block_delta" => {
                assert_eq!(d["delta"]["type"], "input_json_delta");
                inputs[d["index"].as_u64().unwrap() as usize]
                    .push_str(d["delta"]["partial_json"].as_str().unwrap());
            }
            "message_delta" => assert_eq!(d["delta"]["stop_reason"], "tool_use"),
            _ => {}
        }
    }
    assert_eq!(starts, 2);
    assert_eq!(
        serde_json::from_str::<Value>(&inputs[0]).unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(&inputs[1]).unwrap(),
        json!({"city": "Oslo"})
    );
}

#[tokio::test]
async fn tool_result_is_answered() {
    let s = server().await;
    let body = json!({"model": "claude-x", "max_tokens": 100, "tools": [weather_tool_anthropic()], "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
            "content": [{"type": "text", "text": "rainy"}]}]}
    ]});
    let v: Value = anthropic_messages(&s, body).await.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "Tool said: rainy");
}

#[tokio::test]
async fn consecutive_same_role_messages_are_merged_not_rejected() {
    let s = server().await;
    let body = json!({"model": "claude-x", "max_tokens": 100, "messages": [
        {"role": "user", "content": "first"},
        {"role": "user", "content": "second"}
    ]});
    let resp = anthropic_messages(&s, body).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "Echo: second");
}

async fn expect_error(s: &MockServer, body: Value) -> String {
    let resp = anthropic_messages(s, body).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["request_id"].as_str().unwrap().starts_with("req_"));
    v["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn validation_errors_match_anthropic() {
    let s = server().await;
    let m = expect_error(
        &s,
        json!({"model": "c", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(m, "max_tokens: Field required");

    let m = expect_error(
        &s,
        json!({"model": "c", "max_tokens": 5, "messages": [
            {"role": "system", "content": "sys"}, {"role": "user", "content": "x"}
        ]}),
    )
    .await;
    assert_eq!(m, "messages.0.role: Input should be 'user' or 'assistant'");

    let m = expect_error(
        &s,
        json!({"model": "c", "max_tokens": 5, "messages": [{"role": "assistant", "content": "x"}]}),
    )
    .await;
    assert!(
        m.contains("first message must use the \"user\" role"),
        "{m}"
    );

    let m = expect_error(
        &s,
        json!({"model": "c", "max_tokens": 5, "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "r"}]}
        ]}),
    )
    .await;
    assert!(
        m.starts_with("messages.2.content.0: unexpected `tool_use_id`"),
        "{m}"
    );
    assert!(m.contains("toolu_9"));

    let m = expect_error(
        &s,
        json!({"model": "c", "max_tokens": 5, "messages": [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}]}
        ]}),
    )
    .await;
    assert!(m.contains("unexpected `tool_use_id`"), "{m}");

    let m = expect_error(
        &s,
        json!({"model": "c", "max_tokens": 5, "tools": [{"name": "has space", "input_schema": {"type": "object"}}],
               "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert!(
        m.starts_with("tools.0.custom.name: String should match pattern"),
        "{m}"
    );

    let resp = client()
        .post(format!("{}/v1/messages", s.url()))
        .json(
            &json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "anthropic-version: header is required"
    );
}

#[tokio::test]
async fn wrong_api_key_is_authentication_error() {
    let s = MockServer::start(MockOptions::with_api_key("sk-ant-right"))
        .await
        .unwrap();
    let resp = anthropic_messages(
        &s,
        json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");
    assert_eq!(v["error"]["message"], "invalid x-api-key");

    let resp = client()
        .post(format!("{}/v1/messages", s.url()))
        .header("x-api-key", "sk-ant-right")
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": "c", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn count_tokens_matches_message_usage() {
    let s = server().await;
    let msgs = json!([{"role": "user", "content": "one two three four"}]);
    let v: Value = client()
        .post(format!("{}/v1/messages/count_tokens", s.url()))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "c", "messages": msgs}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m: Value = anthropic_messages(&s, json!({"model": "c", "max_tokens": 5, "messages": msgs}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"input_tokens": 7}));
    assert_eq!(m["usage"]["input_tokens"], 7);
}
