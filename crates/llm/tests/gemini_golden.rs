//! Golden tests for the Gemini mappers: each fixture in `tests/fixtures/gemini/*.json` is
//! a list of cases with the input and the exact expected output (`GOLDEN_BLESS=1`
//! rewrites the expected parts; review the diff).
#![allow(clippy::unwrap_used, clippy::panic)]

mod golden_util;

use gatehouse_llm::gemini::{self, StreamMapper};
use gatehouse_llm::openai::ChatRequest;
use golden_util::{check, drive, each_case, name, sse_events};
use serde_json::{Value, json};

const DIR: &str = "gemini";

#[test]
fn request_fixtures() {
    each_case(DIR, "request", |case| {
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
    });
}

#[test]
fn response_fixtures() {
    each_case(DIR, "response", |case| {
        let body = serde_json::to_vec(&case["gemini_response"]).unwrap();
        let actual = match gemini::gemini_to_chat(&body, "gem", 1764043000) {
            Ok(chat) => serde_json::to_value(chat).unwrap(),
            Err(e) => json!({"error": e.to_string()}),
        };
        check(case, "expected", actual);
    });
}

/// Feeds the events as Gemini's `alt=sse` bytes (CRLF, split in 7-byte pieces) through
/// the SSE parser and the mapper, as the server does.
#[test]
fn stream_fixtures() {
    each_case(DIR, "stream", |case| {
        let mut wire = Vec::new();
        for ev in case["events"].as_array().unwrap() {
            wire.extend_from_slice(b"data: ");
            wire.extend_from_slice(serde_json::to_string(ev).unwrap().as_bytes());
            wire.extend_from_slice(b"\r\n\r\n");
        }
        let mut mapper = StreamMapper::new("gem", 1764043000, case["include_usage"] == true);
        let envelope =
            json!({"object": "chat.completion.chunk", "model": "gem", "created": 1764043000});
        let actual = drive(&mut mapper, &sse_events(&wire, 7), &envelope, &name(case));
        check(case, "expected", actual);
    });
}

#[test]
fn error_fixtures() {
    each_case(DIR, "error", |case| {
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
    });
}

#[test]
fn schema_fixtures() {
    each_case(DIR, "schema", |case| {
        check(
            case,
            "expected",
            gemini::reduce_schema(&case["json_schema"]),
        );
    });
}
