//! Golden tests for the Gemini mappers: each fixture in `tests/fixtures/gemini/*.json` is
//! a list of cases with the input and the exact expected output (`GOLDEN_BLESS=1`
//! rewrites the expected parts; review the diff).
#![allow(clippy::unwrap_used, clippy::panic)]

mod golden_util;

use gatehouse_llm::gemini::{self, StreamMapper};
use gatehouse_llm::openai::ChatRequest;
use gatehouse_llm::sse;
use golden_util::{blessing, cases, check, save};
use serde_json::{Value, json};

const DIR: &str = "gemini";

#[test]
fn request_fixtures() {
    let mut all = cases(DIR, "request");
    for case in &mut all {
        let req: ChatRequest = serde_json::from_value(case["openai_request"].clone()).unwrap();
        let actual = match gemini::chat_to_gemini(&req) {
            Ok(mapped) => json!({
                "body": mapped.body,
                "stream": mapped.stream,
                "include_usage": mapped.include_usage,
                "dropped": mapped.dropped,
            }),
            Err(e) => json!({"error": e.to_string(), "client_error": e.is_client_error()}),
        };
        check(case, "expected", actual);
    }
    if blessing() {
        save(DIR, "request", &all);
    }
}

#[test]
fn response_fixtures() {
    let mut all = cases(DIR, "response");
    for case in &mut all {
        let body = serde_json::to_vec(&case["gemini_response"]).unwrap();
        let actual = match gemini::gemini_to_chat(&body, "gem", 1764043000) {
            Ok(chat) => serde_json::to_value(chat).unwrap(),
            Err(e) => json!({"error": e.to_string()}),
        };
        check(case, "expected", actual);
    }
    if blessing() {
        save(DIR, "response", &all);
    }
}

/// Feeds the events as Gemini's `alt=sse` bytes (CRLF, split in 7-byte pieces) through
/// the SSE parser and the mapper, as the server does.
#[test]
fn stream_fixtures() {
    let mut all = cases(DIR, "stream");
    for case in &mut all {
        let mut wire = Vec::new();
        for ev in case["events"].as_array().unwrap() {
            wire.extend_from_slice(b"data: ");
            wire.extend_from_slice(serde_json::to_string(ev).unwrap().as_bytes());
            wire.extend_from_slice(b"\r\n\r\n");
        }
        let mut parser = sse::Parser::new();
        let mut mapper = StreamMapper::new("gem", 1764043000, case["include_usage"] == true);
        let mut out = Vec::new();
        let mut error = Value::Null;
        'feed: for piece in wire.chunks(7) {
            for ev in parser.push(piece) {
                match mapper.on_event(&ev.data) {
                    Ok(chunks) => out.extend(chunks),
                    Err(e) => {
                        error = json!(e.to_string());
                        break 'feed;
                    }
                }
            }
        }
        // The server ends the stream at an error (sent in-band), without the final chunks.
        if error.is_null() {
            out.extend(mapper.finish());
        }
        let chunks: Vec<Value> = out
            .into_iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap();
                // The envelope is the same on every chunk; keep the fixture readable.
                let obj = v.as_object_mut().unwrap();
                assert_eq!(obj.remove("object").unwrap(), "chat.completion.chunk");
                obj.remove("created");
                obj.remove("model");
                v
            })
            .collect();
        check(
            case,
            "expected",
            json!({"chunks": chunks, "complete": mapper.is_complete(), "error": error}),
        );
    }
    if blessing() {
        save(DIR, "stream", &all);
    }
}

#[test]
fn error_fixtures() {
    let mut all = cases(DIR, "error");
    for case in &mut all {
        let status = u16::try_from(case["status"].as_u64().unwrap()).unwrap();
        let body = match &case["body"] {
            Value::String(s) => s.as_bytes().to_vec(),
            other => serde_json::to_vec(other).unwrap(),
        };
        let mapped = gemini::map_error(status, &body);
        check(
            case,
            "expected",
            json!({
                "kind": mapped.kind,
                "status": mapped.status,
                "retryable": mapped.retryable,
                "body": mapped.body,
            }),
        );
    }
    if blessing() {
        save(DIR, "error", &all);
    }
}

#[test]
fn schema_fixtures() {
    let mut all = cases(DIR, "schema");
    for case in &mut all {
        check(
            case,
            "expected",
            gemini::reduce_schema(&case["json_schema"]),
        );
    }
    if blessing() {
        save(DIR, "schema", &all);
    }
}
