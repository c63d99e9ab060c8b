//! Shared helpers for the golden tests of the inbound dialects.
//!
//! Fixtures hold the input and the exact expected output. `GOLDEN_BLESS=1 cargo test`
//! rewrites the expected parts from the actual output (review the diff before keeping
//! it); without it, any difference fails.
#![allow(clippy::unwrap_used, clippy::panic, dead_code)] // test helpers

use gatehouse_llm::openai::ChatCompletionChunk;
use gatehouse_llm::sse;
use serde_json::{Value, json};

pub fn fixture_path(dir: &str, name: &str) -> String {
    format!(
        "{}/tests/fixtures/{dir}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

pub fn cases(dir: &str, name: &str) -> Vec<Value> {
    let path = fixture_path(dir, name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn blessing() -> bool {
    std::env::var_os("GOLDEN_BLESS").is_some()
}

pub fn save(dir: &str, name: &str, cases: &[Value]) {
    let text = serde_json::to_string_pretty(cases).unwrap();
    std::fs::write(fixture_path(dir, name), text + "\n").unwrap();
}

/// Compares `actual` with `case[key]`, or records it when blessing.
pub fn check(case: &mut Value, key: &str, actual: Value) {
    if blessing() {
        case[key] = actual;
        return;
    }
    let name = case["name"].as_str().unwrap_or("?").to_owned();
    assert_eq!(
        actual,
        case[key],
        "{name}: {key}\nactual: {}",
        serde_json::to_string_pretty(&actual).unwrap()
    );
}

/// A chat chunk from a fixture's short form (`delta`, `finish_reason`, `usage`, or an
/// explicit `choices`), with a fixed envelope.
pub fn chunk(short: &Value) -> ChatCompletionChunk {
    let choices = match short.get("choices") {
        Some(c) => c.clone(),
        None => json!([{
            "index": 0,
            "delta": short.get("delta").cloned().unwrap_or(json!({})),
            "finish_reason": short.get("finish_reason").cloned().unwrap_or(Value::Null),
        }]),
    };
    let mut full = json!({
        "id": "chatcmpl-stream1", "object": "chat.completion.chunk", "created": 1764043000,
        "model": "provider-model", "choices": choices,
    });
    if let Some(usage) = short.get("usage") {
        full["usage"] = usage.clone();
    }
    serde_json::from_value(full).unwrap()
}

/// Parses SSE bytes back (fed in awkward pieces) and checks what every client relies
/// on: each event has a `data` that is JSON with a `type` equal to the event name.
/// Returns `{event, data}` pairs.
pub fn parse_sse(bytes: &[u8], ctx: &str) -> Vec<Value> {
    assert!(bytes.ends_with(b"\n\n"), "{ctx}: output ends mid-event");
    let mut parser = sse::Parser::new();
    let mut events = Vec::new();
    for piece in bytes.chunks(5) {
        events.extend(parser.push(piece));
    }
    assert!(parser.finish().is_none(), "{ctx}: trailing partial event");
    events
        .into_iter()
        .map(|ev| {
            let data: Value = serde_json::from_str(&ev.data)
                .unwrap_or_else(|e| panic!("{ctx}: data is not JSON ({e}): {}", ev.data));
            let name = ev
                .event
                .unwrap_or_else(|| panic!("{ctx}: event without a name"));
            assert_eq!(data["type"], name.as_str(), "{ctx}: type != event name");
            json!({"event": name, "data": data})
        })
        .collect()
}
