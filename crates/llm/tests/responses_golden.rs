//! Golden tests for the Responses API mappers (`tests/fixtures/responses/*.json`).
#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap/panic (project rule)

mod golden_util;

use gatehouse_llm::ErrorKind;
use gatehouse_llm::openai::{ChatCompletion, ChunkAccumulator};
use gatehouse_llm::responses::{self, ResponsesContext, ResponsesStreamWriter};
use golden_util::{blessing, cases, check, chunk, parse_sse, save};
use serde_json::{Value, json};

const DIR: &str = "responses";

fn context_value(ctx: &ResponsesContext) -> Value {
    let namespaced: serde_json::Map<String, Value> = ctx
        .namespaced
        .iter()
        .map(|(flat, ns)| {
            (
                flat.clone(),
                json!({"namespace": ns.namespace, "name": ns.name}),
            )
        })
        .collect();
    json!({
        "model": ctx.model,
        "stream": ctx.stream,
        "store": ctx.store,
        "previous_response_id": ctx.previous_response_id,
        "namespaced": namespaced,
        "custom_tools": ctx.custom_tools,
        "dropped_tools": ctx.dropped_tools,
        "mcp_tools": ctx.mcp_tools,
        "dropped_items": ctx.dropped_items,
        "ignored": ctx.ignored,
    })
}

fn context_for(case: &Value) -> ResponsesContext {
    responses::to_chat(&case["request"]).unwrap().1
}

#[test]
fn request_fixtures() {
    let mut all = cases(DIR, "request");
    for case in &mut all {
        let (chat, ctx) = responses::to_chat(&case["request"]).unwrap();
        check(case, "chat_request", serde_json::to_value(&chat).unwrap());
        check(case, "context", context_value(&ctx));
    }
    if blessing() {
        save(DIR, "request", &all);
    }
}

#[test]
fn response_fixtures() {
    let mut all = cases(DIR, "response");
    for case in &mut all {
        let ctx = context_for(case);
        let completion: ChatCompletion =
            serde_json::from_value(case["chat_completion"].clone()).unwrap();
        let actual = responses::from_chat(
            &completion,
            &ctx,
            case["response_id"].as_str().unwrap(),
            case["created"].as_u64().unwrap(),
        );
        check(case, "response", actual);
    }
    if blessing() {
        save(DIR, "response", &all);
    }
}

#[test]
fn stream_fixtures() {
    let mut all = cases(DIR, "stream");
    for case in &mut all {
        let name = case["name"].as_str().unwrap().to_owned();
        let ctx = context_for(case);
        let response_id = case["response_id"].as_str().unwrap().to_owned();
        let created = case["created"].as_u64().unwrap();
        let mut writer = ResponsesStreamWriter::new(ctx.clone(), response_id.clone(), created);
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
        // Ended streams stay ended.
        assert!(writer.finish().is_empty(), "{name}");
        assert!(writer.fail(ErrorKind::Upstream, "x").is_empty(), "{name}");

        let events = parse_sse(&bytes, &name);
        for (i, ev) in events.iter().enumerate() {
            assert_eq!(ev["data"]["sequence_number"], i, "{name}: sequence_number");
        }
        let last = &events.last().unwrap()["data"];
        if !failed {
            // The stream's final response equals the non-stream rendering of the same
            // answer: one mapping, two transports.
            let expected = responses::from_chat(&acc.finish(), &ctx, &response_id, created);
            assert_eq!(last["response"], expected, "{name}: final response");
            assert_eq!(writer.response(), expected, "{name}: writer.response()");
        }
        check(case, "events", Value::Array(events));
    }
    if blessing() {
        save(DIR, "stream", &all);
    }
}
