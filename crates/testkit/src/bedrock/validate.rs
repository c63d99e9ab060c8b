//! Request checks Bedrock applies to Converse / ConverseStream (wording from the
//! service's `ValidationException` messages).

use serde_json::{Map, Value};

use super::errors::ApiError;
use crate::plan::{LastTurn, count_tokens};

pub(crate) struct ConverseRequest<'a> {
    pub tools: Vec<&'a str>,
    pub input_tokens: u64,
    messages: &'a [Value],
}

const TOP_LEVEL: &[&str] = &[
    "messages",
    "system",
    "inferenceConfig",
    "toolConfig",
    "guardrailConfig",
    "additionalModelRequestFields",
    "additionalModelResponseFieldPaths",
    "promptVariables",
    "requestMetadata",
    "performanceConfig",
];

const BLOCKS: &[&str] = &[
    "text",
    "image",
    "document",
    "video",
    "toolUse",
    "toolResult",
    "guardContent",
    "cachePoint",
    "reasoningContent",
];

const INFERENCE: &[&str] = &["maxTokens", "temperature", "topP", "stopSequences"];

fn extraneous(key: &str, at: &str) -> ApiError {
    ApiError::validation(format!(
        "1 validation error detected: extraneous key [{key}] is not permitted at {at}"
    ))
}

fn only(obj: &Map<String, Value>, known: &[&str], at: &str) -> Result<(), ApiError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(extraneous(k, at)),
        None => Ok(()),
    }
}

fn blocks(m: &Value) -> &[Value] {
    m.get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn role(m: &Value) -> &str {
    m.get("role").and_then(Value::as_str).unwrap_or_default()
}

fn valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn ids<'a>(m: &'a Value, block: &str, field: &str) -> Vec<&'a str> {
    blocks(m)
        .iter()
        .filter_map(|b| b.get(block)?.get(field)?.as_str())
        .collect()
}

fn text_of(m: &Value) -> String {
    blocks(m)
        .iter()
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("")
}

