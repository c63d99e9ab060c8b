//! Anthropic Messages request -> chat request.

use serde_json::{Map, Value, json};

use crate::MapError;
use crate::openai::{
    ChatMessage, ChatRequest, ContentPart, FunctionCall, FunctionDef, ImageUrl, MessageContent,
    NamedFunction, NamedToolChoice, Role, Stop, StreamOptions, Tool, ToolCall, ToolChoice,
};

/// What the gateway should know about a mapped request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessagesContext {
    /// The model the client asked for (reported back in the `message`).
    pub model: String,
    pub stream: bool,
    /// Server and Anthropic-defined tools the provider cannot run (by name, or type).
    pub dropped_tools: Vec<String>,
    /// Content block types left out of the history (server tool calls and results).
    pub dropped_blocks: Vec<String>,
    /// Request fields accepted but not applied (`top_k`, `context_management`, ...),
    /// for the gateway to log.
    pub ignored: Vec<String>,
}

/// Fields consumed below (everything else lands in `ignored`).
const HANDLED: &[&str] = &[
    "model",
    "messages",
    "system",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "thinking",
    "metadata",
    "stream",
    "output_format",
];

/// Maps a Messages request body to a chat request for the same (public) model name.
pub fn to_chat(req: &Value) -> Result<(ChatRequest, MessagesContext), MapError> {
    let obj = req
        .as_object()
        .ok_or_else(|| invalid("request body must be a JSON object"))?;
    let model = obj
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("`model` is required"))?
        .to_owned();
    let mut ctx = MessagesContext {
        model: model.clone(),
        stream: obj.get("stream").and_then(Value::as_bool).unwrap_or(false),
        ..MessagesContext::default()
    };

    let turns = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("`messages` must be an array"))?;
    let (system_turns, turns): (Vec<&Value>, Vec<&Value>) = turns
        .iter()
        .partition(|m| m.get("role").and_then(Value::as_str) == Some("system"));
    let mut messages = Vec::new();
    let system = [system_text(obj.get("system"))?]
        .into_iter()
        .chain(system_turns.into_iter().map(hoisted_text))
        .flatten()
        .collect::<Vec<_>>()
        .join("\n\n");
    if !system.is_empty() {
        messages.push(message(Role::System, Some(MessageContent::Text(system))));
    }
    for turn in turns {
        map_turn(turn, &mut messages, &mut ctx)?;
    }

    let tools = map_tools(obj.get("tools"), &mut ctx);
    let (tool_choice, parallel_tool_calls) = match (&tools, obj.get("tool_choice")) {
        (Some(_), Some(choice)) => map_tool_choice(choice)?,
        _ => (None, None),
    };

    let user = obj
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let stop = obj
        .get("stop_sequences")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|list| !list.is_empty())
        .map(Stop::Many);
    let response_format = obj.get("output_format").and_then(map_output_format);

    for (key, value) in obj {
        if !HANDLED.contains(&key.as_str()) && !value.is_null() {
            ctx.ignored.push(key.clone());
        }
    }

    let chat = ChatRequest {
        model,
        messages,
        max_tokens: match obj.get("max_tokens") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| invalid("`max_tokens` must be a positive integer"))?,
            ),
        },
        max_completion_tokens: None,
        temperature: obj.get("temperature").and_then(Value::as_f64),
        top_p: obj.get("top_p").and_then(Value::as_f64),
        // Dropped: `top_k` is Anthropic's, most chat providers reject it.
        top_k: None,
        stop,
        stream: ctx.stream.then_some(true),
        // `message_delta` reports usage: always ask the provider for it.
        stream_options: ctx.stream.then(|| StreamOptions {
            include_usage: Some(true),
            rest: Map::new(),
        }),
        tools,
        tool_choice,
        parallel_tool_calls,
        user,
        reasoning_effort: obj.get("thinking").and_then(effort_for_thinking),
        thinking: None,
        response_format,
        rest: Map::new(),
    };
    Ok((chat, ctx))
}

fn invalid(msg: &str) -> MapError {
    MapError::InvalidRequest(msg.to_owned())
}

