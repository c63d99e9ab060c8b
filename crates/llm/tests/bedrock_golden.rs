//! Golden tests for the Bedrock Converse mappers: each fixture in
//! `tests/fixtures/bedrock/*.json` is a list of cases with the input and the exact
//! expected output (`GOLDEN_BLESS=1` rewrites the expected parts; review the diff).
#![allow(clippy::unwrap_used, clippy::panic)]

mod golden_util;

use gatehouse_llm::bedrock::{self, StreamMapper, eventstream};
use gatehouse_llm::openai::ChatRequest;
use golden_util::{check, drive, each_case, name};
use serde_json::{Value, json};

const DIR: &str = "bedrock";

#[test]
fn request_fixtures() {
    each_case(DIR, "request", |case| {
        let req: ChatRequest = serde_json::from_value(case["openai_request"].clone()).unwrap();
        let model = case["model_id"].as_str().unwrap();
        let actual = match bedrock::chat_to_converse(&req, model) {
            Ok(mapped) => json!({
                "path": bedrock::converse_path(model, mapped.stream),
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
        let body = serde_json::to_vec(&case["converse_response"]).unwrap();
        let actual = match bedrock::converse_to_chat(&body, "br", "req-1", 1764043000) {
            Ok(chat) => serde_json::to_value(chat).unwrap(),
            Err(e) => json!({"error": e.to_string()}),
        };
        check(case, "expected", actual);
    });
}

/// The fixture events go through the real binary framing (encoded, then decoded from
/// 5-byte pieces) before the mapper, as they do in the server.
#[test]
fn stream_fixtures() {
    each_case(DIR, "stream", |case| {
        let mut wire = Vec::new();
        for ev in case["events"].as_array().unwrap() {
            let name = ev["event"].as_str().unwrap();
            let payload = serde_json::to_vec(&ev["payload"]).unwrap();
            let headers: Vec<(&str, &str)> = if name.ends_with("Exception") {
                vec![(":exception-type", name), (":message-type", "exception")]
            } else {
                vec![
                    (":event-type", name),
                    (":content-type", "application/json"),
                    (":message-type", "event"),
                ]
            };
            wire.extend(eventstream::encode(&headers, &payload));
        }
        let mut decoder = eventstream::Decoder::new();
        let mut events = Vec::new();
        for piece in wire.chunks(5) {
            for msg in decoder.push(piece).unwrap() {
                let name = msg
                    .header(":event-type")
                    .or_else(|| msg.header(":exception-type"))
                    .unwrap();
                let data = String::from_utf8(msg.payload.to_vec()).unwrap();
                events.push((Some(name.to_owned()), data));
            }
        }
        decoder.finish().unwrap();
        let mut mapper =
            StreamMapper::new("br", "req-1", 1764043000, case["include_usage"] == true);
        let envelope = json!({"object": "chat.completion.chunk", "id": "chatcmpl-req-1",
            "model": "br", "created": 1764043000});
        let actual = drive(&mut mapper, &events, &envelope, &name(case));
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
        let mapped = bedrock::map_error(status, &body);
        check(
            case,
            "expected",
            json!({"kind": mapped.kind, "status": mapped.status, "retryable": mapped.retryable, "body": mapped.body}),
        );
    });
}
