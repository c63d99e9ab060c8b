//! Golden tests for the Responses API mappers (`tests/fixtures/responses/*.json`).
#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap/panic (project rule)

mod golden_util;

use gatehouse_llm::openai::{ChatCompletion, completion_chunks};
use gatehouse_llm::responses::{self, ResponsesContext, ResponsesStreamWriter, replay};
use gatehouse_llm::usage::{Shape, Tally};
use golden_util::{check, each_case, parse_sse, usage_value, write};
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
    each_case(DIR, "request", |case| {
        let (chat, ctx) = responses::to_chat(&case["request"]).unwrap();
        check(case, "chat_request", serde_json::to_value(&chat).unwrap());
        check(case, "context", context_value(&ctx));
    });
}

#[test]
fn response_fixtures() {
    each_case(DIR, "response", |case| {
        let ctx = context_for(case);
        let completion: ChatCompletion =
            serde_json::from_value(case["chat_completion"].clone()).unwrap();
        let actual = responses::from_chat(
            &completion,
            &ctx,
            case["response_id"].as_str().unwrap(),
            case["created"].as_u64().unwrap(),
        );
        // An answer that exists only whole reaches a streaming client either as chunks
        // through the stream writer or replayed as events: both end in the same response.
        let name = golden_util::name(case);
        let mut writer = ResponsesStreamWriter::new(
            ctx.clone(),
            case["response_id"].as_str().unwrap(),
            case["created"].as_u64().unwrap(),
        );
        for chunk in completion_chunks(completion) {
            writer.push(&chunk);
        }
        writer.finish();
        assert_eq!(writer.response(), actual, "{name}: told as chunks");
        let replayed = parse_sse(&replay::events(&actual), &name);
        assert_eq!(
            replayed.last().unwrap()["data"]["response"],
            actual,
            "{name}: replayed"
        );
        check(case, "response", actual);
    });
}

/// A finished response (the MCP tool loop's, with its `mcp_list_tools` and `mcp_call`
/// items) told as the event stream a client would have seen.
#[test]
fn replay_fixtures() {
    each_case(DIR, "replay", |case| {
        let name = golden_util::name(case);
        let events = parse_sse(&replay::events(&case["response"]), &name);
        for (i, ev) in events.iter().enumerate() {
            assert_eq!(ev["data"]["sequence_number"], i, "{name}: sequence_number");
        }
        assert_eq!(
            events.last().unwrap()["data"]["response"],
            case["response"],
            "{name}: the last event carries the whole response"
        );
        check(case, "events", Value::Array(events));
    });
}

#[test]
fn stream_fixtures() {
    each_case(DIR, "stream", |case| {
        let name = golden_util::name(case);
        let ctx = context_for(case);
        let response_id = case["response_id"].as_str().unwrap().to_owned();
        let created = case["created"].as_u64().unwrap();
        let mut writer = ResponsesStreamWriter::new(ctx.clone(), response_id.clone(), created);
        let (events, whole) = write(&mut writer, case);
        for (i, ev) in events.iter().enumerate() {
            assert_eq!(ev["data"]["sequence_number"], i, "{name}: sequence_number");
        }
        if let Some(completion) = whole {
            // The stream's final response equals the non-stream rendering of the same
            // answer: one mapping, two transports.
            let expected = responses::from_chat(&completion, &ctx, &response_id, created);
            let last = &events.last().unwrap()["data"];
            assert_eq!(last["response"], expected, "{name}: final response");
            assert_eq!(writer.response(), expected, "{name}: writer.response()");
        }
        // The same events passed through from an OpenAI upstream are billed from them.
        let mut tally = Tally::new(Shape::Responses);
        for ev in &events {
            tally.event(&ev["data"].to_string());
        }
        check(case, "tally", usage_value(tally.usage()));
        check(case, "events", Value::Array(events));
    });
}
