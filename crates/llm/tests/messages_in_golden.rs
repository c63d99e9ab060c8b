//! Golden tests for the inbound Anthropic Messages mappers
//! (`tests/fixtures/messages_in/*.json`).
#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap/panic (project rule)

mod golden_util;

use gatehouse_llm::messages_in::{self, MessagesStreamWriter};
use gatehouse_llm::openai::{ChatCompletion, completion_chunks};
use golden_util::{check, each_case, parse_sse, write};
use serde_json::{Value, json};

const DIR: &str = "messages_in";

#[test]
fn request_fixtures() {
    each_case(DIR, "request", |case| {
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
        // What `count_tokens` answers for this body when no vendor counts.
        let estimate = messages_in::estimate_tokens(case["request"].as_object().unwrap());
        check(case, "token_estimate", json!(estimate));
    });
}

#[test]
fn response_fixtures() {
    each_case(DIR, "response", |case| {
        let completion: ChatCompletion =
            serde_json::from_value(case["chat_completion"].clone()).unwrap();
        let model = case["public_model"].as_str().unwrap().to_owned();
        let actual = messages_in::from_chat(&completion, &model);
        // An answer that exists only whole (the MCP tool loop's) reaches a streaming
        // client as chunks through the stream writer: the stream folds back to the same
        // message.
        let chunks = completion_chunks(completion);
        let mut writer = MessagesStreamWriter::new(model);
        let mut bytes = Vec::new();
        for chunk in &chunks {
            bytes.extend(writer.push(chunk));
        }
        bytes.extend(writer.finish());
        let events = parse_sse(&bytes, &golden_util::name(case));
        // (Arguments that are not JSON are streamed verbatim, which no client can fold.)
        let arguments_parse = chunks.iter().flat_map(|c| &c.choices).all(|choice| {
            choice.delta.tool_calls.iter().flatten().all(|call| {
                call.function
                    .as_ref()
                    .and_then(|f| f.arguments.as_deref())
                    .is_none_or(|a| a.is_empty() || serde_json::from_str::<Value>(a).is_ok())
            })
        });
        if arguments_parse {
            let name = golden_util::name(case);
            assert_eq!(fold_events(&events), actual, "{name}: told as a stream");
        }
        check(case, "chunks", serde_json::to_value(&chunks).unwrap());
        check(case, "message", actual);
    });
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
    each_case(DIR, "stream", |case| {
        let name = golden_util::name(case);
        let model = case["public_model"].as_str().unwrap().to_owned();
        let (events, whole) = write(&mut MessagesStreamWriter::new(model.clone()), case);
        if let Some(completion) = whole {
            // Folding the events gives the non-stream rendering of the same answer.
            let expected = messages_in::from_chat(&completion, &model);
            assert_eq!(fold_events(&events), expected, "{name}: folded stream");
        }
        check(case, "events", Value::Array(events));
    });
}
