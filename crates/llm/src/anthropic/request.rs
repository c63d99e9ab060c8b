//! OpenAI chat-completions request -> Anthropic Messages request.

use serde_json::{Value, json};

use super::wire::{
    Block, ImageSource, Message, MessageRole, MessagesRequest, Metadata, Tool, ToolChoice,
    ToolResultContent,
};
use crate::MapError;
use crate::openai::{
    ChatMessage, ChatRequest, ContentPart, MessageContent, Role, ToolChoice as OaiToolChoice,
};

/// Per-deployment defaults the operator may configure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnthropicDefaults {
    /// `max_tokens` when the client sends none; `None` uses [`default_max_tokens`].
    pub max_tokens: Option<u32>,
}

/// The translated request plus what the server needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedRequest {
    /// Body to POST to `{api_base}/v1/messages`.
    pub body: MessagesRequest,
    /// The client asked for a stream (`body.stream` is set accordingly).
    pub stream: bool,
    /// The client asked for a final usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    /// OpenAI parameters that Anthropic cannot honour and that were left out. The server
    /// answers 400 when this is non-empty unless `drop_params` is on.
    pub dropped: Vec<String>,
}

/// Parameters only OpenAI understands. Listed as dropped when set to a non-default value;
/// any other unknown field is passed through untouched (provider-specific params).
const OPENAI_ONLY: &[&str] = &[
    "frequency_penalty",
    "presence_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "n",
    "seed",
    "service_tier",
    "store",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "functions",
    "function_call",
    "verbosity",
    "prompt_cache_key",
];

/// Fields consumed here that must not reach Anthropic. `metadata` is OpenAI's stored-
/// completion tag map (and LiteLLM's request tags): gateway-level, not a model input.
const CONSUMED: &[&str] = &["metadata", "safety_identifier"];

/// Thinking budgets for `reasoning_effort` (Anthropic's minimum budget is 1024).
fn effort_budget(effort: &str) -> Result<Option<u32>, MapError> {
    match effort {
        "none" => Ok(None),
        "minimal" | "low" => Ok(Some(1024)),
        "medium" => Ok(Some(4096)),
        "high" => Ok(Some(16384)),
        other => Err(MapError::InvalidRequest(format!(
            "reasoning_effort must be one of none, minimal, low, medium, high; got {other:?}"
        ))),
    }
}

const MIN_THINKING_BUDGET: u32 = 1024;

/// Default `max_tokens` per model family, used when neither the client nor the operator
/// sets one (Anthropic requires the field). Conservative on purpose: Claude 3 models
/// reject anything above 4096, and a large reservation counts against output-token rate
/// limits even when unused; 8192 is accepted by every model from Claude 3.5 on.
pub fn default_max_tokens(model: &str) -> u32 {
    let m = model.to_ascii_lowercase();
    let claude3_legacy = m.contains("claude-3-")
        && !m.contains("claude-3-5")
        && !m.contains("claude-3-7")
        && !m.contains("claude-3.5")
        && !m.contains("claude-3.7");
    if claude3_legacy || !m.contains("claude") {
        4096
    } else {
        8192
    }
}

