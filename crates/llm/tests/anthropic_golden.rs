//! Golden tests for the Anthropic provider mappers (`tests/fixtures/anthropic/*.json`,
//! harness in `golden_util`; `GOLDEN_BLESS=1` rewrites the expected parts).
#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap/panic (project rule)

mod golden_util;

use gatehouse_llm::anthropic::{self, AnthropicDefaults, StreamMapper};
use gatehouse_llm::openai::ChatRequest;
use gatehouse_llm::usage::{Shape, Tally};
use golden_util::{check, drive, each_case, name, sse_events, usage_value};
use serde_json::{Value, json};

const DIR: &str = "anthropic";

#[test]
fn request_fixtures() {
    each_case(DIR, "request", |case| {
        let req: ChatRequest = serde_json::from_value(case["openai_request"].clone()).unwrap();
        let mapped = anthropic::chat_to_messages(
            &req,
            case["target_model"].as_str().unwrap(),
            &AnthropicDefaults::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", name(case)));
        check(
            case,
            "anthropic_request",
            serde_json::to_value(&mapped.body).unwrap(),
        );
        check(case, "stream", json!(mapped.stream));
        check(case, "include_usage", json!(mapped.include_usage));
        check(case, "dropped", json!(mapped.dropped));
    });
}

#[test]
fn response_fixtures() {
    each_case(DIR, "response", |case| {
        let body = serde_json::to_vec(&case["anthropic_response"]).unwrap();
        let chat = anthropic::messages_to_chat(
            &body,
            case["public_model"].as_str().unwrap(),
            case["created"].as_u64().unwrap(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", name(case)));
        check(
            case,
            "openai_response",
            serde_json::to_value(&chat).unwrap(),
        );
        // The same body passed through to a Messages client is billed from its usage.
        check(
            case,
            "tally",
            usage_value(Tally::body(Shape::Anthropic, &body)),
        );
    });
}

/// Renders the fixture events as upstream SSE bytes, with CRLF line ends, a comment and
/// `data` split over two lines where the JSON allows it, to exercise the parser too.
fn sse_bytes(events: &[Value]) -> Vec<u8> {
    let mut out = String::from(": upstream comment\r\n\r\n");
    for ev in events {
        let data = serde_json::to_string(&ev["data"]).unwrap();
        out.push_str(&format!("event: {}\r\n", ev["event"].as_str().unwrap()));
        // A newline inside JSON whitespace is legal; SSE joins data lines with "\n".
        match data.split_once(',') {
            Some((a, b)) => out.push_str(&format!("data: {a},\r\ndata:{b}\r\n\r\n")),
            None => out.push_str(&format!("data: {data}\r\n\r\n")),
        }
    }
    out.into_bytes()
}

#[test]
fn stream_fixtures() {
    each_case(DIR, "stream", |case| {
        let ctx = name(case);
        let model = case["public_model"].as_str().unwrap();
        let created = case["created"].as_u64().unwrap();
        let mut mapper =
            StreamMapper::new(model, created, case["include_usage"].as_bool().unwrap());
        // Fed in awkward 7-byte pieces through the generic parser.
        let fixture_events = case["events"].as_array().unwrap();
        let events = sse_events(&sse_bytes(fixture_events), 7);
        assert_eq!(events.len(), fixture_events.len(), "{ctx}");
        let envelope = json!({"object": "chat.completion.chunk", "model": model,
            "created": created, "id": case["expected_id"]});
        let actual = drive(&mut mapper, &events, &envelope, &ctx);
        check(case, "expected", actual);
        // The same events passed through to a Messages client are billed from them.
        let mut tally = Tally::new(Shape::Anthropic);
        for (_, data) in &events {
            tally.event(data);
        }
        check(case, "tally", usage_value(tally.usage()));
    });
}

#[test]
fn error_fixtures() {
    each_case(DIR, "error", |case| {
        let body = match &case["body"] {
            Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other).unwrap(),
        };
        let mapped = anthropic::map_error(case["status"].as_u64().unwrap() as u16, &body);
        check(case, "kind", serde_json::to_value(mapped.kind).unwrap());
        check(case, "client_status", json!(mapped.status));
        check(case, "retryable", json!(mapped.retryable));
        check(case, "openai", serde_json::to_value(&mapped.body).unwrap());
    });
}
