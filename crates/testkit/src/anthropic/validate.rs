//! Request checks Anthropic applies to `POST /v1/messages` and `/v1/messages/count_tokens`.

use serde_json::Value;

use super::errors::ApiError;
use crate::plan::{LastTurn, count_tokens};

pub(crate) struct MessagesRequest<'a> {
    pub model: &'a str,
    pub stream: bool,
    pub tools: Vec<&'a str>,
    pub input_tokens: u64,
    messages: &'a [Value],
}

fn role(m: &Value) -> &str {
    m.get("role").and_then(Value::as_str).unwrap_or_default()
}

fn blocks(m: &Value) -> &[Value] {
    match m.get("content") {
        Some(Value::Array(b)) => b,
        _ => &[],
    }
}

fn block_type(b: &Value) -> &str {
    b.get("type").and_then(Value::as_str).unwrap_or_default()
}

/// Text of a string-or-text-blocks value (message content, tool_result content, system).
fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| block_type(b) == "text")
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

impl MessagesRequest<'_> {
    pub fn last_turn(&self) -> LastTurn {
        if let Some(last) = self.messages.last()
            && role(last) == "user"
        {
            let results: Vec<String> = blocks(last)
                .iter()
                .filter(|b| block_type(b) == "tool_result")
                .map(|b| text_of(b.get("content")))
                .collect();
            if !results.is_empty() {
                return LastTurn::ToolResults(results);
            }
        }
        let text = self
            .messages
            .iter()
            .rev()
            .find(|m| role(m) == "user")
            .map(|m| text_of(m.get("content")))
            .unwrap_or_default();
        LastTurn::UserText(text)
    }
}

fn required(field: &str) -> ApiError {
    ApiError::invalid(format!("{field}: Field required"))
}

/// `require_max_tokens` is false for count_tokens.
pub(crate) fn validate(
    body: &Value,
    require_max_tokens: bool,
) -> Result<MessagesRequest<'_>, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid(
            "Input should be a valid dictionary or object to extract fields from",
        ));
    }
    let model = match body.get("model") {
        Some(Value::String(m)) => m.as_str(),
        _ => return Err(required("model")),
    };
    let messages = match body.get("messages") {
        Some(Value::Array(m)) => m.as_slice(),
        _ => return Err(required("messages")),
    };
    if require_max_tokens {
        match body.get("max_tokens") {
            None | Some(Value::Null) => return Err(required("max_tokens")),
            Some(v) if v.as_u64().is_none() => {
                return Err(ApiError::invalid(
                    "max_tokens: Input should be a valid integer",
                ));
            }
            Some(v) if v.as_u64() == Some(0) => {
                return Err(ApiError::invalid(
                    "max_tokens: Input should be greater than or equal to 1",
                ));
            }
            Some(_) => {}
        }
    }
    if messages.is_empty() {
        return Err(ApiError::invalid(
            "messages: at least one message is required",
        ));
    }
    let mut tools = Vec::new();
    if let Some(Value::Array(list)) = body.get("tools") {
        for (i, tool) in list.iter().enumerate() {
            // Server tools (web_search_..., bash_...) carry a versioned `type`; only custom
            // tools are held to the name pattern.
            let custom = matches!(
                tool.get("type").and_then(Value::as_str),
                None | Some("custom")
            );
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                return Err(required(&format!("tools.{i}.custom.name")));
            };
            if custom && !valid_name(name) {
                return Err(ApiError::invalid(format!(
                    "tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
                )));
            }
            tools.push(name);
        }
    }
    let mut input_tokens = count_tokens(&text_of(body.get("system")));
    input_tokens += check_messages(messages)?;
    Ok(MessagesRequest {
        model,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        tools,
        input_tokens,
        messages,
    })
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Roles, ordering and tool_use/tool_result pairing. Consecutive messages with the same
/// role are accepted and treated as one turn, as the API does. Returns a token estimate.
fn check_messages(messages: &[Value]) -> Result<u64, ApiError> {
    let mut tokens = 0;
    for (i, m) in messages.iter().enumerate() {
        let r = role(m);
        if r != "user" && r != "assistant" {
            return Err(ApiError::invalid(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            )));
        }
        match m.get("content") {
            Some(Value::String(s)) => tokens += count_tokens(s),
            Some(Value::Array(bs)) => {
                for b in bs {
                    tokens += match block_type(b) {
                        "text" => {
                            count_tokens(b.get("text").and_then(Value::as_str).unwrap_or_default())
                        }
                        "tool_result" => count_tokens(&text_of(b.get("content"))),
                        "tool_use" => {
                            1 + b.get("input").map_or(0, |v| count_tokens(&v.to_string()))
                        }
                        _ => 1,
                    };
                }
            }
            _ => return Err(required(&format!("messages.{i}.content"))),
        }
        tokens += 3;
    }
    if role(&messages[0]) != "user" {
        return Err(ApiError::invalid(
            "messages: first message must use the \"user\" role",
        ));
    }

    // Turns: runs of same-role messages, as (first index, messages).
    let mut turns: Vec<(usize, &[Value])> = Vec::new();
    let mut start = 0;
    for i in 1..=messages.len() {
        if i == messages.len() || role(&messages[i]) != role(&messages[start]) {
            turns.push((start, &messages[start..i]));
            start = i;
        }
    }
    let mut prev_tool_uses: Vec<&str> = Vec::new();
    for &(first, msgs) in &turns {
        if role(&msgs[0]) == "user" {
            let mut answered = Vec::new();
            for (k, m) in msgs.iter().enumerate() {
                for (j, b) in blocks(m).iter().enumerate() {
                    if block_type(b) != "tool_result" {
                        continue;
                    }
                    let id = b
                        .get("tool_use_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !prev_tool_uses.contains(&id) {
                        return Err(ApiError::invalid(format!(
                            "messages.{}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
                            first + k
                        )));
                    }
                    answered.push(id);
                }
            }
            let missing: Vec<&str> = prev_tool_uses
                .iter()
                .copied()
                .filter(|id| !answered.contains(id))
                .collect();
            if !missing.is_empty() {
                return Err(ApiError::invalid(format!(
                    "messages.{first}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                    missing.join(", ")
                )));
            }
            prev_tool_uses.clear();
        } else {
            prev_tool_uses = msgs
                .iter()
                .flat_map(|m| blocks(m).iter())
                .filter(|b| block_type(b) == "tool_use")
                .map(|b| b.get("id").and_then(Value::as_str).unwrap_or_default())
                .collect();
        }
    }
    Ok(tokens)
}
