//! Request checks OpenAI applies to `POST /v1/chat/completions`, with its messages.

use serde_json::Value;

use super::errors::ApiError;
use crate::plan::LastTurn;

/// What the handler needs from a valid request.
pub(crate) struct ChatRequest<'a> {
    pub model: &'a str,
    pub stream: bool,
    pub include_usage: bool,
    pub tools: Vec<&'a str>,
    pub prompt_tokens: u64,
    messages: &'a [Value],
}

impl ChatRequest<'_> {
    /// The end of the conversation, for the default answer.
    pub fn last_turn(&self) -> LastTurn {
        let trailing_tools: Vec<String> = self
            .messages
            .iter()
            .rev()
            .take_while(|m| role(m) == Some("tool"))
            .map(content_text)
            .collect();
        if !trailing_tools.is_empty() {
            return LastTurn::ToolResults(trailing_tools.into_iter().rev().collect());
        }
        let text = self
            .messages
            .iter()
            .rev()
            .find(|m| role(m) == Some("user"))
            .map(content_text)
            .unwrap_or_default();
        LastTurn::UserText(text)
    }
}

const ROLES: [&str; 6] = [
    "system",
    "assistant",
    "user",
    "function",
    "tool",
    "developer",
];

fn role(m: &Value) -> Option<&str> {
    m.get("role").and_then(Value::as_str)
}

/// Text of a `content` that is a string or an array of `{type:"text",text}` parts.
pub(crate) fn content_text(m: &Value) -> String {
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn missing(param: &str) -> ApiError {
    ApiError::invalid(
        format!("Missing required parameter: '{param}'."),
        Some(param.to_owned()),
        Some("missing_required_parameter"),
    )
}

pub(crate) fn no_model() -> ApiError {
    ApiError::invalid("you must provide a model parameter", None, None)
}

/// `^[a-zA-Z0-9_-]{1,64}$`, reported the way OpenAI does.
pub(crate) fn check_tool_name(name: &str, param: String) -> Result<(), ApiError> {
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        || name.is_empty()
    {
        return Err(ApiError::invalid(
            format!(
                "Invalid '{param}': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
            ),
            Some(param),
            Some("invalid_value"),
        ));
    }
    if name.len() > 64 {
        return Err(ApiError::invalid(
            format!(
                "Invalid '{param}': string too long. Expected a string with maximum length 64, but got a string with length {} instead.",
                name.len()
            ),
            Some(param),
            Some("string_above_max_length"),
        ));
    }
    Ok(())
}

pub(crate) fn validate(body: &Value) -> Result<ChatRequest<'_>, ApiError> {
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.as_str(),
        _ => return Err(no_model()),
    };
    let messages = match body.get("messages") {
        None | Some(Value::Null) => return Err(missing("messages")),
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(ApiError::invalid(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
                Some("messages".to_owned()),
                Some("empty_array"),
            ));
        }
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => {
            return Err(ApiError::invalid(
                "Invalid type for 'messages': expected an array of objects, but got a non-array value instead.",
                Some("messages".to_owned()),
                Some("invalid_type"),
            ));
        }
    };
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let stream_options = body.get("stream_options").filter(|v| !v.is_null());
    if stream_options.is_some() && !stream {
        return Err(ApiError::invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            Some("stream_options".to_owned()),
            None,
        ));
    }
    let include_usage = stream_options
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);

    let mut tools = Vec::new();
    if let Some(Value::Array(list)) = body.get("tools") {
        for (i, tool) in list.iter().enumerate() {
            let Some(function) = tool.get("function") else {
                return Err(missing(&format!("tools[{i}].function")));
            };
            let Some(name) = function.get("name").and_then(Value::as_str) else {
                return Err(missing(&format!("tools[{i}].function.name")));
            };
            check_tool_name(name, format!("tools[{i}].function.name"))?;
            tools.push(name);
        }
    }

    let prompt_tokens = check_messages(messages)?;
    Ok(ChatRequest {
        model,
        stream,
        include_usage,
        tools,
        prompt_tokens,
        messages,
    })
}

/// Roles and tool-call pairing; returns the prompt token estimate.
fn check_messages(messages: &[Value]) -> Result<u64, ApiError> {
    // Ids of the assistant turn whose tool results may follow, and those still unanswered.
    let mut open: Option<(usize, Vec<&str>)> = None;
    let mut answered_block = false;
    let mut tokens = 3;
    for (i, m) in messages.iter().enumerate() {
        let Some(r) = m.get("role") else {
            return Err(missing(&format!("messages[{i}].role")));
        };
        let r = r.as_str().unwrap_or_default();
        if !ROLES.contains(&r) {
            return Err(ApiError::invalid(
                format!(
                    "Invalid value: '{r}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', and 'developer'."
                ),
                Some(format!("messages[{i}].role")),
                Some("invalid_value"),
            ));
        }
        tokens += 3 + crate::plan::count_tokens(&content_text(m));
        if r == "tool" {
            let Some((_, pending)) = open.as_mut().filter(|_| answered_block) else {
                return Err(ApiError::invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                    Some(format!("messages.[{i}].role")),
                    None,
                ));
            };
            let id = m
                .get("tool_call_id")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match pending.iter().position(|p| *p == id) {
                Some(pos) => {
                    pending.remove(pos);
                }
                None => {
                    return Err(ApiError::invalid(
                        format!(
                            "Invalid parameter: 'tool_call_id' of '{id}' not found in 'tool_calls' of previous message."
                        ),
                        Some(format!("messages.[{i}].tool_call_id")),
                        None,
                    ));
                }
            }
            continue;
        }
        unanswered(&open)?;
        open = None;
        answered_block = false;
        if r == "assistant"
            && let Some(Value::Array(calls)) = m.get("tool_calls")
            && !calls.is_empty()
        {
            let ids = calls
                .iter()
                .map(|c| c.get("id").and_then(Value::as_str).unwrap_or_default())
                .collect();
            for c in calls {
                if let Some(args) = c.pointer("/function/arguments").and_then(Value::as_str) {
                    tokens += crate::plan::count_tokens(args);
                }
            }
            open = Some((i, ids));
            answered_block = true;
        }
    }
    unanswered(&open)?;
    Ok(tokens)
}

fn unanswered(open: &Option<(usize, Vec<&str>)>) -> Result<(), ApiError> {
    match open {
        Some((at, pending)) if !pending.is_empty() => Err(ApiError::invalid(
            format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                pending.join(", ")
            ),
            Some(format!("messages.[{at}].role")),
            None,
        )),
        _ => Ok(()),
    }
}
