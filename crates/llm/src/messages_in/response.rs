//! Chat completion -> Anthropic Messages `message` object.

use serde_json::{Value, json};

use crate::openai::{ChatCompletion, Usage};

/// Renders a chat completion (choice 0) as a Messages response for `public_model`.
pub fn from_chat(completion: &ChatCompletion, public_model: &str) -> Value {
    let choice = completion.choices.iter().find(|c| c.index == 0);
    let mut content = Vec::new();
    let mut has_tools = false;
    if let Some(msg) = choice.map(|c| &c.message) {
        content.extend(thinking_blocks(
            msg.reasoning_content.as_deref(),
            msg.thinking_blocks.as_deref(),
        ));
        if let Some(text) = msg.content.as_deref().filter(|t| !t.is_empty()) {
            content.push(json!({"type": "text", "text": text}));
        }
        for call in msg.tool_calls.iter().flatten() {
            has_tools = true;
            content.push(json!({
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": tool_input(&call.function.arguments),
            }));
        }
    }
    let finish = choice.and_then(|c| c.finish_reason.as_deref());
    json!({
        "id": message_id(&completion.id),
        "type": "message",
        "role": "assistant",
        "model": public_model,
        "content": content,
        "stop_reason": stop_reason(finish, has_tools),
        "stop_sequence": null,
        "usage": completion.usage.as_ref().map_or_else(|| usage_value(&Usage::default()), usage_value),
    })
}

/// Signed `thinking_blocks` are returned as they are (Claude Code sends them back);
/// bare reasoning text becomes an unsigned thinking block.
pub(crate) fn thinking_blocks(reasoning: Option<&str>, blocks: Option<&[Value]>) -> Vec<Value> {
    match blocks.filter(|b| !b.is_empty()) {
        Some(blocks) => blocks.to_vec(),
        None => reasoning
            .filter(|r| !r.is_empty())
            .map(|r| json!({"type": "thinking", "thinking": r, "signature": ""}))
            .into_iter()
            .collect(),
    }
}

/// Chat arguments (a JSON string) -> the `input` object. Empty means no arguments.
/// Arguments that are not a JSON object are kept under `_raw_arguments` rather than
/// replaced by `{}`: the client's schema check then reports the bad call to the model
/// (which can retry) instead of running the tool with no arguments.
pub(crate) fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({ "_raw_arguments": arguments }),
    }
}

/// `msg_` id for a chat completion id (`chatcmpl-X` -> `msg_X`), stateless so both
/// sides' logs correlate.
pub fn message_id(chat_id: &str) -> String {
    if chat_id.starts_with("msg_") {
        return chat_id.to_owned();
    }
    let core = chat_id.strip_prefix("chatcmpl-").unwrap_or(chat_id);
    format!("msg_{core}")
}

/// Chat `finish_reason` -> Anthropic `stop_reason`. Some providers finish a tool-call
/// turn with `stop`; the presence of tool calls decides.
pub fn stop_reason(finish_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("content_filter") => "refusal",
        Some("tool_calls" | "function_call") => "tool_use",
        _ if has_tool_calls => "tool_use",
        _ => "end_turn",
    }
}

/// Anthropic usage from chat usage. Anthropic's `input_tokens` excludes cache reads and
/// writes, which chat's `prompt_tokens` includes (cache writes are known when the
/// provider reported `cache_creation_input_tokens`, as the Anthropic adapter does).
pub fn usage_value(usage: &Usage) -> Value {
    let cache_read = usage
        .prompt_tokens_details
        .as_ref()
        .map_or(0, |d| d.cached_tokens);
    let cache_write = usage
        .rest
        .get("cache_creation_input_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    json!({
        "input_tokens": usage.prompt_tokens.saturating_sub(cache_read + cache_write),
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "output_tokens": usage.completion_tokens,
    })
}