fn message(role: Role, content: Option<MessageContent>) -> ChatMessage {
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

/// `system`: a string or text blocks (their `cache_control` has no chat meaning).
/// Blocks are joined with a blank line into one string, which every provider accepts.
fn system_text(system: Option<&Value>) -> Result<Option<String>, MapError> {
    match system {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok((!text.is_empty()).then(|| text.clone())),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for block in blocks {
                if block_type(block) != "text" {
                    return Err(MapError::Unsupported(format!(
                        "system block type {:?}",
                        block_type(block)
                    )));
                }
                texts.push(block.get("text").and_then(Value::as_str).unwrap_or(""));
            }
            let text = texts.join("\n\n");
            Ok((!text.is_empty()).then_some(text))
        }
        Some(_) => Err(invalid(
            "`system` must be a string or an array of text blocks",
        )),
    }
}

/// A `role: "system"` turn inside `messages` (Claude Code sends its environment notes
/// so): the chat mapping knows system text only at the top, so its text joins the
/// top-level `system`, in order — the model still reads it as system guidance. Blocks
/// other than text have no system meaning and are left out.
fn hoisted_text(turn: &Value) -> Option<String> {
    let text = match turn.get("content") {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| block_type(p) == "text")
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n\n"),
        _ => String::new(),
    };
    (!text.is_empty()).then_some(text)
}

fn block_type(block: &Value) -> &str {
    block.get("type").and_then(Value::as_str).unwrap_or("")
}

/// One Anthropic turn -> chat messages. A user turn's `tool_result` blocks become tool
/// messages placed before the rest of the turn: chat needs tool results right after the
/// assistant message that called them.
fn map_turn(
    turn: &Value,
    out: &mut Vec<ChatMessage>,
    ctx: &mut MessagesContext,
) -> Result<(), MapError> {
    let role = turn.get("role").and_then(Value::as_str);
    let blocks: Vec<Value> = match turn.get("content") {
        Some(Value::String(text)) => vec![json!({"type": "text", "text": text})],
        Some(Value::Array(blocks)) => blocks.clone(),
        _ => return Err(invalid("message `content` must be a string or an array")),
    };
    match role {
        Some("user") => map_user_turn(&blocks, out, ctx),
        Some("assistant") => map_assistant_turn(&blocks, out, ctx),
        other => Err(MapError::InvalidRequest(format!(
            "message role must be user or assistant, got {other:?}"
        ))),
    }
}

fn map_user_turn(
    blocks: &[Value],
    out: &mut Vec<ChatMessage>,
    ctx: &mut MessagesContext,
) -> Result<(), MapError> {
    let mut parts = Vec::new();
    for block in blocks {
        match block_type(block) {
            "tool_result" => out.push(tool_message(block, ctx)?),
            _ => {
                if let Some(part) = content_part(block, ctx)? {
                    parts.push(part);
                }
            }
        }
    }
    if parts.is_empty() {
        return Ok(());
    }
    let content = if parts.len() == 1 && parts[0].kind == "text" {
        MessageContent::Text(parts[0].text.clone().unwrap_or_default())
    } else {
        MessageContent::Parts(parts)
    };
    out.push(message(Role::User, Some(content)));
    Ok(())
}

/// A user-side content block -> a chat part (`None`: a block type with no chat form).
fn content_part(block: &Value, ctx: &mut MessagesContext) -> Result<Option<ContentPart>, MapError> {
    match block_type(block) {
        "text" => Ok(Some(text_part(
            block.get("text").and_then(Value::as_str).unwrap_or(""),
        ))),
        "image" => Ok(Some(image_part(block)?)),
        "document" => document_part(block).map(Some),
        // Claude Code's ToolSearch answers with references to deferred tools; those
        // tools are always offered to a chat provider, so a note suffices.
        // A search result the client supplies (RAG): its title, source and text.
        "search_result" => {
            let field = |name: &str| block.get(name).and_then(Value::as_str).unwrap_or("");
            let mut text = format!("{} ({})", field("title"), field("source"));
            for inner in block
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(t) = inner.get("text").and_then(Value::as_str) {
                    text.push('\n');
                    text.push_str(t);
                }
            }
            Ok(Some(text_part(&text)))
        }
        "tool_reference" => Ok(Some(text_part(&format!(
            "Tool available: {}",
            block.get("tool_name").and_then(Value::as_str).unwrap_or("")
        )))),
        other => {
            ctx.dropped_blocks.push(other.to_owned());
            Ok(None)
        }
    }
}

