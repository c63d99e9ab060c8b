//! Golden tests: each fixture in `tests/fixtures/anthropic/*.json` is a list of cases with
//! the input and the exact expected output of a mapper.
#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap/panic (project rule); this covers the helpers too

use gatehouse_llm::anthropic::{self, AnthropicDefaults, StreamMapper};
use gatehouse_llm::openai::ChatRequest;
use gatehouse_llm::{MapError, sse};
use serde_json::Value;

fn cases(name: &str) -> Vec<Value> {
    let path = format!(
        "{}/tests/fixtures/anthropic/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn case_name(case: &Value) -> &str {
    case["name"].as_str().unwrap()
}

#[test]
fn request_fixtures() {
    for case in cases("request") {
        let name = case_name(&case);
        let req: ChatRequest = serde_json::from_value(case["openai_request"].clone()).unwrap();
        let mapped = anthropic::chat_to_messages(
            &req,
            case["target_model"].as_str().unwrap(),
            &AnthropicDefaults::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let body = serde_json::to_value(&mapped.body).unwrap();
        assert_eq!(
            body,
            case["anthropic_request"],
            "{name}\nactual: {}",
            serde_json::to_string_pretty(&body).unwrap()
        );
        assert_eq!(mapped.stream, case["stream"].as_bool().unwrap(), "{name}");
        assert_eq!(
            mapped.include_usage,
            case["include_usage"].as_bool().unwrap(),
            "{name}"
        );
        let dropped: Vec<String> = serde_json::from_value(case["dropped"].clone()).unwrap();
        assert_eq!(mapped.dropped, dropped, "{name}");
    }
}

#[test]
fn response_fixtures() {
    for case in cases("response") {
        let name = case_name(&case);
        let body = serde_json::to_vec(&case["anthropic_response"]).unwrap();
        let chat = anthropic::messages_to_chat(
            &body,
            case["public_model"].as_str().unwrap(),
            case["created"].as_u64().unwrap(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let actual = serde_json::to_value(&chat).unwrap();
        assert_eq!(
            actual,
            case["openai_response"],
            "{name}\nactual: {}",
            serde_json::to_string_pretty(&actual).unwrap()
        );
    }
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

/// Strips the fields common to every chunk after checking them.
fn strip_envelope(chunk: &Value, id: &str, model: &str, created: u64, ctx: &str) -> Value {
    assert_eq!(chunk["id"], id, "{ctx}");
    assert_eq!(chunk["object"], "chat.completion.chunk", "{ctx}");
    assert_eq!(chunk["model"], model, "{ctx}");
    assert_eq!(chunk["created"], created, "{ctx}");
    let mut rest = chunk.as_object().unwrap().clone();
    for key in ["id", "object", "model", "created"] {
        rest.remove(key);
    }
    Value::Object(rest)
}

#[test]
fn stream_fixtures() {
    for case in cases("stream") {
        let name = case_name(&case);
        let model = case["public_model"].as_str().unwrap();
        let created = case["created"].as_u64().unwrap();
        let id = case["expected_id"].as_str().unwrap();
        let mut mapper =
            StreamMapper::new(model, created, case["include_usage"].as_bool().unwrap());

        // Feed the SSE bytes in awkward 7-byte pieces through the generic parser.
        let bytes = sse_bytes(case["events"].as_array().unwrap());
        let mut parser = sse::Parser::new();
        let mut events = Vec::new();
        for piece in bytes.chunks(7) {
            events.extend(parser.push(piece));
        }
        events.extend(parser.finish());
        assert_eq!(
            events.len(),
            case["events"].as_array().unwrap().len(),
            "{name}"
        );

        let mut chunks = Vec::new();
        let mut error = None;
        for ev in &events {
            match mapper.on_event(ev.event.as_deref(), &ev.data) {
                Ok(out) => chunks.extend(out),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let actual: Vec<Value> = chunks
            .iter()
            .map(|c| strip_envelope(&serde_json::to_value(c).unwrap(), id, model, created, name))
            .collect();
        assert_eq!(
            Value::Array(actual.clone()),
            case["expected_chunks"],
            "{name}\nactual: {}",
            serde_json::to_string_pretty(&actual).unwrap()
        );
        assert_eq!(
            mapper.is_complete(),
            case["complete"].as_bool().unwrap(),
            "{name}"
        );

        match (error, case.get("expected_error")) {
            (None, None) => {}
            (Some(MapError::Upstream(err)), Some(expected)) => {
                assert_eq!(serde_json::to_value(&err).unwrap(), *expected, "{name}");
                assert_eq!(
                    serde_json::to_value(err.to_openai()).unwrap(),
                    case["expected_error_openai"],
                    "{name}"
                );
            }
            (got, want) => panic!("{name}: error {got:?}, expected {want:?}"),
        }

        if let Some(expected_finish) = case["finish_chunks"].as_array() {
            let finish: Vec<Value> = mapper
                .finish()
                .iter()
                .map(|c| {
                    strip_envelope(&serde_json::to_value(c).unwrap(), id, model, created, name)
                })
                .collect();
            assert_eq!(&finish, expected_finish, "{name}: finish()");
            assert!(
                mapper.finish().is_empty(),
                "{name}: finish() twice emits nothing"
            );
        }
    }
}

#[test]
fn error_fixtures() {
    for case in cases("error") {
        let name = case_name(&case);
        let body = match &case["body"] {
            Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other).unwrap(),
        };
        let mapped = anthropic::map_error(case["status"].as_u64().unwrap() as u16, &body);
        assert_eq!(
            serde_json::to_value(mapped.kind).unwrap(),
            case["kind"],
            "{name}"
        );
        assert_eq!(
            u64::from(mapped.status),
            case["client_status"].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            mapped.retryable,
            case["retryable"].as_bool().unwrap(),
            "{name}"
        );
        assert_eq!(
            serde_json::to_value(&mapped.body).unwrap(),
            case["openai"],
            "{name}"
        );
    }
}
