//! Responses request -> chat request.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use super::input::InputMapper;
use super::tools::{map_text_format, map_tool_choice, map_tools};
use crate::MapError;
use crate::openai::{ChatMessage, ChatRequest, MessageContent, Role, StreamOptions};

/// A chat function that stands for a function inside a namespace tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacedTool {
    pub namespace: String,
    pub name: String,
}

/// What the answer mapping and the gateway need to know about a mapped request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponsesContext {
    /// The model the client asked for (reported in the `response` object).
    pub model: String,
    pub stream: bool,
    /// `store` as sent (OpenAI's default is true); storing is the gateway's business.
    pub store: Option<bool>,
    /// Left for the gateway: it must prepend the stored conversation, or refuse.
    pub previous_response_id: Option<String>,
    /// Flat chat function name -> its namespace and name, to split calls back.
    pub namespaced: BTreeMap<String, NamespacedTool>,
    /// Chat function names that stand for custom (freeform-input) tools.
    pub custom_tools: BTreeSet<String>,
    /// Tools the provider cannot run, by type: hosted ones (`web_search`,
    /// `file_search`, `computer_use_preview`, `local_shell`, ...) and unknown types.
    pub dropped_tools: Vec<String>,
    /// `mcp` tools, verbatim, for the gateway's own MCP tool loop.
    pub mcp_tools: Vec<Value>,
    /// Input items that have no chat equivalent and were left out, by type.
    pub dropped_items: Vec<String>,
    /// Request fields accepted but not applied (for logging).
    pub ignored: Vec<String>,
    /// Request parameters echoed in the `response` object, in OpenAI's order.
    pub echo: Map<String, Value>,
}

impl ResponsesContext {
    /// `(namespace, name)` of a chat function name as the client knows it.
    pub fn split_name<'a>(&'a self, flat: &'a str) -> (Option<&'a str>, &'a str) {
        match self.namespaced.get(flat) {
            Some(ns) => (Some(ns.namespace.as_str()), ns.name.as_str()),
            None => (None, flat),
        }
    }
}

/// Fields consumed below (everything else lands in `ignored`).
const HANDLED: &[&str] = &[
    "model",
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "temperature",
    "top_p",
    "reasoning",
    "text",
    "stream",
    "store",
    "previous_response_id",
    "metadata",
    "user",
    "safety_identifier",
];

