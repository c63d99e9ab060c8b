//! OpenAI chat-completions request -> Bedrock Converse request.

use serde_json::{Map, Value, json};

use super::wire::{ConverseRequest, Message};
use crate::MapError;
use crate::openai::{ChatMessage, ChatRequest, ContentPart, MessageContent, Role, ToolChoice};

/// The translated request plus what the server needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedRequest {
    /// Body to POST to [`super::converse_path`].
    pub body: ConverseRequest,
    /// The client asked for a stream (use `converse-stream`).
    pub stream: bool,
    /// The client asked for a final usage chunk.
    pub include_usage: bool,
    /// OpenAI parameters Converse cannot honour, left out. The server answers 400 when
    /// this is non-empty unless `drop_params` is on.
    pub dropped: Vec<String>,
}

/// OpenAI parameters with no Converse equivalent (reported when set to a non-default).
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

/// Gateway-level fields that are not model inputs.
const CONSUMED: &[&str] = &["metadata", "safety_identifier", "stream", "stream_options"];

/// Converse's own top-level fields a client may pass through (either spelling).
const CONVERSE_FIELDS: &[(&str, &str)] = &[
    ("guardrailConfig", "guardrailConfig"),
    ("guardrail_config", "guardrailConfig"),
    ("performanceConfig", "performanceConfig"),
    ("performance_config", "performanceConfig"),
    (
        "additionalModelResponseFieldPaths",
        "additionalModelResponseFieldPaths",
    ),
    ("promptVariables", "promptVariables"),
    ("requestMetadata", "requestMetadata"),
    ("request_metadata", "requestMetadata"),
];

/// Maps an OpenAI chat request to a Converse body for `model_id` (the model goes in the
/// URL; its id decides whether Anthropic-only fields such as `thinking` apply).
pub fn chat_to_converse(req: &ChatRequest, model_id: &str) -> Result<MappedRequest, MapError> {
    let mut dropped = Vec::new();
    let (system, messages) = map_messages(&req.messages)?;
    let is_claude = {
        let m = model_id.to_ascii_lowercase();
        m.contains("anthropic") || m.contains("claude")
    };

    let mut inference = Map::new();
    if let Some(max) = req.max_completion_tokens.or(req.max_tokens) {
        inference.insert("maxTokens".into(), json!(max));
    }
    if let Some(t) = req.temperature {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        inference.insert("topP".into(), json!(p));
    }
    if let Some(stop) = req
        .stop
        .clone()
        .map(|s| s.into_vec())
        .filter(|v| !v.is_empty())
    {
        inference.insert("stopSequences".into(), json!(stop));
    }

    let mut additional = Map::new();
    if let Some(k) = req.top_k {
        additional.insert("top_k".into(), json!(k));
    }
    let thinking = match (&req.thinking, &req.reasoning_effort) {
        (Some(t), _) if !t.is_null() => Some(t.clone()),
        (_, Some(effort)) => {
            effort_budget(effort)?.map(|budget| json!({"type": "enabled", "budget_tokens": budget}))
        }
        _ => None,
    };
    if let Some(thinking) = thinking {
        if is_claude {
            additional.insert("thinking".into(), thinking);
        } else if req.thinking.is_some() {
            dropped.push("thinking".to_owned());
        } else {
            dropped.push("reasoning_effort".to_owned());
        }
    }
    if req
        .response_format
        .as_ref()
        .is_some_and(|f| !f.is_null() && f.get("type").and_then(Value::as_str) != Some("text"))
    {
        // Converse has no JSON mode; LiteLLM's tool-based emulation is not done here.
        dropped.push("response_format".to_owned());
    }

    let history_has_tools = messages.iter().any(|m| {
        m.content
            .iter()
            .any(|b| b.get("toolUse").is_some() || b.get("toolResult").is_some())
    });
    let tool_config = map_tools(req, history_has_tools)?;

    let mut rest = Map::new();
    for (key, value) in &req.rest {
        if value.is_null() || CONSUMED.contains(&key.as_str()) || key.starts_with("aws_") {
            continue;
        }
        if OPENAI_ONLY.contains(&key.as_str()) {
            if !is_default_value(key, value) {
                dropped.push(key.clone());
            }
            continue;
        }
        if key == "additionalModelRequestFields" || key == "additional_model_request_fields" {
            for (k, v) in value.as_object().into_iter().flatten() {
                additional.entry(k.clone()).or_insert_with(|| v.clone());
            }
            continue;
        }
        match CONVERSE_FIELDS.iter().find(|(from, _)| from == key) {
            Some((_, to)) => {
                rest.insert((*to).to_owned(), value.clone());
            }
            // Converse rejects unknown top-level keys; model-specific parameters belong
            // in `additionalModelRequestFields` (LiteLLM does the same).
            None => {
                additional.insert(key.clone(), value.clone());
            }
        }
    }

    let stream = req.is_stream();
    Ok(MappedRequest {
        body: ConverseRequest {
            messages,
            system,
            inference_config: (!inference.is_empty()).then_some(inference),
            tool_config,
            additional_model_request_fields: (!additional.is_empty()).then_some(additional),
            rest,
        },
        stream,
        include_usage: stream && req.include_usage(),
        dropped,
    })
}

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

