#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! A stream the upstream cuts — the body breaks off, or ends cleanly but without the
//! vendor's final event (Anthropic `message_stop`, Gemini's `finishReason`) — reaches the
//! client as an in-band error in the client's own dialect, never as a normal finish: the
//! real binary in front of the faithful mock, through `/v1/chat/completions`,
//! `/v1/messages` and `/v1/responses`, for an Anthropic and a Gemini deployment.

mod common;

use common::{Gateway, client};
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::{Value, json};

const KEY: &str = "sk-cut-test";
const TEXT: &str = "this answer is cut short before its end";

async fn setup() -> (MockServer, Gateway) {
    let mock = MockServer::start(MockOptions::with_api_key(KEY))
        .await
        .unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: claude
    litellm_params:
      model: anthropic/claude-3-haiku-20240307
      api_base: {base}
      api_key: {KEY}
  - model_name: gem
    litellm_params:
      model: gemini/gemini-2.0-flash
      api_base: {base}
      api_key: {KEY}
"#,
        base = mock.url()
    );
    (mock, Gateway::start(&cfg))
}

/// One SSE event: its `event:` name (if any) and its `data:` JSON (or raw text).
#[derive(Debug)]
struct Event {
    name: Option<String>,
    data: Value,
}

fn events(text: &str) -> Vec<Event> {
    text.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut name = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(n) = line.strip_prefix("event:") {
                    name = Some(n.trim().to_owned());
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim());
                }
            }
            let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
            Event { name, data }
        })
        .collect()
}

async fn stream(gw: &Gateway, path: &str, body: Value) -> String {
    let resp = client()
        .post(format!("{}{path}", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}: the stream had started");
    resp.text().await.unwrap()
}

/// The scripted cuts: a broken-off body, and a clean end without the final event. The
/// cut comes after the first text pieces (Anthropic: `message_start`,
/// `content_block_start`, `ping`, one delta; Gemini: two chunks, no `finishReason`).
fn cuts(model: &str) -> Vec<(&'static str, Reply)> {
    let after_chunks = if model == "claude" { 4 } else { 2 };
    vec![
        (
            "connection dropped",
            Reply::DropMidStream {
                text: TEXT.into(),
                after_chunks,
            },
        ),
        (
            "clean end without the final event",
            Reply::EndMidStream {
                text: TEXT.into(),
                after_chunks,
            },
        ),
    ]
}

/// Sends every scripted cut to every model through `path` (the body from `body(model)`),
/// and hands each answer's events to `check` with a context line for its messages.
async fn each_cut(path: &str, body: impl Fn(&str) -> Value, check: impl Fn(&str, &[Event])) {
    let (mock, gw) = setup().await;
    for model in ["claude", "gem"] {
        for (cut, reply) in cuts(model) {
            mock.push_reply(reply);
            let text = stream(&gw, path, body(model)).await;
            check(&format!("{model}, {cut}: {text}"), &events(&text));
        }
    }
}

#[tokio::test]
async fn chat_completions_get_an_error_chunk_and_no_done() {
    let body = |model: &str| json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "go"}]});
    each_cut("/v1/chat/completions", body, |ctx, evs| {
        let content: String = evs
            .iter()
            .filter_map(|e| e.data["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert!(
            !content.is_empty() && TEXT.starts_with(&content) && content != TEXT,
            "{ctx}"
        );
        let last = evs.last().unwrap();
        assert!(last.data["error"]["message"].is_string(), "{ctx}");
        assert!(evs.iter().all(|e| e.data != "[DONE]"), "{ctx}");
        assert!(
            evs.iter()
                .all(|e| e.data["choices"][0]["finish_reason"].is_null()),
            "a cut stream must not finish: {ctx}"
        );
    })
    .await;
}

#[tokio::test]
async fn messages_get_an_error_event_and_no_message_stop() {
    // claude is passed through byte for byte, gem is translated.
    let body = |model: &str| {
        json!({"model": model, "max_tokens": 64, "stream": true,
               "messages": [{"role": "user", "content": "go"}]})
    };
    each_cut("/v1/messages", body, |ctx, evs| {
        assert_eq!(evs[0].name.as_deref(), Some("message_start"), "{ctx}");
        let last = evs.last().unwrap();
        assert_eq!(last.name.as_deref(), Some("error"), "{ctx}");
        assert_eq!(last.data["type"], "error", "{ctx}");
        assert!(last.data["error"]["message"].is_string(), "{ctx}");
        assert!(
            evs.iter().all(|e| {
                e.name.as_deref() != Some("message_stop")
                    && e.data["delta"]["stop_reason"].is_null()
            }),
            "a cut stream must not stop normally: {ctx}"
        );
    })
    .await;
}

#[tokio::test]
async fn responses_get_response_failed_and_no_completed() {
    let body = |model: &str| json!({"model": model, "input": "go", "stream": true, "store": false});
    each_cut("/v1/responses", body, |ctx, evs| {
        assert!(evs.iter().all(|e| e.data["type"].is_string()), "{ctx}");
        let delta: String = evs
            .iter()
            .filter(|e| e.data["type"] == "response.output_text.delta")
            .filter_map(|e| e.data["delta"].as_str())
            .collect();
        assert!(!delta.is_empty() && TEXT.starts_with(&delta), "{ctx}");
        let last = evs.last().unwrap();
        assert_eq!(last.data["type"], "response.failed", "{ctx}");
        assert_eq!(last.data["response"]["status"], "failed", "{ctx}");
        assert!(
            last.data["response"]["error"]["message"].is_string(),
            "{ctx}"
        );
        assert!(
            evs.iter().all(|e| e.data["type"] != "response.completed"),
            "{ctx}"
        );
    })
    .await;
}
