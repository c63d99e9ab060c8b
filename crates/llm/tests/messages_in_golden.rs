//! Golden tests for the inbound Anthropic Messages mappers
//! (`tests/fixtures/messages_in/*.json`).
#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap/panic (project rule)

mod golden_util;

use gatehouse_llm::ErrorKind;
use gatehouse_llm::messages_in::{self, MessagesStreamWriter};
use gatehouse_llm::openai::{ChatCompletion, ChunkAccumulator};
use golden_util::{blessing, cases, check, chunk, parse_sse, save};
use serde_json::{Value, json};

const DIR: &str = "messages_in";

#[test]
fn request_fixtures() {
    let mut all = cases(DIR, "request");
    for case in &mut all {
        let (chat, ctx) = messages_in::to_chat(&case["request"]).unwrap();
        check(case, "chat_request", serde_json::to_value(&chat).unwrap());
        let ctx = json!({
            "model": ctx.model,
            "stream": ctx.stream,
            "dropped_tools": ctx.dropped_tools,
            "dropped_blocks": ctx.dropped_blocks,
            "ignored": ctx.ignored,
        });
        check(case, "context", ctx);
    }
    if blessing() {
        save(DIR, "request", &all);
    }
}

#[test]
fn response_fixtures() {
    let mut all = cases(DIR, "response");
    for case in &mut all {
        let completion: ChatCompletion =
            serde_json::from_value(case["chat_completion"].clone()).unwrap();
        let actual = messages_in::from_chat(&completion, case["public_model"].as_str().unwrap());
        check(case, "message", actual);
    }
    if blessing() {
        save(DIR, "response", &all);
    }
}

/// Rebuilds the final message from the events, as the anthropic SDK's stream helper does.
fn fold_events(events: &[Value]) -> Value {
    let mut message = Value::Null;
    let mut partial_json: Vec<String> = Vec::new();
    for ev in events {
        let data = &ev["data"];
        match data["type"].as_str().unwrap() {
            "message_start" => message = data["message"].clone(),
            "content_block_start" => {
                let index = data["index"].as_u64().unwrap() as usize;
                let blocks = message["content"].as_array_mut().unwrap();
                assert_eq!(blocks.len(), index, "block indices are consecutive");
                blocks.push(data["content_block"].clone());
                partial_json.push(String::new());
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap() as usize;
                let block = &mut message["content"][index];
                let delta = &data["delta"];
                match delta["type"].as_str().unwrap() {
                    "text_delta" => {
                        let text = block["text"].as_str().unwrap().to_owned();
                        block["text"] = json!(text + delta["text"].as_str().unwrap());
                    }
                    "thinking_delta" => {
                        let text = block["thinking"].as_str().unwrap().to_owned();
                        block["thinking"] = json!(text + delta["thinking"].as_str().unwrap());
                    }
                    "signature_delta" => block["signature"] = delta["signature"].clone(),
                    "input_json_delta" => {
                        partial_json[index].push_str(delta["partial_json"].as_str().unwrap());
                    }
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().unwrap() as usize;
                if message["content"][index]["type"] == "tool_use" {
                    let raw = &partial_json[index];
                    message["content"][index]["input"] = if raw.is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(raw).unwrap()
                    };
                }
            }
            "message_delta" => {
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["stop_sequence"] = data["delta"]["stop_sequence"].clone();
                message["usage"] = data["usage"].clone();
            }
            _ => {}
        }
    }
    message
}

#[test]
fn stream_fixtures() {
    let mut all = cases(DIR, "stream");
    for case in &mut all {
        let name = case["name"].as_str().unwrap().to_owned();
        let model = case["public_model"].as_str().unwrap().to_owned();
        let mut writer = MessagesStreamWriter::new(model.clone());
        let mut bytes = Vec::new();
        let mut acc = ChunkAccumulator::new();
        for short in case["chunks"].as_array().unwrap() {
            let chunk = chunk(short);
            acc.push(&chunk);
            bytes.extend(writer.push(&chunk));
        }
        let failed = match &case["end"] {
            Value::String(s) if s == "finish" => {
                bytes.extend(writer.finish());
                false
            }
            Value::Object(o) => {
                let fail = &o["fail"];
                let kind: ErrorKind = serde_json::from_value(fail["kind"].clone()).unwrap();
                bytes.extend(writer.fail(kind, fail["message"].as_str().unwrap()));
                true
            }
            other => panic!("{name}: bad end {other}"),
        };
        assert!(
            writer.finish().is_empty(),
            "{name}: ended streams stay ended"
        );
        assert!(writer.fail(ErrorKind::Upstream, "x").is_empty(), "{name}");

        let events = parse_sse(&bytes, &name);
        if !failed {
            // Folding the events gives the non-stream rendering of the same answer.
            let expected = messages_in::from_chat(&acc.finish(), &model);
            assert_eq!(fold_events(&events), expected, "{name}: folded stream");
        }
        check(case, "events", Value::Array(events));
    }
    if blessing() {
        save(DIR, "stream", &all);
    }
}
