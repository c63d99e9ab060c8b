//! OpenAI chat-completions request -> Gemini `generateContent` request.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::ids;
use super::schema::reduce_schema;
use super::wire::{Blob, Content, FileData, FunctionCall, FunctionResponse, GenerateRequest, Part};
use crate::MapError;
use crate::openai::{ChatMessage, ChatRequest, ContentPart, MessageContent, Role, ToolChoice};

/// The translated request plus what the server needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedRequest {
    /// Body to POST to [`super::generate_path`].
    pub body: GenerateRequest,
    /// The client asked for a stream (use the `streamGenerateContent` path).
    pub stream: bool,
    /// The client asked for a final usage chunk.
    pub include_usage: bool,
    /// OpenAI parameters Gemini cannot honour, left out. The server answers 400 when this
    /// is non-empty unless `drop_params` is on.
    pub dropped: Vec<String>,
}

/// OpenAI parameters with no Gemini equivalent (reported as dropped when set to a
/// non-default value).
const OPENAI_ONLY: &[&str] = &[
    "logit_bias",
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

/// Fields consumed here (or gateway-level) that must not reach Gemini, which rejects
/// unknown fields.
const CONSUMED: &[&str] = &[
    "metadata",
    "safety_identifier",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "logprobs",
    "top_logprobs",
];

/// LiteLLM's snake_case provider fields and Gemini's own names for them. Gemini's JSON
/// parser accepts both spellings; we send the documented camelCase one.
const PASSTHROUGH_RENAMES: &[(&str, &str)] = &[
    ("safety_settings", "safetySettings"),
    ("cached_content", "cachedContent"),
    ("tool_config", "toolConfig"),
];

/// Thinking budgets for `reasoning_effort` (Gemini 2.5: 0 turns thinking off on Flash).
fn effort_budget(effort: &str) -> Result<u32, MapError> {
    match effort {
        "none" => Ok(0),
        "minimal" => Ok(128),
        "low" => Ok(1024),
        "medium" => Ok(8192),
        "high" => Ok(24576),
        other => Err(MapError::InvalidRequest(format!(
            "reasoning_effort must be one of none, minimal, low, medium, high; got {other:?}"
        ))),
    }
}

/// Maps an OpenAI chat request to a Gemini `generateContent` body. The model goes in
/// the URL ([`super::generate_path`]), not the body.
pub fn chat_to_gemini(req: &ChatRequest) -> Result<MappedRequest, MapError> {
    let mut dropped = Vec::new();
    let (system, contents) = map_messages(&req.messages)?;

    let mut config = Map::new();
    let mut set = |key: &str, value: Value| {
        config.insert(key.to_owned(), value);
    };
    if let Some(t) = req.temperature {
        set("temperature", json!(t));
    }
    if let Some(p) = req.top_p {
        set("topP", json!(p));
    }
    if let Some(k) = req.top_k {
        set("topK", json!(k));
    }
    if let Some(max) = req.max_completion_tokens.or(req.max_tokens) {
        set("maxOutputTokens", json!(max));
    }
    if let Some(stop) = req
        .stop
        .clone()
        .map(|s| s.into_vec())
        .filter(|v| !v.is_empty())
    {
        set("stopSequences", json!(stop));
    }
    let rest_field = |name: &str| req.rest.get(name).filter(|v| !v.is_null());
    if let Some(n) = rest_field("n") {
        set("candidateCount", n.clone());
    }
    if let Some(seed) = rest_field("seed") {
        set("seed", seed.clone());
    }
    if let Some(p) = rest_field("presence_penalty") {
        set("presencePenalty", p.clone());
    }
    if let Some(p) = rest_field("frequency_penalty") {
        set("frequencyPenalty", p.clone());
    }
    if rest_field("logprobs").and_then(Value::as_bool) == Some(true) {
        set("responseLogprobs", json!(true));
        if let Some(top) = rest_field("top_logprobs") {
            set("logprobs", top.clone());
        }
    }
    if let Some(format) = req.response_format.as_ref().filter(|f| !f.is_null()) {
        response_format(format, &mut set)?;
    }
    let thinking_budget = match (&req.thinking, &req.reasoning_effort) {
        (Some(t), _) if !t.is_null() => t
            .get("budget_tokens")
            .and_then(Value::as_u64)
            .or_else(|| (t.get("type").and_then(Value::as_str) == Some("disabled")).then_some(0)),
        (_, Some(effort)) => Some(u64::from(effort_budget(effort)?)),
        _ => None,
    };
    if let Some(budget) = thinking_budget {
        set(
            "thinkingConfig",
            json!({"thinkingBudget": budget, "includeThoughts": budget > 0}),
        );
    }

    let (tools, tool_config) = map_tools(req)?;
    if req.parallel_tool_calls == Some(false) {
        // Gemini has no switch to forbid parallel calls.
        dropped.push("parallel_tool_calls".to_owned());
    }

    let mut rest = Map::new();
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
        let name = PASSTHROUGH_RENAMES
            .iter()
            .find(|(from, _)| from == key)
            .map_or(key.as_str(), |(_, to)| to);
        if name == "generationConfig" || name == "generation_config" {
            // Extra generation settings the client passes through, merged under ours.
            if let Some(extra) = value.as_object() {
                for (k, v) in extra {
                    config.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            continue;
        }
        rest.insert(name.to_owned(), value.clone());
    }
    let tool_config = match rest.remove("toolConfig") {
        Some(explicit) => Some(explicit),
        None => tool_config,
    };

    let stream = req.is_stream();
    Ok(MappedRequest {
        body: GenerateRequest {
            contents,
            system_instruction: (!system.is_empty()).then_some(Content {
                role: None,
                parts: system,
            }),
            tools,
            tool_config,
            generation_config: (!config.is_empty()).then_some(config),
            rest,
        },
        stream,
        include_usage: stream && req.include_usage(),
        dropped,
    })
}

fn is_default_value(key: &str, value: &Value) -> bool {
    match key {
        "store" => value.as_bool() == Some(false),
        "logit_bias" => value.as_object().is_some_and(|m| m.is_empty()),
        _ => false,
    }
}

/// `json_object` -> JSON mime type; `json_schema` -> mime type + reduced schema.
fn response_format(format: &Value, set: &mut impl FnMut(&str, Value)) -> Result<(), MapError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") | None => Ok(()),
        Some("json_object") => {
            set("responseMimeType", json!("application/json"));
            Ok(())
        }
        Some("json_schema") => {
            set("responseMimeType", json!("application/json"));
            if let Some(schema) = format.pointer("/json_schema/schema") {
                set("responseSchema", reduce_schema(schema));
            }
            Ok(())
        }
        Some(other) => Err(MapError::Unsupported(format!(
            "response_format type {other:?}"
        ))),
    }
}