/// Maps an OpenAI chat request to an Anthropic Messages request for `target_model`.
pub fn chat_to_messages(
    req: &ChatRequest,
    target_model: &str,
    defaults: &AnthropicDefaults,
) -> Result<MappedRequest, MapError> {
    let mut dropped = Vec::new();
    let (system, messages) = map_messages(&req.messages)?;

    let explicit_max = req.max_completion_tokens.or(req.max_tokens);
    let base_max = explicit_max
        .or(defaults.max_tokens)
        .unwrap_or_else(|| default_max_tokens(target_model));

    let mut thinking = match (&req.thinking, &req.reasoning_effort) {
        (Some(t), _) if !t.is_null() => Some(t.clone()),
        (_, Some(effort)) => {
            effort_budget(effort)?.map(|budget| json!({"type": "enabled", "budget_tokens": budget}))
        }
        _ => None,
    };
    let max_tokens = fit_thinking_budget(&mut thinking, base_max, explicit_max.is_some())?;
    let thinking_on = thinking
        .as_ref()
        .and_then(|t| t.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t != "disabled");

    // Anthropic's range is 0..=1 (OpenAI's is 0..=2); with thinking on it only accepts
    // the default, so a custom value there is reported as dropped.
    let mut temperature = req.temperature.map(|t| t.clamp(0.0, 1.0));
    let mut top_k = req.top_k;
    if thinking_on {
        if temperature.is_some_and(|t| t != 1.0) {
            dropped.push("temperature".to_owned());
        }
        temperature = None;
        if top_k.take().is_some() {
            dropped.push("top_k".to_owned());
        }
    }

    let (tools, tool_choice) = map_tools(req)?;

    let user_id = req.user.clone().or_else(|| {
        req.rest
            .get("safety_identifier")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });

    if let Some(format) = &req.response_format {
        let kind = format.get("type").and_then(Value::as_str).unwrap_or("");
        if kind != "text" && !format.is_null() {
            dropped.push("response_format".to_owned());
        }
    }

    let mut rest = serde_json::Map::new();
    for (key, value) in &req.rest {
        if value.is_null() || CONSUMED.contains(&key.as_str()) {
            continue;
        }
        if OPENAI_ONLY.contains(&key.as_str()) {
            if !is_default_value(key, value) {
                dropped.push(key.clone());
            }
            continue;
        }
        rest.insert(key.clone(), value.clone());
    }

    let stream = req.is_stream();
    let body = MessagesRequest {
        model: target_model.to_owned(),
        messages,
        max_tokens,
        system: (!system.is_empty()).then_some(system),
        metadata: user_id.map(|id| Metadata { user_id: Some(id) }),
        stop_sequences: req
            .stop
            .clone()
            .map(|s| s.into_vec())
            .filter(|v| !v.is_empty()),
        stream: stream.then_some(true),
        temperature,
        top_p: req.top_p,
        top_k,
        tools,
        tool_choice,
        thinking,
        rest,
    };
    Ok(MappedRequest {
        body,
        stream,
        include_usage: stream && req.include_usage(),
        dropped,
    })
}

/// OpenAI-only params set to their default are harmless and not reported.
fn is_default_value(key: &str, value: &Value) -> bool {
    match key {
        "n" => value.as_u64() == Some(1),
        "logprobs" | "store" => value.as_bool() == Some(false),
        "frequency_penalty" | "presence_penalty" => value.as_f64() == Some(0.0),
        "logit_bias" => value.as_object().is_some_and(|m| m.is_empty()),
        _ => false,
    }
}

/// Anthropic requires `budget_tokens < max_tokens`. Without an explicit max we raise
/// max_tokens above the budget; with one we shrink the budget to half of it, and refuse
/// when that falls under Anthropic's minimum budget.
fn fit_thinking_budget(
    thinking: &mut Option<Value>,
    max_tokens: u32,
    explicit: bool,
) -> Result<u32, MapError> {
    let Some(budget) = thinking
        .as_ref()
        .and_then(|t| t.get("budget_tokens"))
        .and_then(Value::as_u64)
    else {
        return Ok(max_tokens);
    };
    let budget = u32::try_from(budget).unwrap_or(u32::MAX);
    if budget < max_tokens {
        return Ok(max_tokens);
    }
    if !explicit {
        return Ok(budget.saturating_add(max_tokens));
    }
    let shrunk = max_tokens / 2;
    if shrunk < MIN_THINKING_BUDGET {
        return Err(MapError::InvalidRequest(format!(
            "max_tokens {max_tokens} leaves no room for a thinking budget (minimum {MIN_THINKING_BUDGET})"
        )));
    }
    if let Some(obj) = thinking.as_mut().and_then(Value::as_object_mut) {
        obj.insert("budget_tokens".to_owned(), json!(shrunk));
    }
    Ok(max_tokens)
}