pub(crate) fn validate(body: &Value) -> Result<ConverseRequest<'_>, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::validation(
            "Malformed input request, please reformat your input and try again.",
        ));
    };
    only(obj, TOP_LEVEL, "request")?;
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m.as_slice(),
        _ => {
            return Err(ApiError::validation(
                "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
            ));
        }
    };
    if role(&messages[0]) != "user" {
        return Err(ApiError::validation(
            "A conversation must start with a user message. Try again with a conversation that starts with a user message.",
        ));
    }
    let mut input_tokens = 0;
    let mut uses_tools = false;
    for (i, m) in messages.iter().enumerate() {
        let at = format!("messages.{i}");
        if let Some(o) = m.as_object() {
            only(o, &["role", "content"], &at)?;
        }
        let r = role(m);
        if !matches!(r, "user" | "assistant") {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{r}' at '{at}.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]"
            )));
        }
        if i > 0 && role(&messages[i - 1]) == r {
            return Err(ApiError::validation(
                "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.",
            ));
        }
        if blocks(m).is_empty() {
            return Err(ApiError::validation(format!(
                "The content field in the Message object at {at} is empty. Add a ContentBlock object to the content field and try again."
            )));
        }
        for (j, block) in blocks(m).iter().enumerate() {
            let Some(b) = block.as_object() else {
                return Err(ApiError::validation(format!(
                    "{at}.content.{j} is not an object"
                )));
            };
            only(b, BLOCKS, &format!("{at}.content.{j}"))?;
            if b.len() != 1 {
                return Err(ApiError::validation(format!(
                    "Exactly one member of ContentBlock must be set at {at}.content.{j}"
                )));
            }
            if let Some(t) = b.get("text")
                && t.as_str().is_none_or(|t| t.trim().is_empty())
            {
                return Err(ApiError::validation(format!(
                    "The text field in the ContentBlock object at {at}.content.{j} is blank. Add text to the text field, and try again."
                )));
            }
            if b.contains_key("toolUse") || b.contains_key("toolResult") {
                uses_tools = true;
            }
            if let Some(input) = b.get("toolUse").and_then(|t| t.get("input"))
                && !input.is_object()
            {
                return Err(ApiError::validation(format!(
                    "The format of the value at {at}.content.{j}.toolUse.input is invalid. Provide a json object for the field and try again."
                )));
            }
        }
        // Every toolUse of an assistant turn needs its toolResult in the next user turn.
        if r == "user" && i > 0 {
            let expected = ids(&messages[i - 1], "toolUse", "toolUseId");
            let given = ids(m, "toolResult", "toolUseId");
            if let Some(stray) = given.iter().find(|id| !expected.contains(id)) {
                return Err(ApiError::validation(format!(
                    "The toolResult blocks at {at}.content contain a toolUseId that does not match a toolUse in the previous turn: {stray}"
                )));
            }
            let missing: Vec<&str> = expected
                .iter()
                .filter(|id| !given.contains(id))
                .copied()
                .collect();
            if !missing.is_empty() {
                return Err(ApiError::validation(format!(
                    "Expected toolResult blocks at {at}.content for the following Ids: {}",
                    missing.join(", ")
                )));
            }
        }
        input_tokens += count_tokens(&text_of(m));
    }
    for (i, s) in obj
        .get("system")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if let Some(o) = s.as_object() {
            only(
                o,
                &["text", "guardContent", "cachePoint"],
                &format!("system.{i}"),
            )?;
        }
        input_tokens += count_tokens(s.get("text").and_then(Value::as_str).unwrap_or(""));
    }
    if let Some(cfg) = obj.get("inferenceConfig") {
        let Some(cfg) = cfg.as_object() else {
            return Err(ApiError::validation("inferenceConfig must be an object"));
        };
        only(cfg, INFERENCE, "inferenceConfig")?;
        if let Some(t) = cfg.get("temperature").and_then(Value::as_f64)
            && !(0.0..=1.0).contains(&t)
        {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{t}' at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1"
            )));
        }
        if cfg.get("maxTokens").and_then(Value::as_u64) == Some(0) {
            return Err(ApiError::validation(
                "1 validation error detected: Value '0' at 'inferenceConfig.maxTokens' failed to satisfy constraint: Member must have value greater than or equal to 1",
            ));
        }
    }
    let mut tools = Vec::new();
    match obj.get("toolConfig") {
        None if uses_tools => {
            return Err(ApiError::validation(
                "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
            ));
        }
        None => {}
        Some(cfg) => {
            let Some(cfg) = cfg.as_object() else {
                return Err(ApiError::validation("toolConfig must be an object"));
            };
            only(cfg, &["tools", "toolChoice"], "toolConfig")?;
            let list = cfg
                .get("tools")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            if list.is_empty() {
                return Err(ApiError::validation(
                    "1 validation error detected: Value '[]' at 'toolConfig.tools' failed to satisfy constraint: Member must have length greater than or equal to 1",
                ));
            }
            for (i, tool) in list.iter().enumerate() {
                if tool.get("cachePoint").is_some() {
                    continue;
                }
                let Some(spec) = tool.get("toolSpec").and_then(Value::as_object) else {
                    return Err(ApiError::validation(format!(
                        "toolConfig.tools.{i} must hold a toolSpec"
                    )));
                };
                only(
                    spec,
                    &["name", "description", "inputSchema"],
                    &format!("toolConfig.tools.{i}.toolSpec"),
                )?;
                let name = spec.get("name").and_then(Value::as_str).unwrap_or_default();
                if !valid_tool_name(name) {
                    return Err(ApiError::validation(format!(
                        "1 validation error detected: Value '{name}' at 'toolConfig.tools.{i}.member.toolSpec.name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_-]+"
                    )));
                }
                if !spec
                    .get("inputSchema")
                    .and_then(|s| s.get("json"))
                    .is_some_and(Value::is_object)
                {
                    return Err(ApiError::validation(format!(
                        "toolConfig.tools.{i}.toolSpec.inputSchema.json must be a JSON object"
                    )));
                }
                tools.push(name);
            }
            if let Some(choice) = cfg.get("toolChoice") {
                let ok = choice.as_object().is_some_and(|c| {
                    c.len() == 1
                        && (c.contains_key("auto")
                            || c.contains_key("any")
                            || c.get("tool")
                                .and_then(|t| t.get("name"))
                                .and_then(Value::as_str)
                                .is_some_and(|n| tools.contains(&n)))
                });
                if !ok {
                    return Err(ApiError::validation(
                        "The value at toolConfig.toolChoice is invalid: exactly one of auto, any or tool (naming a defined tool) must be set.",
                    ));
                }
            }
        }
    }
    Ok(ConverseRequest {
        tools,
        input_tokens: input_tokens.max(1),
        messages,
    })
}

impl ConverseRequest<'_> {
    pub fn last_turn(&self) -> LastTurn {
        let Some(last) = self.messages.last() else {
            return LastTurn::UserText(String::new());
        };
        let results: Vec<String> = blocks(last)
            .iter()
            .filter_map(|b| b.get("toolResult"))
            .map(|r| {
                r.get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|c| match (c.get("text"), c.get("json")) {
                        (Some(Value::String(t)), _) => t.clone(),
                        (_, Some(j)) => j.to_string(),
                        _ => String::new(),
                    })
                    .collect::<Vec<_>>()
                    .join("")
            })
            .collect();
        if !results.is_empty() {
            return LastTurn::ToolResults(results);
        }
        LastTurn::UserText(text_of(last))
    }
}