/// System/developer text goes to `systemInstruction`; the rest become `user`/`model`
/// turns, consecutive same-role messages merged (tool results join one user turn, as
/// Gemini wants all responses to a parallel call in one turn, in the calls' order).
fn map_messages(msgs: &[ChatMessage]) -> Result<(Vec<Part>, Vec<Content>), MapError> {
    let mut system = Vec::new();
    // Each part with its sort key inside the turn: function responses first, in the
    // order of the calls they answer; everything else after them, as sent.
    let mut turns: Vec<(&str, Vec<(usize, Part)>)> = Vec::new();
    // tool_call_id -> (function name, position in its assistant turn): Gemini matches
    // responses to calls by name and order.
    let mut calls: HashMap<&str, (&str, usize)> = HashMap::new();
    for msg in msgs {
        let (role, parts): (&str, Vec<(usize, Part)>) = match msg.role {
            Role::System | Role::Developer => {
                for part in content_parts(msg.content.as_ref())? {
                    if part.text.is_none() {
                        return Err(MapError::Unsupported(
                            "non-text content in system/developer messages".to_owned(),
                        ));
                    }
                    system.push(part);
                }
                continue;
            }
            Role::User => ("user", unordered(content_parts(msg.content.as_ref())?)),
            Role::Assistant => {
                for (position, call) in msg.tool_calls.iter().flatten().enumerate() {
                    calls.insert(call.id.as_str(), (call.function.name.as_str(), position));
                }
                ("model", unordered(assistant_parts(msg)?))
            }
            Role::Tool => ("user", vec![function_response(msg, &calls)?]),
            Role::Function => {
                return Err(MapError::Unsupported(
                    "legacy `function` role messages; use `tool` messages".to_owned(),
                ));
            }
        };
        if parts.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(parts),
            _ => turns.push((role, parts)),
        }
    }
    let contents = turns
        .into_iter()
        .map(|(role, mut parts)| {
            parts.sort_by_key(|(key, _)| *key);
            Content {
                role: Some(role.to_owned()),
                parts: parts.into_iter().map(|(_, p)| p).collect(),
            }
        })
        .collect();
    Ok((system, contents))
}

