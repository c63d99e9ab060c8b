//! Focused behaviour tests for the inbound Messages mappers.
#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap/panic (project rule)

mod golden_util;

use gatehouse_llm::ErrorKind;
use gatehouse_llm::messages_in::{self, MessagesStreamWriter};
use golden_util::{chunk, parse_sse};
use serde_json::json;

#[test]
fn thinking_budgets_map_to_efforts_and_other_modes_to_none() {
    for (thinking, effort) in [
        (
            json!({"type": "enabled", "budget_tokens": 1024}),
            Some("low"),
        ),
        (
            json!({"type": "enabled", "budget_tokens": 4096}),
            Some("medium"),
        ),
        (
            json!({"type": "enabled", "budget_tokens": 16384}),
            Some("high"),
        ),
        (json!({"type": "disabled"}), None),
        (json!({"type": "adaptive"}), None),
    ] {
        let req = json!({"model": "m", "max_tokens": 10, "messages": [], "thinking": thinking});
        let (chat, _) = messages_in::to_chat(&req).unwrap();
        assert_eq!(chat.reasoning_effort.as_deref(), effort, "{thinking}");
    }
}

#[test]
fn tool_choice_modes() {
    let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    for (choice, expected, parallel) in [
        (json!({"type": "auto"}), json!("auto"), None),
        (
            json!({"type": "any", "disable_parallel_tool_use": true}),
            json!("required"),
            Some(false),
        ),
        (json!({"type": "none"}), json!("none"), None),
        (
            json!({"type": "tool", "name": "f"}),
            json!({"type": "function", "function": {"name": "f"}}),
            None,
        ),
    ] {
        let req = json!({"model": "m", "max_tokens": 10, "messages": [], "tools": tools, "tool_choice": choice});
        let (chat, _) = messages_in::to_chat(&req).unwrap();
        assert_eq!(serde_json::to_value(&chat.tool_choice).unwrap(), expected);
        assert_eq!(chat.parallel_tool_calls, parallel);
    }
}

#[test]
fn malformed_requests_are_client_errors() {
    for req in [
        json!({"max_tokens": 1, "messages": []}),
        json!({"model": "m", "messages": "hi"}),
        json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}),
        json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]}),
    ] {
        let err = messages_in::to_chat(&req)
            .err()
            .unwrap_or_else(|| panic!("accepted {req}"));
        assert!(err.is_client_error(), "{req}: {err}");
    }
}

#[test]
fn unsigned_reasoning_pieces_stay_in_one_thinking_block() {
    // LiteLLM-style upstreams repeat every reasoning delta as an unsigned block.
    let mut writer = MessagesStreamWriter::new("m");
    let mut bytes = Vec::new();
    for short in [
        json!({"delta": {"reasoning_content": "a", "thinking_blocks": [{"type": "thinking", "thinking": "a", "signature": ""}]}}),
        json!({"delta": {"reasoning_content": "b", "thinking_blocks": [{"type": "thinking", "thinking": "b", "signature": ""}]}}),
        json!({"delta": {"content": "done"}, "finish_reason": "stop"}),
    ] {
        bytes.extend(writer.push(&chunk(&short)));
    }
    bytes.extend(writer.finish());
    let events = parse_sse(&bytes, "pieces");
    let starts: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "content_block_start")
        .map(|e| e["data"]["content_block"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(starts, ["thinking", "text"]);
}

#[test]
fn an_error_before_any_chunk_is_a_lone_error_event() {
    let mut writer = MessagesStreamWriter::new("m");
    let events = parse_sse(
        &writer.fail(ErrorKind::RateLimit, "slow down"),
        "early error",
    );
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["data"],
        json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    );
    assert!(
        writer
            .push(&chunk(&json!({"delta": {"content": "late"}})))
            .is_empty()
    );
}

/// What Claude Code does between turns: the answer's content goes back as the assistant
/// turn. The provider must see the turn it produced (signed thinking, tool calls).
#[test]
fn an_answer_replayed_as_history_gives_back_the_same_assistant_turn() {
    let completion: gatehouse_llm::openai::ChatCompletion = serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Both.",
            "reasoning_content": "Plan.",
            "thinking_blocks": [
                {"type": "thinking", "thinking": "Plan.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"}
            ],
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "echo", "arguments": "{\"text\":\"a\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "ls", "arguments": "{}"}}
            ]}}]
    }))
    .unwrap();
    let answer = messages_in::from_chat(&completion, "m");
    let req = json!({"model": "m", "max_tokens": 100, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": answer["content"]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "a"},
            {"type": "tool_result", "tool_use_id": "c2", "content": "."}
        ]},
    ]});
    let (chat, _) = messages_in::to_chat(&req).unwrap();
    let replayed = &chat.messages[1];
    let original = &completion.choices[0].message;
    assert_eq!(
        serde_json::to_value(&replayed.content).unwrap(),
        json!(original.content)
    );
    assert_eq!(replayed.tool_calls, original.tool_calls);
    assert_eq!(replayed.reasoning_content, original.reasoning_content);
    assert_eq!(replayed.thinking_blocks, original.thinking_blocks);
    assert_eq!(chat.messages.len(), 4);
}