fn is_default_value(key: &str, value: &Value) -> bool {
    match key {
        "n" => value.as_u64() == Some(1),
        "logprobs" | "store" => value.as_bool() == Some(false),
        "frequency_penalty" | "presence_penalty" => value.as_f64() == Some(0.0),
        "logit_bias" => value.as_object().is_some_and(|m| m.is_empty()),
        _ => false,
    }
}

/// System/developer text -> `system`; the rest -> alternating `user`/`assistant` turns
/// (consecutive same-role messages merged; tool results open their user turn).
fn map_messages(msgs: &[ChatMessage]) -> Result<(Vec<Value>, Vec<Message>), MapError> {
    let mut system = Vec::new();
    let mut turns: Vec<Message> = Vec::new();
    for msg in msgs {
        let (role, mut blocks) = match msg.role {
            Role::System | Role::Developer => {
                for block in content_blocks(msg.content.as_ref())? {
                    if block.get("text").is_none() {
                        return Err(MapError::Unsupported(
                            "non-text content in system/developer messages".to_owned(),
                        ));
                    }
                    system.push(block);
                }
                if cache_marked(msg) {
                    system.push(cache_point());
                }
                continue;
            }
            Role::User => ("user", content_blocks(msg.content.as_ref())?),
            Role::Assistant => ("assistant", assistant_blocks(msg)?),
            Role::Tool => ("user", vec![tool_result(msg)]),
            Role::Function => {
                return Err(MapError::Unsupported(
                    "legacy `function` role messages; use `tool` messages".to_owned(),
                ));
            }
        };
        if blocks.is_empty() {
            continue;
        }
        if cache_marked(msg) {
            blocks.push(cache_point());
        }
        match turns.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => turns.push(Message {
                role: role.to_owned(),
                content: blocks,
            }),
        }
    }
    for turn in turns.iter_mut().filter(|t| t.role == "user") {
        turn.content.sort_by_key(|b| b.get("toolResult").is_none());
    }
    Ok((system, turns))
}

/// LiteLLM's `cache_control` on a message becomes a Converse `cachePoint` after it.
fn cache_marked(msg: &ChatMessage) -> bool {
    msg.rest.get("cache_control").is_some_and(|v| !v.is_null())
}

fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

fn assistant_blocks(msg: &ChatMessage) -> Result<Vec<Value>, MapError> {
    // Signed reasoning first: Claude on Bedrock wants it back before the tool use.
    let mut blocks: Vec<Value> = msg
        .thinking_blocks
        .iter()
        .flatten()
        .filter_map(|b| match b.get("type").and_then(Value::as_str)? {
            "thinking" => {
                let signature = b.get("signature").and_then(Value::as_str)?;
                Some(json!({"reasoningContent": {"reasoningText": {
                    "text": b.get("thinking").and_then(Value::as_str).unwrap_or(""),
                    "signature": signature,
                }}}))
            }
            "redacted_thinking" => Some(json!({"reasoningContent": {
                "redactedContent": b.get("data").and_then(Value::as_str)?,
            }})),
            _ => None,
        })
        .collect();
    blocks.extend(
        content_blocks(msg.content.as_ref())?
            .into_iter()
            .filter(|b| b.get("text").and_then(Value::as_str) != Some("")),
    );
    for call in msg.tool_calls.iter().flatten() {
        blocks.push(json!({"toolUse": {
            "toolUseId": call.id,
            "name": call.function.name,
            "input": parse_arguments(&call.id, &call.function.arguments)?,
        }}));
    }
    Ok(blocks)
}

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

/// A `tool` message -> a `toolResult` block. Results go as text: every Converse model
/// accepts text results, while `json` results are limited to some model families.
fn tool_result(msg: &ChatMessage) -> Value {
    let id = msg.tool_call_id.clone().unwrap_or_default();
    let content: Vec<Value> = match &msg.content {
        None => vec![json!({"text": ""})],
        Some(MessageContent::Text(t)) => vec![json!({"text": t})],
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .filter_map(|p| p.text.as_ref().map(|t| json!({"text": t})))
            .collect(),
    };
    json!({"toolResult": {"toolUseId": id, "content": content}})
}

