#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may unwrap/panic (project rule); this covers the helpers too
mod common;

use common::*;
use gatehouse_testkit::MockServer;
use serde_json::{Value, json};

async fn responses(s: &MockServer, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/responses", s.url()))
        .bearer_auth("sk")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn tool() -> Value {
    json!({"type": "function", "name": "get_weather", "parameters": {"type": "object"}})
}

#[tokio::test]
async fn non_stream_text_response() {
    let s = server().await;
    let v: Value = responses(
        &s,
        json!({"model": "gpt-4o", "instructions": "be brief", "input": "hello you"}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["object"], "response");
    assert!(v["id"].as_str().unwrap().starts_with("resp_"));
    assert_eq!(v["status"], "completed");
    assert_eq!(v["instructions"], "be brief");
    let out = &v["output"][0];
    assert_eq!(out["type"], "message");
    assert_eq!(out["role"], "assistant");
    assert_eq!(out["content"][0]["type"], "output_text");
    assert_eq!(out["content"][0]["text"], "Echo: hello you");
    // 3 + 2 instructions + 3 + 2 message.
    assert_eq!(v["usage"]["input_tokens"], 10);
    assert_eq!(v["usage"]["output_tokens"], 3);
    assert_eq!(v["usage"]["total_tokens"], 13);
}

#[tokio::test]
async fn directive_gives_function_calls_and_outputs_are_answered() {
    let s = server().await;
    let v: Value = responses(
        &s,
        json!({"model": "gpt-4o", "tools": [tool()], "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "CALL get_weather {\"city\":\"Oslo\"}"}]}
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    let call = &v["output"][0];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["name"], "get_weather");
    assert_eq!(call["arguments"], "{\"city\":\"Oslo\"}");
    let call_id = call["call_id"].as_str().unwrap().to_owned();

    let v: Value = responses(
        &s,
        json!({"model": "gpt-4o", "tools": [tool()], "input": [
            {"role": "user", "content": "weather"},
            {"type": "function_call", "call_id": call_id, "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": call_id, "output": "snow"}
        ]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["output"][0]["content"][0]["text"], "Tool said: snow");
}

#[tokio::test]
async fn stream_events_have_sequence_numbers_and_complete() {
    let s = server().await;
    let resp = responses(
        &s,
        json!({"model": "gpt-4o", "stream": true, "tools": [tool()],
               "input": "CALL get_weather {\"city\":\"Lima\"}"}),
    )
    .await;
    let events = parse_sse(&resp.text().await.unwrap());
    for (i, e) in events.iter().enumerate() {
        let d = e.json();
        assert_eq!(d["sequence_number"], i as u64);
        assert_eq!(d["type"], e.name.as_deref().unwrap());
    }
    assert_eq!(events[0].name.as_deref(), Some("response.created"));
    assert_eq!(events[0].json()["response"]["status"], "in_progress");
    let last = events.last().unwrap().json();
    assert_eq!(last["type"], "response.completed");
    assert_eq!(
        last["response"]["output"][0]["arguments"],
        "{\"city\":\"Lima\"}"
    );
    let args: String = events
        .iter()
        .filter(|e| e.name.as_deref() == Some("response.function_call_arguments.delta"))
        .map(|e| e.json()["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(args, "{\"city\":\"Lima\"}");
}

#[tokio::test]
async fn validation() {
    let s = server().await;
    let resp = responses(&s, json!({"input": "x"})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "model");

    let resp = responses(
        &s,
        json!({"model": "gpt-4o", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "r"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "No tool call found for function call output with call_id call_x."
    );

    let mut t = tool();
    t["name"] = json!("bad.name");
    let resp = responses(&s, json!({"model": "gpt-4o", "tools": [t], "input": "x"})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "tools[0].name");
}