/// Lifts system/developer messages into `system` and builds strictly alternating turns.
fn map_messages(msgs: &[ChatMessage]) -> Result<(Vec<Block>, Vec<Message>), MapError> {
    let mut system = Vec::new();
    let mut turns: Vec<Message> = Vec::new();
    for msg in msgs {
        let (role, mut blocks) = match msg.role {
            Role::System | Role::Developer => {
                let mut blocks = system_blocks(msg)?;
                apply_message_cache_control(msg, &mut blocks);
                system.extend(blocks);
                continue;
            }
            Role::User => (MessageRole::User, user_blocks(msg)?),
            Role::Assistant => (MessageRole::Assistant, assistant_blocks(msg)?),
            Role::Tool => (MessageRole::User, vec![tool_result_block(msg)?]),
            Role::Function => {
                return Err(MapError::Unsupported(
                    "legacy `function` role messages; use `tool` messages".to_owned(),
                ));
            }
        };
        apply_message_cache_control(msg, &mut blocks);
        if blocks.is_empty() {
            continue;
        }
        match turns.last_mut() {
            // Anthropic requires alternation: consecutive same-role messages (including
            // several tool results and a user message after them) become one turn.
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Message {
                role,
                content: blocks,
            }),
        }
    }
    // Tool results must open their user turn; keep every other order as sent.
    for turn in turns.iter_mut().filter(|t| t.role == MessageRole::User) {
        turn.content
            .sort_by_key(|b| !matches!(b, Block::ToolResult { .. }));
    }
    Ok((system, turns))
}

/// LiteLLM accepts `cache_control` on a whole message; Anthropic wants it on a block, so
/// it goes on the message's last block that can carry it.
fn apply_message_cache_control(msg: &ChatMessage, blocks: &mut [Block]) {
    let Some(cc) = msg.rest.get("cache_control").filter(|v| !v.is_null()) else {
        return;
    };
    for block in blocks.iter_mut().rev() {
        if block.set_cache_control(cc.clone()) {
            return;
        }
    }
}

fn system_blocks(msg: &ChatMessage) -> Result<Vec<Block>, MapError> {
    let blocks = content_blocks(msg.content.as_ref())?;
    if blocks.iter().any(|b| !matches!(b, Block::Text { .. })) {
        return Err(MapError::Unsupported(
            "non-text content in system/developer messages".to_owned(),
        ));
    }
    Ok(blocks)
}

fn user_blocks(msg: &ChatMessage) -> Result<Vec<Block>, MapError> {
    content_blocks(msg.content.as_ref())
}

/// Thinking blocks first (Anthropic requires them before tool_use in the turn that
/// produced them), then text, then one tool_use per tool call.
fn assistant_blocks(msg: &ChatMessage) -> Result<Vec<Block>, MapError> {
    let mut blocks: Vec<Block> = msg
        .thinking_blocks
        .iter()
        .flatten()
        .filter_map(thinking_block)
        .collect();
    blocks.extend(
        content_blocks(msg.content.as_ref())?
            .into_iter()
            // Clients send `content: ""` next to tool calls; Anthropic rejects empty text.
            .filter(|b| !matches!(b, Block::Text { text, .. } if text.is_empty())),
    );
    for call in msg.tool_calls.iter().flatten() {
        blocks.push(Block::ToolUse {
            id: call.id.clone(),
            name: call.function.name.clone(),
            input: parse_arguments(&call.id, &call.function.arguments)?,
            cache_control: None,
        });
    }
    Ok(blocks)
}

/// A LiteLLM `thinking_blocks` entry back to an Anthropic block. Unsigned thinking is
/// skipped: Anthropic rejects it, and `reasoning_content` alone cannot be replayed.
fn thinking_block(value: &Value) -> Option<Block> {
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
    match value.get("type").and_then(Value::as_str)? {
        "thinking" => Some(Block::Thinking {
            thinking: field("thinking").unwrap_or_default(),
            signature: field("signature").filter(|s| !s.is_empty())?,
        }),
        "redacted_thinking" => Some(Block::RedactedThinking {
            data: field("data")?,
        }),
        _ => None,
    }
}

/// Tool-call arguments must be a JSON object; an empty string means "no arguments".
fn parse_arguments(id: &str, arguments: &str) -> Result<Value, MapError> {
    if arguments.trim().is_empty() {
        return Ok(json!({}));
    }
    let invalid = |reason: String| MapError::InvalidToolArguments {
        tool_call_id: id.to_owned(),
        reason,
    };
    let value: Value = serde_json::from_str(arguments).map_err(|e| invalid(e.to_string()))?;
    if !value.is_object() {
        return Err(invalid("arguments must be a JSON object".to_owned()));
    }
    Ok(value)
}

