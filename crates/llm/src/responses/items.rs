//! Builders for Responses output items and the `response` object, shared by the
//! non-stream mapper and the stream writer so both produce identical shapes.

use serde_json::{Map, Value, json};

use super::request::ResponsesContext;
use crate::openai::Usage;

/// Marks `encrypted_content` written by this gateway: the rest is the JSON array of the
/// provider's `thinking_blocks`. Anything else (OpenAI's real encrypted reasoning from a
/// native turn) is not ours to decode and is dropped when mapping to chat.
pub const ENCRYPTED_PREFIX: &str = "gatehouse.thinking.v1:";

/// Id of an output item: `<prefix>_<response id core>_<output index>`, deterministic so
/// the stream and a later non-stream rendering of the same answer agree.
pub(crate) fn item_id(prefix: &str, response_id: &str, output_index: usize) -> String {
    let core = response_id.strip_prefix("resp_").unwrap_or(response_id);
    format!("{prefix}_{core}_{output_index}")
}

pub(crate) fn output_text_part(text: &str) -> Value {
    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
}

pub(crate) fn message_item(id: &str, status: &str, text: Option<&str>) -> Value {
    let content: Vec<Value> = text.map(output_text_part).into_iter().collect();
    json!({"id": id, "type": "message", "status": status, "content": content, "role": "assistant"})
}

pub(crate) fn summary_part(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

/// A reasoning item. The chat `reasoning_content` is the provider's raw thinking; it is
/// reported as the summary, which is what Responses clients display.
/// Only replayable blocks (signed thinking, redacted thinking) go into
/// `encrypted_content`; unsigned ones are already in the summary text.
pub(crate) fn reasoning_item(id: &str, text: &str, blocks: &[Value]) -> Value {
    let summary: Vec<Value> = if text.is_empty() {
        Vec::new()
    } else {
        vec![summary_part(text)]
    };
    let mut item = json!({"id": id, "type": "reasoning", "summary": summary});
    let replayable: Vec<Value> = blocks
        .iter()
        .filter(|b| is_replayable(b))
        .cloned()
        .collect();
    if !replayable.is_empty()
        && let Some(obj) = item.as_object_mut()
    {
        let encoded = format!("{ENCRYPTED_PREFIX}{}", Value::Array(replayable));
        obj.insert("encrypted_content".to_owned(), Value::String(encoded));
    }
    item
}

fn is_replayable(block: &Value) -> bool {
    let field = |name: &str| block.get(name).and_then(Value::as_str).unwrap_or("");
    match field("type") {
        "thinking" => !field("signature").is_empty(),
        "redacted_thinking" => !field("data").is_empty(),
        _ => false,
    }
}

/// A tool call item for the chat function `flat_name`: a `function_call` (with its
/// `namespace` split back out when the tool came from one) or, for a custom (freeform)
/// tool, a `custom_tool_call` whose `input` is the `input` string argument.
pub(crate) fn call_item(
    ctx: &ResponsesContext,
    id: &str,
    status: &str,
    call_id: &str,
    flat_name: &str,
    arguments: &str,
) -> Value {
    if ctx.custom_tools.contains(flat_name) {
        return json!({
            "id": id, "type": "custom_tool_call", "status": status, "call_id": call_id,
            "input": custom_input(arguments), "name": flat_name,
        });
    }
    let mut item = json!({
        "id": id, "type": "function_call", "status": status, "arguments": arguments,
        "call_id": call_id,
    });
    if let Some(obj) = item.as_object_mut() {
        match ctx.namespaced.get(flat_name) {
            Some(ns) => {
                obj.insert("name".to_owned(), json!(ns.name));
                obj.insert("namespace".to_owned(), json!(ns.namespace));
            }
            None => {
                obj.insert("name".to_owned(), json!(flat_name));
            }
        }
    }
    item
}

/// The freeform input of a custom tool call, from the chat arguments `{"input": "..."}`.
/// Arguments that are not that shape are passed on raw rather than lost.
pub(crate) fn custom_input(arguments: &str) -> String {
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(obj)) => match obj.get("input") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => arguments.to_owned(),
        },
        _ => arguments.to_owned(),
    }
}

/// Responses usage from chat usage.
pub(crate) fn usage_value(usage: &Usage) -> Value {
    let cached = usage
        .prompt_tokens_details
        .as_ref()
        .map_or(0, |d| d.cached_tokens);
    let reasoning = usage
        .completion_tokens_details
        .as_ref()
        .map_or(0, |d| d.reasoning_tokens);
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": usage.total_tokens,
    })
}

/// What a finished answer's `status` and `incomplete_details` are.
pub(crate) fn status_for(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// One state of the response object.
pub(crate) struct ResponseState<'a> {
    pub id: &'a str,
    pub created: u64,
    pub status: &'a str,
    pub error: Value,
    pub incomplete_details: Value,
    pub output: Vec<Value>,
    pub usage: Option<&'a Usage>,
}

/// The `response` object: the state plus the request parameters OpenAI echoes back.
pub(crate) fn response_object(ctx: &ResponsesContext, state: ResponseState<'_>) -> Value {
    let mut obj = Map::new();
    obj.insert("id".to_owned(), json!(state.id));
    obj.insert("object".to_owned(), json!("response"));
    obj.insert("created_at".to_owned(), json!(state.created));
    obj.insert("status".to_owned(), json!(state.status));
    obj.insert("error".to_owned(), state.error);
    obj.insert("incomplete_details".to_owned(), state.incomplete_details);
    obj.insert("model".to_owned(), json!(ctx.model));
    obj.insert("output".to_owned(), Value::Array(state.output));
    obj.insert(
        "usage".to_owned(),
        state.usage.map_or(Value::Null, usage_value),
    );
    for (key, value) in &ctx.echo {
        obj.insert(key.clone(), value.clone());
    }
    Value::Object(obj)
}
