//! Focused behaviour tests for the Responses mappers (the goldens cover the common path).
#![allow(clippy::unwrap_used, clippy::panic)] // tests may unwrap/panic (project rule)

mod golden_util;

use gatehouse_llm::MapError;
use gatehouse_llm::openai::{ChatCompletion, MessageContent, Role};
use gatehouse_llm::responses::{self, ResponsesStreamWriter};
use golden_util::{chunk, parse_sse};
use serde_json::{Value, json};

fn completion_calling(name: &str) -> ChatCompletion {
    serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": "{}"}}]}}]
    }))
    .unwrap()
}

#[test]
fn a_namespaced_name_that_collides_with_a_plain_tool_gets_another_name_and_splits_back() {
    let req = json!({
        "model": "m", "input": "x",
        "tools": [
            {"type": "function", "name": "mcp__gw__echo", "parameters": {"type": "object"}},
            {"type": "namespace", "name": "mcp__gw", "tools": [{"type": "function", "name": "echo"}]},
        ],
    });
    let (chat, ctx) = responses::to_chat(&req).unwrap();
    let names: Vec<String> = chat
        .tools
        .unwrap()
        .into_iter()
        .map(|t| t.function.unwrap().name)
        .collect();
    assert_eq!(names.len(), 2);
    assert_eq!(names[0], "mcp__gw__echo");
    assert_ne!(names[1], names[0], "names must stay unique");
    assert!(names[1].len() <= 64);
    assert_eq!(ctx.split_name(&names[1]), (Some("mcp__gw"), "echo"));
    assert_eq!(ctx.split_name("mcp__gw__echo"), (None, "mcp__gw__echo"));

    // The plain tool's call stays plain; the namespaced one is split back.
    let plain = responses::from_chat(&completion_calling("mcp__gw__echo"), &ctx, "resp_1", 1);
    assert_eq!(plain["output"][0]["name"], "mcp__gw__echo");
    assert!(plain["output"][0].get("namespace").is_none());
    let namespaced = responses::from_chat(&completion_calling(&names[1]), &ctx, "resp_1", 1);
    assert_eq!(namespaced["output"][0]["name"], "echo");
    assert_eq!(namespaced["output"][0]["namespace"], "mcp__gw");
}

#[test]
fn a_replayed_call_keeps_the_flat_name_of_its_namespace_tool() {
    let long = "a_very_long_tool_name_that_does_not_fit_into_sixty_four_characters_at_all";
    let req = json!({
        "model": "m",
        "tools": [{"type": "namespace", "name": "mcp__srv", "tools": [{"type": "function", "name": long}]}],
        "input": [
            {"type": "function_call", "call_id": "c1", "name": long, "namespace": "mcp__srv", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        ],
    });
    let (chat, ctx) = responses::to_chat(&req).unwrap();
    let tool_name = chat.tools.unwrap()[0]
        .function
        .as_ref()
        .unwrap()
        .name
        .clone();
    let call_name = chat.messages[0].tool_calls.as_ref().unwrap()[0]
        .function
        .name
        .clone();
    assert_eq!(call_name, tool_name);
    assert!(tool_name.len() <= 64, "{tool_name}");
    assert_eq!(ctx.split_name(&tool_name), (Some("mcp__srv"), long));
}

#[test]
fn malformed_or_unsupported_requests_are_client_errors() {
    for (req, what) in [
        (json!({"input": "x"}), "missing model"),
        (json!({"model": "m", "input": 5}), "bad input"),
        (
            json!({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}),
            "item_reference",
        ),
        (
            json!({"model": "m", "input": [{"type": "message", "role": "critic", "content": "x"}]}),
            "bad role",
        ),
        (
            json!({"model": "m", "input": "x", "max_output_tokens": -1}),
            "negative max_output_tokens",
        ),
    ] {
        let err = responses::to_chat(&req)
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(err.is_client_error(), "{what}: {err}");
    }
    assert!(matches!(
        responses::to_chat(
            &json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]})
        ),
        Err(MapError::Unsupported(_))
    ));
}

#[test]
fn hosted_and_unknown_tools_are_dropped_and_listed_mcp_tools_kept_aside() {
    let req = json!({"model": "m", "input": "x", "tool_choice": "required", "tools": [
        {"type": "web_search_preview"}, {"type": "future_tool", "name": "z"},
        {"type": "mcp", "server_label": "docs", "server_url": "https://d.example/mcp"},
    ]});
    let (chat, ctx) = responses::to_chat(&req).unwrap();
    assert_eq!(chat.tools, None);
    assert_eq!(chat.tool_choice, None, "no tool_choice without tools");
    assert_eq!(ctx.dropped_tools, ["web_search_preview", "future_tool"]);
    assert_eq!(ctx.mcp_tools.len(), 1);
    assert_eq!(ctx.ignored, ["tool_choice"]);
}

