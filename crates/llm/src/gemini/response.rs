//! Gemini `generateContent` response -> OpenAI `chat.completion`.

use serde_json::{Value, json};

use super::ids;
use super::wire::{Candidate, GenerateResponse, Part, UsageMetadata};
use crate::openai::{
    self, ChatCompletion, Choice, CompletionTokensDetails, FunctionCall, PromptTokensDetails,
    ResponseMessage, ToolCall,
};
use crate::{ErrorKind, MapError, UpstreamError};

/// Maps a non-stream `generateContent` body. `created` is the Unix time to report (the
/// caller owns the clock); `public_model` is the model name the client asked for.
pub fn gemini_to_chat(
    body: &[u8],
    public_model: &str,
    created: u64,
) -> Result<ChatCompletion, MapError> {
    let resp: GenerateResponse =
        serde_json::from_slice(body).map_err(|e| MapError::InvalidUpstream(e.to_string()))?;
    if let Some(err) = &resp.error {
        return Err(MapError::Upstream(super::error::upstream_error(err)));
    }
    let id = chat_id(&resp);
    let mut choices: Vec<Choice> = resp
        .candidates
        .iter()
        .enumerate()
        .map(|(i, c)| candidate_choice(c, i, &id))
        .collect();
    if choices.is_empty() {
        // The prompt itself was blocked: no candidates, only `promptFeedback`.
        let Some(reason) = resp
            .prompt_feedback
            .as_ref()
            .and_then(|f| f.block_reason.clone())
        else {
            return Err(MapError::InvalidUpstream(
                "Gemini answered without candidates".to_owned(),
            ));
        };
        return Err(MapError::Upstream(UpstreamError {
            kind: ErrorKind::ContentPolicy,
            error_type: reason.clone(),
            message: format!("the prompt was blocked by Gemini ({reason})"),
        }));
    }
    choices.sort_by_key(|c| c.index);
    Ok(ChatCompletion {
        id,
        object: "chat.completion".to_owned(),
        created,
        model: public_model.to_owned(),
        choices,
        usage: resp.usage_metadata.as_ref().map(usage_to_openai),
        rest: Default::default(),
    })
}

fn candidate_choice(candidate: &Candidate, position: usize, seed: &str) -> Choice {
    let index = candidate
        .index
        .unwrap_or(u32::try_from(position).unwrap_or(0));
    let parts = candidate
        .content
        .as_ref()
        .map(|c| c.parts.as_slice())
        .unwrap_or_default();
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for part in parts {
        if let Some(call) = tool_call(part, &format!("{seed}/{index}"), tool_calls.len()) {
            tool_calls.push(call);
        } else if let Some(t) = &part.text {
            if part.thought == Some(true) {
                reasoning.push_str(t);
            } else {
                text.push_str(t);
            }
        }
    }
    let has_tools = !tool_calls.is_empty();
    Choice {
        index,
        message: ResponseMessage {
            role: "assistant".to_owned(),
            content: (!text.is_empty() || !has_tools).then_some(text),
            tool_calls: has_tools.then_some(tool_calls),
            reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
            thinking_blocks: None,
            rest: Default::default(),
        },
        finish_reason: Some(
            finish_reason(candidate.finish_reason.as_deref(), has_tools).to_owned(),
        ),
        logprobs: None,
    }
}

/// A `functionCall` part as an OpenAI tool call (`number` = its position in the turn).
pub(crate) fn tool_call(part: &Part, seed: &str, number: usize) -> Option<ToolCall> {
    let call = part.function_call.as_ref()?;
    Some(ToolCall {
        id: ids::encode(
            call.id.as_deref(),
            ids::call_id(seed, number, &call.name),
            part.thought_signature.as_deref(),
        ),
        kind: "function".to_owned(),
        function: FunctionCall {
            name: call.name.clone(),
            arguments: arguments_string(&call.args),
        },
        rest: Default::default(),
    })
}

pub(crate) fn arguments_string(args: &Value) -> String {
    if args.is_null() {
        "{}".to_owned()
    } else {
        args.to_string()
    }
}

/// `chatcmpl-<responseId>` when Gemini sent one (it does on the Developer API).
pub(crate) fn chat_id(resp: &GenerateResponse) -> String {
    match &resp.response_id {
        Some(id) if !id.is_empty() => format!("chatcmpl-{id}"),
        _ => "chatcmpl-gemini".to_owned(),
    }
}

/// Gemini `finishReason` -> OpenAI `finish_reason`. Gemini reports `STOP` for a turn
/// that ends in function calls; OpenAI clients loop on `tool_calls`, so calls win.
pub fn finish_reason(reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match reason {
        Some("MAX_TOKENS") => "length",
        Some(
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
            | "LANGUAGE",
        ) => "content_filter",
        _ if has_tool_calls => "tool_calls",
        _ => "stop",
    }
}

/// Gemini's `promptTokenCount` already includes cached tokens (as OpenAI's
/// `prompt_tokens` does); `candidatesTokenCount` excludes thinking, which OpenAI counts
/// in `completion_tokens` (detailed in `reasoning_tokens`).
pub fn usage_to_openai(usage: &UsageMetadata) -> openai::Usage {
    let prompt = usage.prompt_token_count.unwrap_or(0);
    let thoughts = usage.thoughts_token_count.unwrap_or(0);
    let completion = usage.candidates_token_count.unwrap_or(0) + thoughts;
    let mut rest = serde_json::Map::new();
    if let Some(n) = usage.tool_use_prompt_token_count {
        rest.insert("tool_use_prompt_tokens".to_owned(), json!(n));
    }
    openai::Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: usage.total_token_count.unwrap_or(prompt + completion),
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: usage.cached_content_token_count.unwrap_or(0),
            rest: Default::default(),
        }),
        completion_tokens_details: usage.thoughts_token_count.map(|n| CompletionTokensDetails {
            reasoning_tokens: n,
            rest: Default::default(),
        }),
        rest,
    }
}