fn text_part(text: &str) -> ContentPart {
    ContentPart {
        kind: "text".to_owned(),
        text: Some(text.to_owned()),
        image_url: None,
        cache_control: None,
        rest: Map::new(),
    }
}

/// `source` base64 -> a data URL; url -> the URL.
fn image_part(block: &Value) -> Result<ContentPart, MapError> {
    let source = block
        .get("source")
        .ok_or_else(|| invalid("image block without a `source`"))?;
    let url = match block_type(source) {
        "base64" => {
            let media = source
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("");
            let data = source.get("data").and_then(Value::as_str).unwrap_or("");
            format!("data:{media};base64,{data}")
        }
        "url" => source
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("image url source without a `url`"))?
            .to_owned(),
        other => {
            return Err(MapError::Unsupported(format!(
                "image source type {other:?}"
            )));
        }
    };
    Ok(ContentPart {
        kind: "image_url".to_owned(),
        text: None,
        image_url: Some(ImageUrl {
            url,
            detail: None,
            rest: Map::new(),
        }),
        cache_control: None,
        rest: Map::new(),
    })
}

/// A PDF (base64) becomes a chat `file` part; a plain-text document its text.
fn document_part(block: &Value) -> Result<ContentPart, MapError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    match block_type(source) {
        "base64" => {
            let media = source
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("");
            let data = source.get("data").and_then(Value::as_str).unwrap_or("");
            let mut file = Map::new();
            file.insert(
                "file_data".to_owned(),
                json!(format!("data:{media};base64,{data}")),
            );
            if let Some(title) = block.get("title").and_then(Value::as_str) {
                file.insert("filename".to_owned(), json!(title));
            }
            let mut rest = Map::new();
            rest.insert("file".to_owned(), Value::Object(file));
            Ok(ContentPart {
                kind: "file".to_owned(),
                text: None,
                image_url: None,
                cache_control: None,
                rest,
            })
        }
        "text" => Ok(text_part(
            source.get("data").and_then(Value::as_str).unwrap_or(""),
        )),
        other => Err(MapError::Unsupported(format!(
            "document source type {other:?}"
        ))),
    }
}

/// `tool_result` -> a tool message. Chat has no error flag, so an error result is
/// marked in its text, where the model reads it.
fn tool_message(block: &Value, ctx: &mut MessagesContext) -> Result<ChatMessage, MapError> {
    let id = block
        .get("tool_use_id")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("tool_result block without a `tool_use_id`"))?;
    let is_error = block.get("is_error").and_then(Value::as_bool) == Some(true);
    let mut parts = match block.get("content") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![text_part(text)],
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for inner in blocks {
                if let Some(part) = content_part(inner, ctx)? {
                    parts.push(part);
                }
            }
            parts
        }
        Some(_) => {
            return Err(invalid(
                "tool_result `content` must be a string or an array",
            ));
        }
    };
    if is_error {
        match parts.first_mut() {
            Some(ContentPart {
                kind,
                text: Some(text),
                ..
            }) if kind == "text" => text.insert_str(0, "Error: "),
            _ => parts.insert(0, text_part("Error")),
        }
    }
    let content = if parts.iter().all(|p| p.kind == "text") {
        let texts: Vec<&str> = parts.iter().filter_map(|p| p.text.as_deref()).collect();
        MessageContent::Text(texts.join("\n"))
    } else {
        MessageContent::Parts(parts)
    };
    let mut msg = message(Role::Tool, Some(content));
    msg.tool_call_id = Some(id.to_owned());
    Ok(msg)
}