fn tool_result_block(msg: &ChatMessage) -> Result<Block, MapError> {
    let tool_use_id = msg
        .tool_call_id
        .clone()
        .ok_or_else(|| MapError::InvalidRequest("tool message without tool_call_id".to_owned()))?;
    let content = match &msg.content {
        None => ToolResultContent::Text(String::new()),
        Some(MessageContent::Text(text)) => ToolResultContent::Text(text.clone()),
        Some(MessageContent::Parts(parts)) => {
            ToolResultContent::Blocks(parts.iter().map(part_block).collect::<Result<_, _>>()?)
        }
    };
    Ok(Block::ToolResult {
        tool_use_id,
        content,
        is_error: None,
        cache_control: None,
    })
}

fn content_blocks(content: Option<&MessageContent>) -> Result<Vec<Block>, MapError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(vec![Block::Text {
            text: text.clone(),
            cache_control: None,
        }]),
        Some(MessageContent::Parts(parts)) => parts.iter().map(part_block).collect(),
    }
}

fn part_block(part: &ContentPart) -> Result<Block, MapError> {
    match part.kind.as_str() {
        "text" => Ok(Block::Text {
            text: part.text.clone().unwrap_or_default(),
            cache_control: part.cache_control.clone(),
        }),
        "image_url" => {
            let url = part
                .image_url
                .as_ref()
                .map(|i| i.url.as_str())
                .ok_or_else(|| {
                    MapError::InvalidRequest("image_url part without image_url.url".to_owned())
                })?;
            Ok(Block::Image {
                source: image_source(url)?,
                cache_control: part.cache_control.clone(),
            })
        }
        other => Err(MapError::Unsupported(format!(
            "content part type {other:?}"
        ))),
    }
}

/// `data:<media>;base64,<data>` becomes a base64 source; http(s) URLs a url source.
fn image_source(url: &str) -> Result<ImageSource, MapError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            MapError::InvalidRequest("image data URL without a ',' separator".to_owned())
        })?;
        let media_type = meta.strip_suffix(";base64").ok_or_else(|| {
            MapError::Unsupported("image data URLs that are not base64-encoded".to_owned())
        })?;
        return Ok(ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(ImageSource::Url {
            url: url.to_owned(),
        });
    }
    Err(MapError::InvalidRequest(format!(
        "image_url must be a data: or http(s) URL, got {:?}",
        url.chars().take(32).collect::<String>()
    )))
}

fn map_tools(req: &ChatRequest) -> Result<(Option<Vec<Tool>>, Option<ToolChoice>), MapError> {
    let Some(oai_tools) = req.tools.as_ref().filter(|t| !t.is_empty()) else {
        // Anthropic rejects tool_choice without tools; with none there is nothing to choose.
        return Ok((None, None));
    };
    let mut tools = Vec::with_capacity(oai_tools.len());
    for tool in oai_tools {
        let function = match (&tool.function, tool.kind.as_str()) {
            (Some(f), "function") => f,
            (_, kind) => {
                return Err(MapError::Unsupported(format!("tool type {kind:?}")));
            }
        };
        tools.push(Tool {
            name: function.name.clone(),
            description: function.description.clone(),
            // `strict` has no Anthropic equivalent on plain tools and is left out.
            input_schema: function
                .parameters
                .clone()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
            cache_control: tool.cache_control.clone(),
            rest: serde_json::Map::new(),
        });
    }
    let disable_parallel = (req.parallel_tool_calls == Some(false)).then_some(true);
    let choice = match &req.tool_choice {
        None => disable_parallel.map(|d| ToolChoice::Auto {
            disable_parallel_tool_use: Some(d),
        }),
        Some(OaiToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => ToolChoice::Auto {
                disable_parallel_tool_use: disable_parallel,
            },
            "required" => ToolChoice::Any {
                disable_parallel_tool_use: disable_parallel,
            },
            "none" => ToolChoice::None,
            other => {
                return Err(MapError::InvalidRequest(format!(
                    "tool_choice must be none, auto, required or a named function; got {other:?}"
                )));
            }
        }),
        Some(OaiToolChoice::Named(named)) => Some(ToolChoice::Tool {
            name: named.function.name.clone(),
            disable_parallel_tool_use: disable_parallel,
        }),
    };
    Ok((Some(tools), choice))
}
