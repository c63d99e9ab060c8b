//! The one golden-fixture harness of every `*_golden.rs` (every vendor, every mapping).
//!
//! A fixture `tests/fixtures/<api>/<name>.json` is a list of cases, each with its input
//! and the exact expected output. [`each_case`] runs a test over them; inside, [`check`]
//! compares an actual value with the case's expected part. `GOLDEN_BLESS=1 cargo test`
//! rewrites the expected parts from the actual output instead (review the diff before
//! keeping it); without it, any difference fails, and so does a missing expected part.
#![allow(clippy::unwrap_used, clippy::panic, dead_code)] // test helpers

use gatehouse_llm::openai::{ChatCompletion, ChatCompletionChunk, ChunkAccumulator};
use gatehouse_llm::{ChunkMapper, ChunkWriter, ErrorKind, MapError, sse};
use serde_json::{Value, json};

fn fixture_path(dir: &str, name: &str) -> String {
    format!(
        "{}/tests/fixtures/{dir}/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn blessing() -> bool {
    std::env::var_os("GOLDEN_BLESS").is_some()
}

/// Runs `test` over every case of `tests/fixtures/<dir>/<name>.json`, then writes the
/// file back when blessing.
pub fn each_case(dir: &str, name: &str, mut test: impl FnMut(&mut Value)) {
    let path = fixture_path(dir, name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut all: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(!all.is_empty(), "{path}: no cases");
    for case in &mut all {
        test(case);
    }
    if blessing() {
        let text = serde_json::to_string_pretty(&all).unwrap();
        std::fs::write(&path, text + "\n").unwrap();
    }
}

/// The case's name, for failure messages.
pub fn name(case: &Value) -> String {
    case["name"].as_str().unwrap_or("?").to_owned()
}

/// Compares `actual` with `case[key]`, or records it when blessing.
pub fn check(case: &mut Value, key: &str, actual: Value) {
    if blessing() {
        case[key] = actual;
        return;
    }
    let name = name(case);
    assert!(
        case.get(key).is_some(),
        "{name}: the fixture has no `{key}` (run with GOLDEN_BLESS=1 and review)"
    );
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

/// A mapped chunk without the fields every chunk of a stream shares, after checking
/// them against `envelope` (e.g. `{"object": "chat.completion.chunk", "model": "m"}`).
pub fn without_envelope(chunk: &ChatCompletionChunk, envelope: &Value, ctx: &str) -> Value {
    let mut value = serde_json::to_value(chunk).unwrap();
    let fields = value.as_object_mut().unwrap();
    for (key, expected) in envelope.as_object().unwrap() {
        assert_eq!(fields.remove(key).as_ref(), Some(expected), "{ctx}: {key}");
    }
    value
}

/// SSE bytes parsed in `piece`-byte reads (as a socket delivers them), as
/// `(event name, data)` pairs.
pub fn sse_events(wire: &[u8], piece: usize) -> Vec<(Option<String>, String)> {
    let mut parser = sse::Parser::new();
    let mut events = Vec::new();
    for bytes in wire.chunks(piece) {
        events.extend(parser.push(bytes));
    }
    events.extend(parser.finish());
    events.into_iter().map(|e| (e.event, e.data)).collect()
}

/// A mapping error as fixtures record it: a vendor's own error with its classification
/// and the OpenAI body the client gets, anything else as its message.
pub fn error_value(err: &MapError) -> Value {
    match err {
        MapError::Upstream(e) => json!({"upstream": e, "openai": e.to_openai()}),
        other => json!(other.to_string()),
    }
}

/// What the server makes of one upstream stream: every event through `mapper` until an
/// error ends it, then — only when the vendor's final event arrived — the mapper's
/// closing chunks. A stream that ends incomplete was cut: the server reports an error
/// instead of a finish, so no closing chunks are made up here either.
pub fn drive(
    mapper: &mut dyn ChunkMapper,
    events: &[(Option<String>, String)],
    envelope: &Value,
    ctx: &str,
) -> Value {
    let mut out = Vec::new();
    let mut error = Value::Null;
    for (event, data) in events {
        match mapper.on_event(event.as_deref(), data) {
            Ok(chunks) => out.extend(chunks),
            Err(e) => {
                error = error_value(&e);
                break;
            }
        }
    }
    let complete = mapper.is_complete();
    if error.is_null() && complete {
        out.extend(mapper.finish());
    }
    let chunks: Vec<Value> = out
        .iter()
        .map(|c| without_envelope(c, envelope, ctx))
        .collect();
    json!({"chunks": chunks, "complete": complete, "error": error})
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

/// Usage as fixtures record it.
pub fn usage_value(usage: Option<gatehouse_llm::usage::Usage>) -> Value {
    match usage {
        Some(u) => json!({"prompt": u.prompt, "completion": u.completion,
                          "cached_read": u.cached_read, "cache_write": u.cache_write}),
        None => Value::Null,
    }
}

/// What a client dialect's stream writer makes of a case's `chunks` (short forms) and its
/// `end` (`"finish"`, or `{"fail": {"kind", "message"}}`): its SSE bytes, checked as
/// every client reads them, and — for a finished stream — the completion the chunks add
/// up to (to compare with the non-stream rendering of the same answer).
pub fn write(writer: &mut dyn ChunkWriter, case: &Value) -> (Vec<Value>, Option<ChatCompletion>) {
    let name = name(case);
    let mut bytes = Vec::new();
    let mut acc = ChunkAccumulator::new();
    for short in case["chunks"].as_array().unwrap() {
        let chunk = chunk(short);
        acc.push(&chunk);
        bytes.extend(writer.push(&chunk));
    }
    let finished = match &case["end"] {
        Value::String(s) if s == "finish" => {
            bytes.extend(writer.finish());
            true
        }
        Value::Object(o) => {
            let fail = &o["fail"];
            let kind: ErrorKind = serde_json::from_value(fail["kind"].clone()).unwrap();
            bytes.extend(writer.fail(kind, fail["message"].as_str().unwrap()));
            false
        }
        other => panic!("{name}: bad end {other}"),
    };
    assert!(
        writer.finish().is_empty(),
        "{name}: ended streams stay ended"
    );
    assert!(writer.fail(ErrorKind::Upstream, "x").is_empty(), "{name}");
    let events = parse_sse(&bytes, &name);
    (events, finished.then(|| acc.finish()))
}