#[test]
fn reasoning_before_a_user_message_is_not_attached_to_a_later_assistant_turn() {
    let req = json!({"model": "m", "input": [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "stale"}]},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "hello"}]},
    ]});
    let (chat, _) = responses::to_chat(&req).unwrap();
    assert_eq!(chat.messages.len(), 2);
    assert_eq!(chat.messages[1].role, Role::Assistant);
    assert_eq!(chat.messages[1].reasoning_content, None);
    assert_eq!(
        chat.messages[1].content,
        Some(MessageContent::Text("hello".to_owned()))
    );
}

#[test]
fn an_empty_stream_still_opens_and_completes_the_response() {
    let (_, ctx) =
        responses::to_chat(&json!({"model": "m", "input": "x", "stream": true})).unwrap();
    let mut writer = ResponsesStreamWriter::new(ctx, "resp_e", 7);
    let mut bytes = writer.start();
    assert!(writer.start().is_empty(), "start is idempotent");
    bytes.extend(writer.finish());
    let events = parse_sse(&bytes, "empty");
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "response.created",
            "response.in_progress",
            "response.completed"
        ]
    );
    assert_eq!(events[2]["data"]["response"]["output"], json!([]));
    assert_eq!(events[2]["data"]["response"]["status"], "completed");
}

#[test]
fn text_after_a_tool_call_gets_a_new_item_with_the_next_output_index() {
    let (_, ctx) = responses::to_chat(&json!({"model": "m", "input": "x", "stream": true,
        "tools": [{"type": "function", "name": "f"}]}))
    .unwrap();
    let mut writer = ResponsesStreamWriter::new(ctx, "resp_t", 7);
    let mut bytes = Vec::new();
    for short in [
        json!({"delta": {"content": "a"}}),
        json!({"delta": {"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]}}),
        json!({"delta": {"content": "b"}}),
    ] {
        bytes.extend(writer.push(&chunk(&short)));
    }
    bytes.extend(writer.finish());
    let events = parse_sse(&bytes, "interleaved");
    let added: Vec<(u64, String)> = events
        .iter()
        .filter(|e| e["event"] == "response.output_item.added")
        .map(|e| {
            (
                e["data"]["output_index"].as_u64().unwrap(),
                e["data"]["item"]["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        added,
        [
            (0, "message".to_owned()),
            (1, "function_call".to_owned()),
            (2, "message".to_owned())
        ]
    );
    // Every item is closed exactly once, in order.
    let done: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "response.output_item.done")
        .map(|e| e["data"]["output_index"].as_u64().unwrap())
        .collect();
    assert_eq!(done, [0, 1, 2]);
    let last = &events.last().unwrap()["data"]["response"]["output"];
    assert_eq!(last.as_array().map(Vec::len), Some(3));
    assert_eq!(last[2]["content"][0]["text"], Value::from("b"));
}

/// What Codex does between turns: the answer's output items go back as input. The
/// assistant turn the provider sees next must equal the one it produced (signed
/// thinking, namespaced call names), or a signed-thinking provider rejects the turn.
#[test]
fn an_answer_replayed_as_input_gives_back_the_same_assistant_turn() {
    let tools = json!([
        {"type": "function", "name": "shell", "parameters": {"type": "object"}},
        {"type": "namespace", "name": "mcp__gw", "tools": [{"type": "function", "name": "echo"}]},
    ]);
    let (_, ctx) =
        responses::to_chat(&json!({"model": "m", "input": "go", "tools": tools})).unwrap();
    let completion: ChatCompletion = serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Both.",
            "reasoning_content": "Plan.",
            "thinking_blocks": [
                {"type": "thinking", "thinking": "Plan.", "signature": "sig"},
                {"type": "redacted_thinking", "data": "opaque"}
            ],
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "mcp__gw__echo", "arguments": "{\"text\":\"a\"}"}},
                {"id": "c2", "type": "function", "function": {"name": "shell", "arguments": "{}"}}
            ]}}]
    }))
    .unwrap();
    let answer = responses::from_chat(&completion, &ctx, "resp_1", 1);

    let mut input = vec![json!({"role": "user", "content": "go"})];
    input.extend(answer["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": "c1", "output": "a"}));
    let (next, _) =
        responses::to_chat(&json!({"model": "m", "input": input, "tools": tools})).unwrap();

    let replayed = &next.messages[1];
    let original = &completion.choices[0].message;
    assert_eq!(replayed.role, Role::Assistant);
    assert_eq!(
        replayed.content,
        Some(MessageContent::Text("Both.".to_owned()))
    );
    assert_eq!(replayed.tool_calls, original.tool_calls);
    assert_eq!(replayed.reasoning_content, original.reasoning_content);
    assert_eq!(replayed.thinking_blocks, original.thinking_blocks);
    assert_eq!(next.messages[2].tool_call_id.as_deref(), Some("c1"));
}