fn content_blocks(content: Option<&MessageContent>) -> Result<Vec<Value>, MapError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(t)) => Ok(vec![json!({"text": t})]),
        Some(MessageContent::Parts(parts)) => parts.iter().map(part_block).collect(),
    }
}

fn part_block(p: &ContentPart) -> Result<Value, MapError> {
    match p.kind.as_str() {
        "text" => Ok(json!({"text": p.text.clone().unwrap_or_default()})),
        "image_url" => {
            let url = p
                .image_url
                .as_ref()
                .map(|u| u.url.as_str())
                .ok_or_else(|| MapError::InvalidRequest("image_url part without a url".into()))?;
            image_block(url)
        }
        "file" => {
            let file = p.rest.get("file");
            let field = |name: &str| file.and_then(|f| f.get(name)).and_then(Value::as_str);
            let data = field("file_data")
                .and_then(|d| d.strip_prefix("data:"))
                .and_then(|d| d.split_once(";base64,"))
                .ok_or_else(|| {
                    MapError::Unsupported("file parts other than base64 data URLs".to_owned())
                })?;
            let format = data.0.rsplit('/').next().unwrap_or("pdf");
            Ok(json!({"document": {
                "format": format,
                "name": field("filename").map_or("document", |n| n.split('.').next().unwrap_or(n)),
                "source": {"bytes": data.1},
            }}))
        }
        other => Err(MapError::Unsupported(format!(
            "content part type {other:?}"
        ))),
    }
}

/// Converse takes image bytes (base64 in JSON) or an S3 location, not web URLs.
fn image_block(url: &str) -> Result<Value, MapError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            MapError::InvalidRequest("image data URL without a ',' separator".to_owned())
        })?;
        let mime = meta.strip_suffix(";base64").ok_or_else(|| {
            MapError::Unsupported("image data URLs that are not base64-encoded".to_owned())
        })?;
        let format = match mime {
            "image/png" => "png",
            "image/jpeg" | "image/jpg" => "jpeg",
            "image/gif" => "gif",
            "image/webp" => "webp",
            other => return Err(MapError::Unsupported(format!("image type {other:?}"))),
        };
        return Ok(json!({"image": {"format": format, "source": {"bytes": data}}}));
    }
    if url.starts_with("s3://") {
        let ext = url.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
        let format = match ext.as_str() {
            "jpg" | "jpeg" => "jpeg",
            "gif" => "gif",
            "webp" => "webp",
            _ => "png",
        };
        return Ok(json!({"image": {"format": format, "source": {"s3Location": {"uri": url}}}}));
    }
    Err(MapError::Unsupported(
        "image URLs on Bedrock (send a base64 data: URL or an s3:// location)".to_owned(),
    ))
}

/// OpenAI tools -> `toolConfig`. Converse has no "none" choice: with `tool_choice:
/// "none"` the tools are left out, unless the history holds tool blocks (Converse then
/// requires `toolConfig`), in which case they stay without a choice.
fn map_tools(req: &ChatRequest, history_has_tools: bool) -> Result<Option<Value>, MapError> {
    let Some(oai_tools) = req.tools.as_ref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut tools = Vec::with_capacity(oai_tools.len());
    for tool in oai_tools {
        let function = match (&tool.function, tool.kind.as_str()) {
            (Some(f), "function") => f,
            (_, kind) => return Err(MapError::Unsupported(format!("tool type {kind:?}"))),
        };
        let mut spec = Map::new();
        spec.insert("name".into(), json!(function.name));
        if let Some(d) = function.description.as_ref().filter(|d| !d.is_empty()) {
            spec.insert("description".into(), json!(d));
        }
        let schema = function
            .parameters
            .clone()
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
        spec.insert("inputSchema".into(), json!({"json": schema}));
        tools.push(json!({"toolSpec": spec}));
        if tool.cache_control.is_some() {
            tools.push(cache_point());
        }
    }
    let choice = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => match mode.as_str() {
            "auto" => Some(json!({"auto": {}})),
            "required" => Some(json!({"any": {}})),
            "none" if history_has_tools => None,
            "none" => return Ok(None),
            other => {
                return Err(MapError::InvalidRequest(format!(
                    "tool_choice must be none, auto, required or a named function; got {other:?}"
                )));
            }
        },
        Some(ToolChoice::Named(named)) => Some(json!({"tool": {"name": named.function.name}})),
    };
    let mut config = json!({"tools": tools});
    if let Some(choice) = choice {
        crate::json::set(&mut config, "toolChoice", choice);
    }
    Ok(Some(config))
}
