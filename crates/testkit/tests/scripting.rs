#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may unwrap/panic (project rule); this covers the helpers too
mod common;

use std::time::{Duration, Instant};

use common::*;
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::{Value, json};

fn oa_body(stream: bool) -> Value {
    json!({"model": "gpt-4o", "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

fn an_body(stream: bool) -> Value {
    json!({"model": "claude-x", "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn replies_are_consumed_in_order_across_apis_then_default() {
    let s = server().await;
    s.push_reply(Reply::text("first"));
    s.push_reply(Reply::text("second"));
    assert_eq!(s.pending_replies(), 2);
    let v: Value = openai_chat(&s, oa_body(false)).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "first");
    let v: Value = anthropic_messages(&s, an_body(false))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["content"][0]["text"], "second");
    let v: Value = openai_chat(&s, oa_body(false)).await.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Echo: hi");
    assert_eq!(s.pending_replies(), 0);
}

#[tokio::test]
async fn invalid_requests_do_not_consume_the_script() {
    let s = server().await;
    s.push_reply(Reply::text("kept"));
    let resp = openai_chat(&s, json!({"model": "gpt-4o", "messages": []})).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(s.pending_replies(), 1);
}

#[tokio::test]
async fn scripted_tool_calls_render_in_both_apis() {
    let s = server().await;
    let calls = vec![
        ("lookup".to_owned(), "{\"q\":\"a\"}".to_owned()),
        ("fetch".to_owned(), "{}".to_owned()),
    ];
    s.push_reply(Reply::ToolCalls(calls.clone()));
    s.push_reply(Reply::TextAndToolCalls {
        text: "Let me check.".into(),
        calls,
    });
    let v: Value = openai_chat(&s, oa_body(false)).await.json().await.unwrap();
    let tc = &v["choices"][0]["message"]["tool_calls"];
    assert_eq!(tc[0]["function"]["name"], "lookup");
    assert_eq!(tc[1]["function"]["name"], "fetch");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

    let v: Value = anthropic_messages(&s, an_body(false))
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["text", "tool_use", "tool_use"]);
    assert_eq!(v["content"][0]["text"], "Let me check.");
    assert_eq!(v["content"][1]["input"], json!({"q": "a"}));
    assert_eq!(v["stop_reason"], "tool_use");
}

#[tokio::test]
async fn thinking_streams_thinking_and_signature_deltas() {
    let s = server().await;
    s.push_reply(Reply::Thinking {
        thinking: "let me think".into(),
        signature: "sig123".into(),
        text: "42".into(),
    });
    let events = parse_sse(
        &anthropic_messages(&s, an_body(true))
            .await
            .text()
            .await
            .unwrap(),
    );
    let mut thinking = String::new();
    let mut signature = None;
    let mut text = String::new();
    for e in &events {
        let d = e.json();
        if e.name.as_deref() == Some("content_block_delta") {
            match d["delta"]["type"].as_str().unwrap() {
                "thinking_delta" => {
                    assert_eq!(d["index"], 0);
                    thinking.push_str(d["delta"]["thinking"].as_str().unwrap());
                }
                "signature_delta" => {
                    signature = d["delta"]["signature"].as_str().map(str::to_owned)
                }
                "text_delta" => {
                    assert_eq!(d["index"], 1);
                    text.push_str(d["delta"]["text"].as_str().unwrap());
                }
                other => panic!("unexpected delta {other}"),
            }
        }
    }
    assert_eq!(thinking, "let me think");
    assert_eq!(signature.as_deref(), Some("sig123"));
    assert_eq!(text, "42");
}

#[tokio::test]
async fn raw_error_is_sent_verbatim() {
    let s = server().await;
    let body = json!({"error": {"message": "custom", "type": "invalid_request_error", "param": null, "code": "x"}});
    s.push_reply(Reply::Error {
        status: 418,
        body_json: body.clone(),
    });
    let resp = openai_chat(&s, oa_body(true)).await;
    assert_eq!(resp.status(), 418);
    assert_eq!(resp.json::<Value>().await.unwrap(), body);
}

#[tokio::test]
async fn status_errors_are_vendor_shaped_with_retry_after() {
    let s = server().await;
    s.push_reply(Reply::rate_limited(7));
    s.push_reply(Reply::rate_limited(3));
    s.push_reply(Reply::overloaded());
    let resp = openai_chat(&s, oa_body(false)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");

    let resp = anthropic_messages(&s, an_body(false)).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "rate_limit_error");

    let resp = anthropic_messages(&s, an_body(true)).await;
    assert_eq!(resp.status(), 529);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        v,
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": v["request_id"]})
    );
}

#[tokio::test]
async fn delayed_reply_waits() {
    let s = server().await;
    s.push_reply(Reply::text("late").delayed(Duration::from_millis(150)));
    let t = Instant::now();
    let v: Value = openai_chat(&s, oa_body(false)).await.json().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(v["choices"][0]["message"]["content"], "late");
}

#[tokio::test]
async fn drop_mid_stream_cuts_the_connection() {
    let s = server().await;
    s.push_reply(Reply::DropMidStream {
        text: "a b c d e f".into(),
        after_chunks: 3,
    });
    let resp = openai_chat(&s, oa_body(true)).await;
    assert_eq!(resp.status(), 200);
    let mut resp = resp;
    let mut got = Vec::new();
    let err = loop {
        match resp.chunk().await {
            Ok(Some(b)) => got.extend_from_slice(&b),
            Ok(None) => panic!("stream ended cleanly; expected an abrupt close"),
            Err(e) => break e,
        }
    };
    assert!(
        err.is_body() || err.is_decode() || err.is_request(),
        "{err:?}"
    );
    let text = String::from_utf8(got).unwrap();
    assert_eq!(text.matches("data: ").count(), 3);
    assert!(!text.contains("[DONE]"));

    // Non-streaming: a truncated body, then the close.
    s.push_reply(Reply::DropMidStream {
        text: "x".into(),
        after_chunks: 0,
    });
    let resp = anthropic_messages(&s, an_body(false)).await;
    assert!(resp.bytes().await.is_err());
}

#[tokio::test]
async fn end_mid_stream_ends_the_body_cleanly_without_the_final_event() {
    let s = server().await;
    s.push_reply(Reply::EndMidStream {
        text: "a b c d e f".into(),
        after_chunks: 3,
    });
    s.push_reply(Reply::EndMidStream {
        text: "a b c d e f".into(),
        after_chunks: 3,
    });
    // The transport reports nothing: the body ends as a whole one would.
    let text = openai_chat(&s, oa_body(true)).await.text().await.unwrap();
    assert_eq!(text.matches("data: ").count(), 3);
    assert!(!text.contains("[DONE]"));
    let events = parse_sse(
        &anthropic_messages(&s, an_body(true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(events.len(), 3);
    assert!(
        events
            .iter()
            .all(|e| e.name.as_deref() != Some("message_stop"))
    );
}

#[tokio::test]
async fn error_mid_stream_is_in_band() {
    let s = server().await;
    s.push_reply(Reply::ErrorMidStream {
        text: "a b c".into(),
        after_chunks: 2,
    });
    s.push_reply(Reply::ErrorMidStream {
        text: "a b c".into(),
        after_chunks: 2,
    });
    let events = parse_sse(
        &anthropic_messages(&s, an_body(true))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(events.len(), 3);
    let last = events.last().unwrap();
    assert_eq!(last.name.as_deref(), Some("error"));
    assert_eq!(last.json()["error"]["type"], "overloaded_error");

    let events = parse_sse(&openai_chat(&s, oa_body(true)).await.text().await.unwrap());
    assert_eq!(events.len(), 3);
    assert_eq!(events[2].json()["error"]["type"], "server_error");
}

#[tokio::test]
async fn fail_every_n_fails_periodically() {
    let s = MockServer::start(MockOptions {
        fail_every_n: Some(3),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(openai_chat(&s, oa_body(false)).await.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 429, 200, 200, 429]);
}

#[tokio::test]
async fn latency_and_chunk_delay_apply() {
    let s = MockServer::start(MockOptions {
        latency: Duration::from_millis(100),
        chunk_delay: Duration::from_millis(20),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let t = Instant::now();
    let resp = openai_chat(&s, oa_body(true)).await;
    assert!(
        t.elapsed() >= Duration::from_millis(100),
        "latency before headers"
    );
    let events = parse_sse(&resp.text().await.unwrap());
    // Each gap between frames waits chunk_delay.
    let min = Duration::from_millis(100 + 20 * (events.len() as u64 - 1));
    assert!(t.elapsed() >= min, "{:?} < {min:?}", t.elapsed());
}