/// Parts that keep their order, after any function responses of the same turn.
fn unordered(parts: Vec<Part>) -> Vec<(usize, Part)> {
    parts.into_iter().map(|p| (usize::MAX, p)).collect()
}

fn assistant_parts(msg: &ChatMessage) -> Result<Vec<Part>, MapError> {
    let mut parts: Vec<Part> = content_parts(msg.content.as_ref())?
        .into_iter()
        // Clients send `content: ""` next to tool calls; an empty part is rejected.
        .filter(|p| p.text.as_deref() != Some(""))
        .collect();
    for call in msg.tool_calls.iter().flatten() {
        let (id, signature) = ids::decode(&call.id);
        parts.push(Part {
            function_call: Some(FunctionCall {
                id: (!ids::is_synthesised(id)).then(|| id.to_owned()),
                name: call.function.name.clone(),
                args: parse_arguments(&call.id, &call.function.arguments)?,
            }),
            thought_signature: signature.map(str::to_owned),
            ..Part::default()
        });
    }
    Ok(parts)
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

/// A `tool` message -> a `functionResponse` part (with the position of the call it
/// answers). Gemini wants the call's function name (found through the id of the
/// assistant call) and an object as `response`: a JSON object result is sent as it is,
/// anything else as `{"content": <text>}`.
fn function_response(
    msg: &ChatMessage,
    calls: &HashMap<&str, (&str, usize)>,
) -> Result<(usize, Part), MapError> {
    let call_id = msg
        .tool_call_id
        .as_deref()
        .ok_or_else(|| MapError::InvalidRequest("tool message without tool_call_id".to_owned()))?;
    let (name, position) = match calls.get(call_id) {
        Some((name, position)) => ((*name).to_owned(), *position),
        None => (
            msg.name.clone().ok_or_else(|| {
                MapError::InvalidRequest(format!(
                    "tool message {call_id:?} answers no tool call of an earlier assistant message"
                ))
            })?,
            usize::MAX - 1,
        ),
    };
    let text = match &msg.content {
        None => String::new(),
        Some(MessageContent::Text(t)) => t.clone(),
        Some(MessageContent::Parts(parts)) => parts
            .iter()
            .filter_map(|p| p.text.as_deref())
            .collect::<Vec<_>>()
            .join(""),
    };
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(obj @ Value::Object(_)) => obj,
        _ => json!({"content": text}),
    };
    let (id, _) = ids::decode(call_id);
    Ok((
        position,
        Part {
            function_response: Some(FunctionResponse {
                id: (!ids::is_synthesised(id)).then(|| id.to_owned()),
                name,
                response,
            }),
            ..Part::default()
        },
    ))
}

fn content_parts(content: Option<&MessageContent>) -> Result<Vec<Part>, MapError> {
    match content {
        None => Ok(Vec::new()),
        Some(MessageContent::Text(text)) => Ok(vec![Part::text(text.clone())]),
        Some(MessageContent::Parts(parts)) => parts.iter().map(part).collect(),
    }
}

fn part(p: &ContentPart) -> Result<Part, MapError> {
    match p.kind.as_str() {
        "text" => Ok(Part::text(p.text.clone().unwrap_or_default())),
        "image_url" => {
            let url = p
                .image_url
                .as_ref()
                .map(|u| u.url.as_str())
                .ok_or_else(|| MapError::InvalidRequest("image_url part without a url".into()))?;
            media_part(url, None)
        }
        "input_audio" => {
            let audio = p.rest.get("input_audio");
            let field = |name: &str| audio.and_then(|a| a.get(name)).and_then(Value::as_str);
            let data = field("data")
                .ok_or_else(|| MapError::InvalidRequest("input_audio without data".into()))?;
            let format = field("format").unwrap_or("wav");
            Ok(Part {
                inline_data: Some(Blob {
                    mime_type: format!("audio/{format}"),
                    data: data.to_owned(),
                }),
                ..Part::default()
            })
        }
        "file" => {
            let file = p.rest.get("file");
            let field = |name: &str| file.and_then(|f| f.get(name)).and_then(Value::as_str);
            let format = field("format");
            if let Some(data) = field("file_data") {
                return media_part(data, format);
            }
            if let Some(uri) = field("file_id") {
                return media_part(uri, format);
            }
            Err(MapError::InvalidRequest(
                "file part needs file_data or file_id".into(),
            ))
        }
        other => Err(MapError::Unsupported(format!(
            "content part type {other:?}"
        ))),
    }
}

