//! Behaviour checks that are clearer as code than as fixtures: errors, round trips.
#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap/panic (project rule)

use gatehouse_llm::MapError;
use gatehouse_llm::anthropic::{self, AnthropicDefaults, StreamMapper};
use gatehouse_llm::openai::{ChatRequest, ChunkAccumulator};
use serde_json::{Value, json};

fn map(req: Value) -> Result<Value, MapError> {
    let req: ChatRequest = serde_json::from_value(req).unwrap();
    anthropic::chat_to_messages(&req, "claude-sonnet-4-5", &AnthropicDefaults::default())
        .map(|m| serde_json::to_value(m.body).unwrap())
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

#[test]
fn invalid_tool_arguments_are_rejected_with_the_call_id() {
    for args in ["{\"city\": ", "[1,2]", "\"str\""] {
        let err = map(json!({"model": "m", "messages": [
            user("hi"),
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": args}}]}
        ]}))
        .unwrap_err();
        match &err {
            MapError::InvalidToolArguments { tool_call_id, .. } => {
                assert_eq!(tool_call_id, "call_9")
            }
            other => panic!("{args}: {other:?}"),
        }
        assert!(err.is_client_error());
    }
}

#[test]
fn unsupported_inputs_are_reported_not_ignored() {
    let audio = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}]}]});
    assert!(matches!(map(audio), Err(MapError::Unsupported(m)) if m.contains("input_audio")));

    let function_role = json!({"model": "m", "messages": [user("a"), {"role": "function", "name": "f", "content": "x"}]});
    assert!(matches!(map(function_role), Err(MapError::Unsupported(_))));

    let no_id = json!({"model": "m", "messages": [user("a"), {"role": "tool", "content": "x"}]});
    assert!(matches!(map(no_id), Err(MapError::InvalidRequest(_))));

    let bad_effort = json!({"model": "m", "messages": [user("a")], "reasoning_effort": "extreme"});
    assert!(matches!(map(bad_effort), Err(MapError::InvalidRequest(_))));

    let tiny = json!({"model": "m", "messages": [user("a")], "reasoning_effort": "low", "max_tokens": 1024});
    assert!(matches!(map(tiny), Err(MapError::InvalidRequest(m)) if m.contains("thinking budget")));

    let ftp_image = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}]});
    assert!(matches!(map(ftp_image), Err(MapError::InvalidRequest(_))));

    assert!(ChatRequest::from_slice(b"{\"model\": 1}").is_err());
}

#[test]
fn tool_results_open_the_user_turn_even_after_user_text() {
    let body = map(json!({"model": "m", "messages": [
        user("q"),
        {"role": "assistant", "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        user("also this"),
        {"role": "tool", "tool_call_id": "t1", "content": "r"}
    ]}))
    .unwrap();
    let turns = body["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[2]["content"][0]["type"], "tool_result");
    assert_eq!(turns[2]["content"][1]["text"], "also this");
}

#[test]
fn reasoning_effort_budget_fits_inside_explicit_max_tokens() {
    let body = map(json!({"model": "m", "messages": [user("a")], "reasoning_effort": "medium", "max_tokens": 3000})).unwrap();
    assert_eq!(body["max_tokens"], 3000);
    assert_eq!(
        body["thinking"],
        json!({"type": "enabled", "budget_tokens": 1500})
    );
    let body =
        map(json!({"model": "m", "messages": [user("a")], "reasoning_effort": "none"})).unwrap();
    assert!(body.get("thinking").is_none());
}

/// The tool-execution loop sends the mapped assistant turn back to Anthropic: thinking
/// blocks with signatures, tool ids and arguments must come back unchanged.
#[test]
fn non_stream_assistant_turn_round_trips() {
    let original = json!([
        {"type": "thinking", "thinking": "Plan.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "ENC"},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"city": "Paris", "n": [1, 2]}},
        {"type": "tool_use", "id": "toolu_B", "name": "now", "input": {}}
    ]);
    let resp = json!({"id": "msg_1", "type": "message", "role": "assistant", "content": original,
        "stop_reason": "tool_use", "usage": {"input_tokens": 1, "output_tokens": 1}});
    let chat = anthropic::messages_to_chat(&serde_json::to_vec(&resp).unwrap(), "m", 0).unwrap();
    assert_eq!(chat.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    let assistant = serde_json::to_value(&chat.choices[0].message).unwrap();

    let body = map(json!({"model": "m", "messages": [
        user("weather?"),
        assistant,
        {"role": "tool", "tool_call_id": "toolu_A", "content": "sunny"},
        {"role": "tool", "tool_call_id": "toolu_B", "content": "noon"}
    ]}))
    .unwrap();
    assert_eq!(body["messages"][1]["content"], original);
    let results: Vec<&str> = body["messages"][2]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["tool_use_id"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["toolu_A", "toolu_B"]);
}

#[test]
fn streamed_assistant_turn_accumulates_and_round_trips() {
    let events = [
        json!({"type": "message_start", "message": {"id": "msg_s", "type": "message", "role": "assistant", "content": [], "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hm"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "SIG"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ": 1}"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "g", "input": {}}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        json!({"type": "message_stop"}),
    ];
    let mut mapper = StreamMapper::new("m", 0, true);
    let mut acc = ChunkAccumulator::new();
    for ev in &events {
        let name = ev["type"].as_str();
        for chunk in mapper.on_event(name, &ev.to_string()).unwrap() {
            acc.push(&chunk);
        }
    }
    for chunk in mapper.finish() {
        acc.push(&chunk);
    }
    let done = acc.finish();
    assert_eq!(done.id, "chatcmpl-s");
    let msg = &done.choices[0].message;
    assert_eq!(done.choices[0].finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(msg.content, None);
    assert_eq!(msg.reasoning_content.as_deref(), Some("Hm"));
    let usage = done.usage.as_ref().unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (5, 9));

    let body =
        map(json!({"model": "m", "messages": [user("go"), serde_json::to_value(msg).unwrap()]}))
            .unwrap();
    assert_eq!(
        body["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "Hm", "signature": "SIG"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}},
            {"type": "tool_use", "id": "toolu_2", "name": "g", "input": {}}
        ])
    );
}

#[test]
fn text_then_tool_use_still_finishes_with_tool_calls_and_ping_is_silent() {
    let mut m = StreamMapper::new("m", 0, false);
    assert!(
        m.on_event(Some("ping"), "{\"type\":\"ping\"}")
            .unwrap()
            .is_empty()
    );
    let out = m
        .on_event(None, r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":1}}"#)
        .unwrap();
    let last = serde_json::to_value(out.last().unwrap()).unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");
    assert!(m.on_event(None, "not json").is_err());
}