/// Maps a Responses request body to a chat request for the same (public) model name.
pub fn to_chat(req: &Value) -> Result<(ChatRequest, ResponsesContext), MapError> {
    let obj = req
        .as_object()
        .ok_or_else(|| invalid("request body must be a JSON object"))?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("`model` is required"))?
        .to_owned();
    let mut ctx = ResponsesContext {
        model: model.clone(),
        stream: obj.get("stream").and_then(Value::as_bool).unwrap_or(false),
        store: obj.get("store").and_then(Value::as_bool),
        previous_response_id: str_field(obj, "previous_response_id"),
        ..ResponsesContext::default()
    };

    let tools = map_tools(obj.get("tools"), &mut ctx)?;
    let tool_choice = match obj.get("tool_choice") {
        Some(choice) if tools.is_some() => map_tool_choice(choice, &mut ctx)?,
        Some(choice) if !choice.is_null() => {
            ctx.ignored.push("tool_choice".to_owned());
            None
        }
        _ => None,
    };

    let mut messages = Vec::new();
    if let Some(instructions) = str_field(obj, "instructions").filter(|s| !s.is_empty()) {
        messages.push(message(
            Role::System,
            Some(MessageContent::Text(instructions)),
        ));
    }
    let mut input = InputMapper::new(&ctx);
    match obj.get("input") {
        Some(Value::String(text)) => input.push_user_text(text),
        Some(Value::Array(items)) => {
            for item in items {
                input.push_item(item)?;
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => return Err(invalid("`input` must be a string or an array of items")),
    }
    let (input_messages, dropped_items) = input.finish();
    messages.extend(input_messages);
    ctx.dropped_items = dropped_items;

    let reasoning_effort = obj
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
        .map(|effort| match effort {
            // Codex's extra level for its own models; the chat scale tops out at high.
            "xhigh" => "high".to_owned(),
            other => other.to_owned(),
        });
    let response_format = obj
        .get("text")
        .and_then(|t| t.get("format"))
        .and_then(map_text_format);
    if obj
        .get("text")
        .and_then(|t| t.get("verbosity"))
        .is_some_and(|v| !v.is_null())
    {
        ctx.ignored.push("text.verbosity".to_owned());
    }

    let mut rest = Map::new();
    for key in ["metadata", "safety_identifier"] {
        if let Some(value) = obj.get(key).filter(|v| !v.is_null()) {
            rest.insert(key.to_owned(), value.clone());
        }
    }
    for key in obj.keys() {
        if !HANDLED.contains(&key.as_str()) && !obj[key].is_null() {
            ctx.ignored.push(key.clone());
        }
    }

    ctx.echo = echo_fields(obj);
    let chat = ChatRequest {
        model,
        messages,
        max_tokens: u32_field(obj, "max_output_tokens")?,
        max_completion_tokens: None,
        temperature: obj.get("temperature").and_then(Value::as_f64),
        top_p: obj.get("top_p").and_then(Value::as_f64),
        top_k: None,
        stop: None,
        stream: ctx.stream.then_some(true),
        // The `response.completed` event carries usage: always ask the provider for it.
        stream_options: ctx.stream.then(|| StreamOptions {
            include_usage: Some(true),
            rest: Map::new(),
        }),
        parallel_tool_calls: tools
            .as_ref()
            .and(obj.get("parallel_tool_calls"))
            .and_then(Value::as_bool),
        tools,
        tool_choice,
        user: str_field(obj, "user"),
        reasoning_effort,
        thinking: None,
        response_format,
        rest,
    };
    Ok((chat, ctx))
}

pub(super) fn invalid(msg: &str) -> MapError {
    MapError::InvalidRequest(msg.to_owned())
}

fn str_field(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn u32_field(obj: &Map<String, Value>, key: &str) -> Result<Option<u32>, MapError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| MapError::InvalidRequest(format!("`{key}` must be a positive integer"))),
    }
}

pub(super) fn message(role: Role, content: Option<MessageContent>) -> ChatMessage {
    ChatMessage {
        role,
        content,
        name: None,
        tool_calls: None,
        tool_call_id: None,
        reasoning_content: None,
        thinking_blocks: None,
        rest: Map::new(),
    }
}

/// The request parameters a `response` object reports, with OpenAI's defaults.
fn echo_fields(obj: &Map<String, Value>) -> Map<String, Value> {
    let get = |key: &str, default: Value| {
        obj.get(key)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(default)
    };
    let mut echo = Map::new();
    echo.insert("instructions".to_owned(), get("instructions", Value::Null));
    echo.insert(
        "max_output_tokens".to_owned(),
        get("max_output_tokens", Value::Null),
    );
    echo.insert(
        "parallel_tool_calls".to_owned(),
        get("parallel_tool_calls", json!(true)),
    );
    echo.insert(
        "previous_response_id".to_owned(),
        get("previous_response_id", Value::Null),
    );
    echo.insert(
        "reasoning".to_owned(),
        get("reasoning", json!({"effort": null, "summary": null})),
    );
    echo.insert("store".to_owned(), get("store", json!(true)));
    echo.insert("temperature".to_owned(), get("temperature", json!(1.0)));
    echo.insert(
        "text".to_owned(),
        get("text", json!({"format": {"type": "text"}})),
    );
    echo.insert("tool_choice".to_owned(), get("tool_choice", json!("auto")));
    echo.insert("tools".to_owned(), get("tools", json!([])));
    echo.insert("top_p".to_owned(), get("top_p", json!(1.0)));
    echo.insert(
        "truncation".to_owned(),
        get("truncation", json!("disabled")),
    );
    echo.insert("user".to_owned(), get("user", Value::Null));
    echo.insert("metadata".to_owned(), get("metadata", json!({})));
    echo
}
