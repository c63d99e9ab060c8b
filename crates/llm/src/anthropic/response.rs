//! Anthropic Messages response -> OpenAI `chat.completion`.

use serde_json::{Value, json};

use super::wire::{MessagesResponse, ResponseBlock, Usage};
use crate::MapError;
use crate::openai::{
    self, ChatCompletion, Choice, FunctionCall, PromptTokensDetails, ResponseMessage, ToolCall,
};

/// Maps a non-stream Messages response body. `created` is the Unix time to report (the
/// caller owns the clock); `public_model` is the model name the client asked for.
pub fn messages_to_chat(
    body: &[u8],
    public_model: &str,
    created: u64,
) -> Result<ChatCompletion, MapError> {
    let resp: MessagesResponse =
        serde_json::from_slice(body).map_err(|e| MapError::InvalidUpstream(e.to_string()))?;
    Ok(response_to_chat(resp, public_model, created))
}

/// Same as [`messages_to_chat`] for an already-parsed JSON value.
pub fn messages_value_to_chat(
    body: Value,
    public_model: &str,
    created: u64,
) -> Result<ChatCompletion, MapError> {
    let resp: MessagesResponse =
        serde_json::from_value(body).map_err(|e| MapError::InvalidUpstream(e.to_string()))?;
    Ok(response_to_chat(resp, public_model, created))
}

fn response_to_chat(resp: MessagesResponse, public_model: &str, created: u64) -> ChatCompletion {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in resp.content {
        match block {
            ResponseBlock::Text { text: t } => text.push_str(&t),
            ResponseBlock::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                id,
                kind: "function".to_owned(),
                function: FunctionCall {
                    name,
                    arguments: arguments_string(&input),
                },
                rest: Default::default(),
            }),
            ResponseBlock::Thinking {
                thinking,
                signature,
            } => {
                reasoning.push_str(&thinking);
                thinking_blocks.push(thinking_block_value(&thinking, &signature));
            }
            ResponseBlock::RedactedThinking { data } => {
                thinking_blocks.push(redacted_block_value(&data));
            }
            ResponseBlock::Other => {}
        }
    }
    let has_tools = !tool_calls.is_empty();
    let message = ResponseMessage {
        role: "assistant".to_owned(),
        content: (!text.is_empty() || !has_tools).then_some(text),
        tool_calls: has_tools.then_some(tool_calls),
        reasoning_content: (!thinking_blocks.is_empty()).then_some(reasoning),
        thinking_blocks: (!thinking_blocks.is_empty()).then_some(thinking_blocks),
        rest: Default::default(),
    };
    ChatCompletion {
        id: chat_id(&resp.id),
        object: "chat.completion".to_owned(),
        created,
        model: public_model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: Some(finish_reason(resp.stop_reason.as_deref()).to_owned()),
            logprobs: None,
        }],
        usage: Some(usage_to_openai(&resp.usage)),
        rest: Default::default(),
    }
}

/// `input` is a JSON object; OpenAI carries it as a JSON string.
pub(crate) fn arguments_string(input: &Value) -> String {
    if input.is_null() {
        "{}".to_owned()
    } else {
        input.to_string()
    }
}

pub(crate) fn thinking_block_value(thinking: &str, signature: &str) -> Value {
    json!({"type": "thinking", "thinking": thinking, "signature": signature})
}

pub(crate) fn redacted_block_value(data: &str) -> Value {
    json!({"type": "redacted_thinking", "data": data})
}

/// Deterministic OpenAI id from the Anthropic message id (`msg_X` -> `chatcmpl-X`), so
/// logs on both sides correlate without keeping state.
pub fn chat_id(message_id: &str) -> String {
    let core = message_id.strip_prefix("msg_").unwrap_or(message_id);
    format!("chatcmpl-{core}")
}

/// Anthropic `stop_reason` -> OpenAI `finish_reason`. `pause_turn` (a server-tool loop
/// hit its limit) has no OpenAI equivalent; `stop` is the closest: the turn is usable.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Anthropic counts cached input separately; OpenAI's `prompt_tokens` includes it, with
/// the cache hits repeated in `prompt_tokens_details.cached_tokens`. The raw Anthropic
/// cache counters stay as extra fields (as LiteLLM reports them) for cost accounting.
pub fn usage_to_openai(usage: &Usage) -> openai::Usage {
    let input = usage.input_tokens.unwrap_or(0);
    let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
    let cache_write = usage.cache_creation_input_tokens.unwrap_or(0);
    let prompt = input + cache_read + cache_write;
    let completion = usage.output_tokens.unwrap_or(0);
    let mut rest = serde_json::Map::new();
    if let Some(n) = usage.cache_creation_input_tokens {
        rest.insert("cache_creation_input_tokens".to_owned(), json!(n));
    }
    if let Some(n) = usage.cache_read_input_tokens {
        rest.insert("cache_read_input_tokens".to_owned(), json!(n));
    }
    openai::Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: cache_read,
            rest: Default::default(),
        }),
        completion_tokens_details: None,
        rest,
    }
}