/// `data:<mime>;base64,<data>` -> `inlineData`; any other URL (https, `gs://`, Files API
/// URIs) -> `fileData`, with the MIME type guessed from the extension when not given.
fn media_part(url: &str, mime: Option<&str>) -> Result<Part, MapError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest.split_once(',').ok_or_else(|| {
            MapError::InvalidRequest("data URL without a ',' separator".to_owned())
        })?;
        let mime_type = meta.strip_suffix(";base64").ok_or_else(|| {
            MapError::Unsupported("data URLs that are not base64-encoded".to_owned())
        })?;
        return Ok(Part {
            inline_data: Some(Blob {
                mime_type: mime.unwrap_or(mime_type).to_owned(),
                data: data.to_owned(),
            }),
            ..Part::default()
        });
    }
    Ok(Part {
        file_data: Some(FileData {
            mime_type: Some(mime.map_or_else(|| guess_mime(url).to_owned(), str::to_owned)),
            file_uri: url.to_owned(),
        }),
        ..Part::default()
    })
}

fn guess_mime(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "txt" => "text/plain",
        _ => "image/jpeg",
    }
}

/// OpenAI function tools -> one Gemini tool with `functionDeclarations`; other tool
/// objects (`{"googleSearch": {}}`, `{"codeExecution": {}}`) pass through as they are.
fn map_tools(req: &ChatRequest) -> Result<(Option<Vec<Value>>, Option<Value>), MapError> {
    let Some(oai_tools) = req.tools.as_ref().filter(|t| !t.is_empty()) else {
        return Ok((None, None));
    };
    let mut declarations = Vec::new();
    let mut others = Vec::new();
    for tool in oai_tools {
        match (&tool.function, tool.kind.as_str()) {
            (Some(f), "function") => {
                let mut decl = Map::new();
                decl.insert("name".into(), json!(f.name));
                if let Some(d) = &f.description {
                    decl.insert("description".into(), json!(d));
                }
                if let Some(params) = f.parameters.as_ref().map(reduce_schema) {
                    // Gemini rejects an OBJECT schema without properties; a function
                    // without arguments simply has no `parameters`.
                    let empty = params
                        .get("properties")
                        .and_then(Value::as_object)
                        .is_none_or(Map::is_empty);
                    if !(empty && params.get("type") == Some(&json!("object"))) {
                        decl.insert("parameters".into(), params);
                    }
                }
                declarations.push(Value::Object(decl));
            }
            (None, _) if !tool.rest.is_empty() => others.push(Value::Object(tool.rest.clone())),
            (_, kind) => return Err(MapError::Unsupported(format!("tool type {kind:?}"))),
        }
    }
    let mut tools = Vec::new();
    if !declarations.is_empty() {
        tools.push(json!({"functionDeclarations": declarations}));
    }
    tools.extend(others);

    let config = match &req.tool_choice {
        None => None,
        Some(ToolChoice::Mode(mode)) => {
            let mode = match mode.as_str() {
                "auto" => "AUTO",
                "required" => "ANY",
                "none" => "NONE",
                other => {
                    return Err(MapError::InvalidRequest(format!(
                        "tool_choice must be none, auto, required or a named function; got {other:?}"
                    )));
                }
            };
            Some(json!({"functionCallingConfig": {"mode": mode}}))
        }
        Some(ToolChoice::Named(named)) => Some(json!({"functionCallingConfig": {
            "mode": "ANY",
            "allowedFunctionNames": [named.function.name],
        }})),
    };
    Ok(((!tools.is_empty()).then_some(tools), config))
}
