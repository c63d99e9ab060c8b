//! Bedrock Converse response -> OpenAI `chat.completion`.

use serde_json::{Value, json};

use super::wire::{ConverseResponse, Usage};
use crate::MapError;
use crate::openai::{
    self, ChatCompletion, Choice, FunctionCall, PromptTokensDetails, ResponseMessage, ToolCall,
};

/// Maps a non-stream Converse body. Converse answers carry no id, so `id` (the gateway's
/// request id) names the completion; `created` is the Unix time to report.
pub fn converse_to_chat(
    body: &[u8],
    public_model: &str,
    id: &str,
    created: u64,
) -> Result<ChatCompletion, MapError> {
    let resp: ConverseResponse =
        serde_json::from_slice(body).map_err(|e| MapError::InvalidUpstream(e.to_string()))?;
    let blocks = resp
        .output
        .and_then(|o| o.message)
        .map(|m| m.content)
        .unwrap_or_default();
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        if let Some(t) = block.text {
            text.push_str(&t);
        } else if let Some(tool) = block.tool_use {
            tool_calls.push(ToolCall {
                id: tool.tool_use_id,
                kind: "function".to_owned(),
                function: FunctionCall {
                    name: tool.name,
                    arguments: if tool.input.is_null() {
                        "{}".to_owned()
                    } else {
                        tool.input.to_string()
                    },
                },
                rest: Default::default(),
            });
        } else if let Some(r) = block.reasoning_content {
            if let Some(rt) = r.reasoning_text {
                reasoning.push_str(&rt.text);
                thinking_blocks.push(json!({"type": "thinking", "thinking": rt.text,
                    "signature": rt.signature.unwrap_or_default()}));
            } else if let Some(data) = r.redacted_content {
                thinking_blocks.push(json!({"type": "redacted_thinking", "data": data}));
            }
        }
    }
    let has_tools = !tool_calls.is_empty();
    Ok(ChatCompletion {
        id: chat_id(id),
        object: "chat.completion".to_owned(),
        created,
        model: public_model.to_owned(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: "assistant".to_owned(),
                content: (!text.is_empty() || !has_tools).then_some(text),
                tool_calls: has_tools.then_some(tool_calls),
                reasoning_content: (!thinking_blocks.is_empty()).then_some(reasoning),
                thinking_blocks: (!thinking_blocks.is_empty()).then_some(thinking_blocks),
                rest: Default::default(),
            },
            finish_reason: Some(finish_reason(resp.stop_reason.as_deref(), has_tools).to_owned()),
            logprobs: None,
        }],
        usage: resp.usage.as_ref().map(usage_to_openai),
        rest: Default::default(),
    })
}

pub(crate) fn chat_id(id: &str) -> String {
    if id.starts_with("chatcmpl-") {
        id.to_owned()
    } else {
        format!("chatcmpl-{id}")
    }
}

/// Converse `stopReason` -> OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match stop_reason {
        Some("tool_use") => "tool_calls",
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("guardrail_intervened" | "content_filtered") => "content_filter",
        None if has_tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// Converse's `inputTokens` excludes cache reads and writes (as Anthropic's does);
/// OpenAI's `prompt_tokens` includes them, with the reads in `cached_tokens`.
pub fn usage_to_openai(usage: &Usage) -> openai::Usage {
    let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
    let cache_write = usage.cache_write_input_tokens.unwrap_or(0);
    let prompt = usage.input_tokens + cache_read + cache_write;
    let mut rest = serde_json::Map::new();
    if let Some(n) = usage.cache_write_input_tokens {
        rest.insert("cache_creation_input_tokens".to_owned(), Value::from(n));
    }
    if let Some(n) = usage.cache_read_input_tokens {
        rest.insert("cache_read_input_tokens".to_owned(), Value::from(n));
    }
    openai::Usage {
        prompt_tokens: prompt,
        completion_tokens: usage.output_tokens,
        total_tokens: prompt + usage.output_tokens,
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: cache_read,
            rest: Default::default(),
        }),
        completion_tokens_details: None,
        rest,
    }
}