fn map_assistant_turn(
    blocks: &[Value],
    out: &mut Vec<ChatMessage>,
    ctx: &mut MessagesContext,
) -> Result<(), MapError> {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking_blocks = Vec::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block_type(block) {
            "text" => text.push_str(block.get("text").and_then(Value::as_str).unwrap_or("")),
            "thinking" => {
                let thinking = block.get("thinking").and_then(Value::as_str).unwrap_or("");
                if !reasoning.is_empty() {
                    reasoning.push('\n');
                }
                reasoning.push_str(thinking);
                let signature = block.get("signature").and_then(Value::as_str).unwrap_or("");
                thinking_blocks.push(
                    json!({"type": "thinking", "thinking": thinking, "signature": signature}),
                );
            }
            "redacted_thinking" => thinking_blocks.push(json!({
                "type": "redacted_thinking",
                "data": block.get("data").and_then(Value::as_str).unwrap_or(""),
            })),
            "tool_use" => {
                let id = block
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("tool_use block without an `id`"))?;
                let name = block
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("tool_use block without a `name`"))?;
                let arguments = match block.get("input") {
                    None | Some(Value::Null) => "{}".to_owned(),
                    Some(input) => input.to_string(),
                };
                tool_calls.push(ToolCall {
                    id: id.to_owned(),
                    kind: "function".to_owned(),
                    function: FunctionCall {
                        name: name.to_owned(),
                        arguments,
                    },
                    rest: Map::new(),
                });
            }
            other => ctx.dropped_blocks.push(other.to_owned()),
        }
    }
    if text.is_empty() && tool_calls.is_empty() && thinking_blocks.is_empty() {
        return Ok(());
    }
    let has_tools = !tool_calls.is_empty();
    let mut msg = message(
        Role::Assistant,
        (!text.is_empty() || !has_tools).then_some(MessageContent::Text(text)),
    );
    msg.tool_calls = has_tools.then_some(tool_calls);
    msg.reasoning_content = (!reasoning.is_empty()).then_some(reasoning);
    msg.thinking_blocks = (!thinking_blocks.is_empty()).then_some(thinking_blocks);
    out.push(msg);
    Ok(())
}

/// Custom tools (with an `input_schema`) -> chat functions; server and Anthropic-defined
/// tools (`web_search_20250305`, `bash_20250124`, ...) are dropped and listed.
/// `defer_loading` (Claude Code's tool search) does not apply: every tool is offered.
fn map_tools(tools: Option<&Value>, ctx: &mut MessagesContext) -> Option<Vec<Tool>> {
    let list = tools?.as_array()?;
    let mut out = Vec::with_capacity(list.len());
    for tool in list {
        let kind = tool.get("type").and_then(Value::as_str).unwrap_or("custom");
        let name = tool.get("name").and_then(Value::as_str);
        match (kind, name, tool.get("input_schema")) {
            ("custom", Some(name), Some(schema)) => out.push(Tool {
                kind: "function".to_owned(),
                function: Some(FunctionDef {
                    name: name.to_owned(),
                    description: tool
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    parameters: Some(schema.clone()),
                    strict: tool.get("strict").and_then(Value::as_bool),
                    rest: Map::new(),
                }),
                cache_control: None,
                rest: Map::new(),
            }),
            _ => ctx.dropped_tools.push(name.unwrap_or(kind).to_owned()),
        }
    }
    (!out.is_empty()).then_some(out)
}

fn map_tool_choice(choice: &Value) -> Result<(Option<ToolChoice>, Option<bool>), MapError> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .filter(|d| *d)
        .map(|_| false);
    let mode = |m: &str| Some(ToolChoice::Mode(m.to_owned()));
    let mapped = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => mode("auto"),
        Some("any") => mode("required"),
        Some("none") => mode("none"),
        Some("tool") => {
            let name = choice
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("tool_choice of type tool without a `name`"))?;
            Some(ToolChoice::Named(NamedToolChoice {
                kind: "function".to_owned(),
                function: NamedFunction {
                    name: name.to_owned(),
                },
            }))
        }
        other => {
            return Err(MapError::InvalidRequest(format!(
                "tool_choice type must be auto, any, tool or none; got {other:?}"
            )));
        }
    };
    Ok((mapped, parallel))
}

/// `thinking` budget -> chat `reasoning_effort`, the inverse of the budgets the
/// Anthropic adapter uses (1024 low, 4096 medium, 16384 high). `adaptive` and
/// `disabled` leave the provider's default.
fn effort_for_thinking(thinking: &Value) -> Option<String> {
    if thinking.get("type").and_then(Value::as_str) != Some("enabled") {
        return None;
    }
    let budget = thinking.get("budget_tokens").and_then(Value::as_u64)?;
    let effort = match budget {
        0..4096 => "low",
        4096..16384 => "medium",
        _ => "high",
    };
    Some(effort.to_owned())
}

/// Structured outputs (`output_format: {type: json_schema, schema}`) -> chat's form.
fn map_output_format(format: &Value) -> Option<Value> {
    if format.get("type").and_then(Value::as_str) != Some("json_schema") {
        return None;
    }
    let schema = format.get("schema")?;
    Some(json!({
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": true},
    }))
}
