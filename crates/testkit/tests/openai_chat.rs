#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may unwrap/panic (project rule); this covers the helpers too
mod common;

use common::*;
use gatehouse_testkit::{MockOptions, MockServer};
use serde_json::{Value, json};

#[tokio::test]
async fn non_stream_echo_has_openai_shape() {
    let s = server().await;
    let resp = openai_chat(
        &s,
        json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there world"}
        ]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(v["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(v["model"], "gpt-4o-mini");
    let choice = &v["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Echo: hello there world");
    assert!(choice["message"].get("tool_calls").is_none());
    let u = &v["usage"];
    // 3 priming + (3 + 2) system + (3 + 3) user.
    assert_eq!(u["prompt_tokens"], 14);
    assert_eq!(u["completion_tokens"], 4);
    assert_eq!(u["total_tokens"], 18);
}

#[tokio::test]
async fn content_parts_are_read_as_text() {
    let s = server().await;
    let v: Value = openai_chat(
        &s,
        json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "part one "}, {"type": "text", "text": "part two"}
        ]}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Echo: part one part two"
    );
}

#[tokio::test]
async fn stream_chunks_reassemble_and_end_with_done() {
    let s = server().await;
    let resp = openai_chat(
        &s,
        json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "one two three"}]}),
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
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1].iter().map(Event::json).collect();
    let id = chunks[0]["id"].clone();
    let mut text = String::new();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], id);
        assert!(c.get("usage").is_none(), "usage only with include_usage");
        if let Some(t) = c["choices"][0]["delta"]["content"].as_str() {
            text.push_str(t);
        }
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(text, "Echo: one two three");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
    // Only the last chunk carries a finish reason.
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
}

#[tokio::test]
async fn include_usage_adds_usage_chunk_before_done() {
    let s = server().await;
    let resp = openai_chat(
        &s,
        json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "count me"}]}),
    )
    .await;
    let events = parse_sse(&resp.text().await.unwrap());
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let usage_chunk = events[events.len() - 2].json();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 8);
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 3);
    assert_eq!(usage_chunk["usage"]["total_tokens"], 11);
    for e in &events[..events.len() - 2] {
        let c = e.json();
        assert!(
            c["usage"].is_null() && c.get("usage").is_some(),
            "other chunks carry usage: null"
        );
    }
}

#[tokio::test]
async fn call_directive_yields_parallel_tool_calls() {
    let s = server().await;
    let body = json!({"model": "gpt-4o", "tools": [weather_tool_openai()], "messages": [
        {"role": "user", "content": "CALL get_weather {\"city\":\"Paris\"}\nCALL get_weather {\"city\":\"Oslo\"}"}
    ]});
    let v: Value = openai_chat(&s, body).await.json().await.unwrap();
    let choice = &v["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(calls[0]["function"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(calls[1]["function"]["arguments"], "{\"city\":\"Oslo\"}");
    assert_ne!(calls[0]["id"], calls[1]["id"]);
    assert!(calls[0]["id"].as_str().unwrap().starts_with("call_"));
}

#[tokio::test]
async fn directive_for_unoffered_tool_echoes() {
    let s = server().await;
    let v: Value = openai_chat(
        &s,
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "CALL get_weather {}"}]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Echo: CALL get_weather {}"
    );
}

#[tokio::test]
async fn streamed_tool_calls_use_indexed_deltas() {
    let s = server().await;
    let body = json!({"model": "gpt-4o", "stream": true, "tools": [weather_tool_openai()], "messages": [
        {"role": "user", "content": "CALL get_weather {\"city\":\"San Francisco, CA\"}\nCALL get_weather {\"city\":\"Rome\"}"}
    ]});
    let events = parse_sse(&openai_chat(&s, body).await.text().await.unwrap());
    let mut args = [String::new(), String::new()];
    let mut ids = [None, None];
    let mut finish = None;
    for e in &events[..events.len() - 1] {
        let c = e.json();
        let choice = &c["choices"][0];
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = Some(f.to_owned());
        }
        for tc in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = tc["index"].as_u64().unwrap() as usize;
            if let Some(id) = tc["id"].as_str() {
                assert!(ids[i].is_none(), "id sent once per call");
                assert_eq!(tc["function"]["name"], "get_weather");
                ids[i] = Some(id.to_owned());
            }
            args[i].push_str(tc["function"]["arguments"].as_str().unwrap());
        }
    }
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert!(ids.iter().all(Option::is_some));
    assert_eq!(args[0], "{\"city\":\"San Francisco, CA\"}");
    assert_eq!(args[1], "{\"city\":\"Rome\"}");
}

#[tokio::test]
async fn tool_result_is_answered() {
    let s = server().await;
    let body = json!({"model": "gpt-4o", "tools": [weather_tool_openai()], "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"}
    ]});
    let v: Value = openai_chat(&s, body).await.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Tool said: sunny, 21C"
    );
}

async fn expect_error(s: &MockServer, body: Value, status: u16) -> Value {
    let resp = openai_chat(s, body).await;
    assert_eq!(resp.status(), status);
    let v: Value = resp.json().await.unwrap();
    let e = v["error"].as_object().unwrap();
    for k in ["message", "type", "param", "code"] {
        assert!(e.contains_key(k), "error.{k} missing in {v}");
    }
    v["error"].clone()
}

#[tokio::test]
async fn validation_errors_match_openai() {
    let s = server().await;
    let e = expect_error(
        &s,
        json!({"messages": [{"role": "user", "content": "x"}]}),
        400,
    )
    .await;
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(e["message"], "you must provide a model parameter");

    let e = expect_error(&s, json!({"model": "m"}), 400).await;
    assert_eq!(e["param"], "messages");
    assert_eq!(e["code"], "missing_required_parameter");

    let e = expect_error(&s, json!({"model": "m", "messages": []}), 400).await;
    assert_eq!(e["code"], "empty_array");

    let e = expect_error(
        &s,
        json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}),
        400,
    )
    .await;
    assert_eq!(e["param"], "messages[0].role");
    assert_eq!(e["code"], "invalid_value");

    let mut tool = weather_tool_openai();
    tool["function"]["name"] = json!("bad name!");
    let e = expect_error(
        &s,
        json!({"model": "m", "tools": [tool], "messages": [{"role": "user", "content": "x"}]}),
        400,
    )
    .await;
    assert_eq!(e["param"], "tools[0].function.name");

    let mut tool = weather_tool_openai();
    tool["function"]["name"] = json!("a".repeat(65));
    let e = expect_error(
        &s,
        json!({"model": "m", "tools": [tool], "messages": [{"role": "user", "content": "x"}]}),
        400,
    )
    .await;
    assert_eq!(e["code"], "string_above_max_length");

    let e = expect_error(
        &s,
        json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "call_1", "content": "r"}
        ]}),
        400,
    )
    .await;
    assert_eq!(e["param"], "messages.[1].role");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("preceeding message with 'tool_calls'")
    );

    let e = expect_error(
        &s,
        json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_2", "content": "r"}
        ]}),
        400,
    )
    .await;
    assert_eq!(e["param"], "messages.[2].tool_call_id");

    let e = expect_error(
        &s,
        json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "user", "content": "y"}
        ]}),
        400,
    )
    .await;
    assert!(e["message"].as_str().unwrap().contains("call_1"));

    let e = expect_error(
        &s,
        json!({"model": "m", "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "x"}]}),
        400,
    )
    .await;
    assert_eq!(e["param"], "stream_options");

    let resp = client()
        .post(format!("{}/v1/chat/completions", s.url()))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn auth_and_model_allow_list() {
    let s = MockServer::start(MockOptions {
        api_key: Some("sk-right-key-123".into()),
        models: Some(vec!["gpt-4o".into()]),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let url = format!("{}/v1/chat/completions", s.url());
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]});

    let resp = client()
        .post(&url)
        .bearer_auth("sk-wrong-key-456")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert!(
        !v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sk-wrong-key-456"),
        "key is redacted"
    );

    let resp = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);

    let resp = client()
        .post(&url)
        .bearer_auth("sk-right-key-123")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let resp = client()
        .post(&url)
        .bearer_auth("sk-right-key-123")
        .json(&json!({"model": "gpt-5-nope", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");

    let v: Value = client()
        .get(format!("{}/v1/models", s.url()))
        .bearer_auth("sk-right-key-123")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], "gpt-4o");
    assert_eq!(v["data"][0]["object"], "model");
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn requests_are_recorded() {
    let s = server().await;
    openai_chat(
        &s,
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "custom_field": 7}),
    )
    .await;
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert_eq!(reqs[0].header("Authorization"), Some("Bearer sk-test"));
    assert_eq!(reqs[0].body["custom_field"], 7);
    assert_eq!(s.requests_to("/v1/chat/completions").len(), 1);
    assert!(s.requests_to("/v1/messages").is_empty());
    assert_eq!(s.last_request().unwrap(), reqs[0]);
    s.clear_requests();
    assert!(s.requests().is_empty());
}
