//! `POST /v1/messages` (also `?beta=true`, as Claude Code calls it) and
//! `POST /v1/messages/count_tokens`: the Anthropic Messages API in front of every
//! provider.
//!
//! - Anthropic deployments get the client's body with only `model` rewritten, and the
//!   client's `anthropic-version` / `anthropic-beta` headers unchanged; the answer (JSON
//!   or SSE) comes back byte for byte.
//! - Any other deployment: `messages_in::to_chat` → one chat round → `from_chat`, or for
//!   a stream, chat chunks → `MessagesStreamWriter`.
//!
//! Every error — the gateway's own included — is answered in Anthropic's shape.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use gatehouse_config::Dialect;
use gatehouse_llm::anthropic::MESSAGES_PATH;
use gatehouse_llm::messages_in::{self, MessagesContext, MessagesStreamWriter};
use gatehouse_llm::openai::{ChatCompletion, ChatCompletionChunk};
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::deployments::Deployment;
use crate::dialects::usage::{self, Shape};
use crate::dialects::{chunks, errors, sse};
use crate::error::ApiError;
use crate::proxy::{self, route};
use crate::request::{RequestId, parse_object, read_body};
use crate::state::AppState;
use crate::upstream::send::{UpstreamCall, is_retryable, send};
use crate::{spend, tools};

const COUNT_TOKENS_PATH: &str = "/v1/messages/count_tokens";
/// Client headers an Anthropic upstream gets unchanged.
const FORWARDED: &[&str] = &["anthropic-version", "anthropic-beta"];

pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (body, model) = match read(&state, body).await {
        Ok(read) => read,
        Err(err) => return errors::anthropic_response(&err),
    };
    let handler = create_inner(&state, &caller, &request_id, &headers, body, &model);
    match spend::account(&state, &caller, &request_id, &model, handler).await {
        Ok(response) => response,
        Err(err) => errors::anthropic_response(&err),
    }
}

pub async fn count_tokens(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match count_inner(&state, &caller, &request_id, &headers, body).await {
        Ok(response) => response,
        Err(err) => errors::anthropic_response(&err),
    }
}

async fn read(state: &AppState, body: Body) -> Result<(Map<String, Value>, String), ApiError> {
    let bytes = read_body(
        body,
        state.settings.max_request_bytes,
        state.settings.max_request_size_mb,
    )
    .await?;
    let body = parse_object(&bytes)?;
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(ApiError::BadRequest("model: Field required".into())),
    };
    if !matches!(body.get("messages"), Some(Value::Array(_))) {
        return Err(ApiError::BadRequest("messages: Field required".into()));
    }
    Ok((body, model))
}

fn forwarded_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    FORWARDED
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.clone();
            Some((HeaderName::from_static(name), value))
        })
        .collect()
}

async fn create_inner(
    state: &Arc<AppState>,
    caller: &Caller,
    request_id: &str,
    headers: &HeaderMap,
    body: Map<String, Value>,
    model: &str,
) -> Result<Response, ApiError> {
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let deployments = route(state, caller, model)?;
    tracing::debug!(model = %model, stream, key = %caller.key_id, "messages");
    let model_servers: Vec<String> = deployments
        .iter()
        .flat_map(|d| d.mcp_servers.iter().cloned())
        .collect();
    if !model_servers.is_empty() || headers.contains_key("x-mcp-servers") {
        let mut no_tools = Map::new();
        let attached = tools::attachments(
            &state.hub,
            &caller.mcp(),
            headers,
            &mut no_tools,
            &model_servers,
        )?;
        if !attached.is_empty() {
            return with_mcp(
                state,
                caller,
                request_id,
                deployments,
                &body,
                model,
                stream,
                attached,
            )
            .await;
        }
    }
    let forward = forwarded_headers(headers);
    let mut last_err = None;
    for deployment in &deployments {
        let result = if deployment.provider.dialect == Dialect::Anthropic {
            passthrough(state, request_id, deployment, &body, stream, &forward).await
        } else {
            translated(state, request_id, deployment, &body, model, stream).await
        };
        match result {
            Ok(response) => {
                deployment.stats.record(true);
                return Ok(response);
            }
            Err(err) if is_retryable(&err) => {
                deployment.stats.record(false);
                tracing::warn!(deployment = %deployment.id, error = %err, "deployment failed, trying the next one");
                last_err = Some(err);
            }
            Err(err) => {
                deployment.stats.record(true);
                return Err(err);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| ApiError::Internal("model group has no deployments".into())))
}

/// The client's body with the model name mapped, for an Anthropic deployment.
fn upstream_body(
    state: &AppState,
    deployment: &Deployment,
    body: &Map<String, Value>,
) -> Result<Bytes, ApiError> {
    let mut body = body.clone();
    body.insert("model".into(), json!(deployment.upstream_model));
    for key in &state.settings.additional_drop_params {
        body.remove(key);
    }
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn passthrough(
    state: &AppState,
    request_id: &str,
    deployment: &Arc<Deployment>,
    body: &Map<String, Value>,
    stream: bool,
    forward: &[(HeaderName, HeaderValue)],
) -> Result<Response, ApiError> {
    let call = UpstreamCall {
        deployment,
        path: MESSAGES_PATH,
        body: upstream_body(state, deployment, body)?,
        stream,
        request_id,
        forward_headers: forward.to_vec(),
    };
    let response = send(&state.http, &call).await?;
    spend::with(|r| r.set_deployment(deployment));
    if stream {
        let idle = deployment.stream_timeout.unwrap_or(deployment.timeout);
        let relayed = sse::relay_anthropic(response.bytes_stream(), idle);
        let body = Body::from_stream(usage::tap(Shape::Anthropic, relayed));
        return Ok(with_model_id(sse::response(body), deployment));
    }
    let bytes = response.bytes().await.map_err(|e| {
        ApiError::UpstreamUnreachable(format!("reading the upstream body failed: {e}"))
    })?;
    usage::record_body(Shape::Anthropic, &bytes);
    Ok(with_model_id(
        json_response(StatusCode::OK, bytes),
        deployment,
    ))
}

async fn translated(
    state: &AppState,
    request_id: &str,
    deployment: &Arc<Deployment>,
    body: &Map<String, Value>,
    model: &str,
    stream: bool,
) -> Result<Response, ApiError> {
    let (chat_body, ctx) = chat_body(body)?;
    let one = std::slice::from_ref(deployment);
    let mut response = if stream {
        let chunks = chunks::open(state, request_id, one, &chat_body).await?;
        let events = chunks::encode(chunks, Writer(MessagesStreamWriter::new(model)));
        sse::response(Body::from_stream(events))
    } else {
        let value = proxy::complete(state, request_id, one, &chat_body).await?;
        let completion: ChatCompletion = serde_json::from_value(value).map_err(|e| {
            ApiError::UpstreamUnreachable(format!("unexpected chat answer from the upstream: {e}"))
        })?;
        let message = messages_in::from_chat(&completion, model);
        json_response(StatusCode::OK, Bytes::from(message.to_string()))
    };
    if !ctx.dropped_tools.is_empty()
        && let Ok(value) = HeaderValue::from_str(&ctx.dropped_tools.join(","))
    {
        response
            .headers_mut()
            .insert("x-gatehouse-dropped-tools", value);
    }
    Ok(with_model_id(response, deployment))
}

/// The Messages body as a chat body for the same public model.
fn chat_body(body: &Map<String, Value>) -> Result<(Map<String, Value>, MessagesContext), ApiError> {
    let mut body = body.clone();
    hoist_system_messages(&mut body);
    let (chat, ctx) = messages_in::to_chat(&Value::Object(body))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if !ctx.dropped_tools.is_empty() || !ctx.ignored.is_empty() {
        tracing::debug!(dropped_tools = ?ctx.dropped_tools, ignored = ?ctx.ignored, "messages request mapped to chat");
    }
    match serde_json::to_value(&chat) {
        Ok(Value::Object(map)) => Ok((map, ctx)),
        _ => Err(ApiError::Internal("chat request did not serialize".into())),
    }
}

/// MCP servers attached by the `x-mcp-servers` header or the model's
/// `model_info.mcp_servers`: the gateway's tool loop (the one chat completions use) runs
/// the tools, whatever the provider, and the client gets the final answer. A streamed
/// request gets that answer told as a Messages stream once the tools have run.
#[allow(clippy::too_many_arguments)]
async fn with_mcp(
    state: &Arc<AppState>,
    caller: &Caller,
    request_id: &str,
    deployments: Vec<Arc<Deployment>>,
    body: &Map<String, Value>,
    model: &str,
    stream: bool,
    attached: Vec<tools::AttachedServer>,
) -> Result<Response, ApiError> {
    let (mut chat, _) = chat_body(body)?;
    chat.remove("stream");
    chat.remove("stream_options");
    let answer = tools::run(
        state.clone(),
        caller,
        request_id.to_owned(),
        deployments,
        chat,
        attached,
    )
    .await?;
    let status = answer.status();
    let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
        .await
        .map_err(|e| ApiError::Internal(format!("reading the tool loop's answer: {e}")))?;
    if !status.is_success() {
        return Err(ApiError::Upstream {
            status,
            body: bytes,
        });
    }
    let completion: ChatCompletion = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::UpstreamUnreachable(format!("unexpected chat answer from the upstream: {e}"))
    })?;
    if !stream {
        let message = messages_in::from_chat(&completion, model);
        return Ok(json_response(
            StatusCode::OK,
            Bytes::from(message.to_string()),
        ));
    }
    let mut writer = MessagesStreamWriter::new(model);
    let mut out = Vec::new();
    for chunk in chunks::completion_chunks(completion) {
        out.extend(writer.push(&chunk));
    }
    out.extend(writer.finish());
    Ok(sse::response(Body::from(out)))
}

/// Claude Code sends `role: "system"` turns inside `messages` (its environment notes);
/// the chat mapping knows system text only at the top. Their text is appended to the
/// top-level `system`, in order — the model still reads it as system guidance.
fn hoist_system_messages(body: &mut Map<String, Value>) {
    let Some(Value::Array(messages)) = body.get_mut("messages") else {
        return;
    };
    let (system, kept): (Vec<Value>, Vec<Value>) = messages
        .drain(..)
        .partition(|m| m.get("role").and_then(Value::as_str) == Some("system"));
    *messages = kept;
    if system.is_empty() {
        return;
    }
    let mut blocks: Vec<Value> = match body.remove("system") {
        Some(Value::String(text)) => vec![json!({"type": "text", "text": text})],
        Some(Value::Array(blocks)) => blocks,
        _ => Vec::new(),
    };
    for message in system {
        match message.get("content") {
            Some(Value::String(text)) => blocks.push(json!({"type": "text", "text": text})),
            Some(Value::Array(parts)) => blocks.extend(
                parts
                    .iter()
                    .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                    .cloned(),
            ),
            _ => {}
        }
    }
    body.insert("system".into(), Value::Array(blocks));
}

async fn count_inner(
    state: &Arc<AppState>,
    caller: &Caller,
    request_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (body, model) = read(state, body).await?;
    let deployments = route(state, caller, &model)?;
    let Some(deployment) = deployments.first() else {
        return Err(ApiError::Internal("model group has no deployments".into()));
    };
    if deployment.provider.dialect == Dialect::Anthropic {
        let call = UpstreamCall {
            deployment,
            path: COUNT_TOKENS_PATH,
            body: upstream_body(state, deployment, &body)?,
            stream: false,
            request_id,
            forward_headers: forwarded_headers(headers),
        };
        let bytes = send(&state.http, &call).await?.bytes().await.map_err(|e| {
            ApiError::UpstreamUnreachable(format!("reading the upstream body failed: {e}"))
        })?;
        return Ok(json_response(StatusCode::OK, bytes));
    }
    let tokens = estimate_tokens(&body);
    let mut response = json_response(
        StatusCode::OK,
        Bytes::from(json!({ "input_tokens": tokens }).to_string()),
    );
    response.headers_mut().insert(
        "x-gatehouse-token-estimate",
        HeaderValue::from_static("true"),
    );
    Ok(response)
}

/// The estimate for providers without a counting endpoint: one token per four
/// characters of every text the model reads (system, message texts, tool inputs and
/// results, tool names, descriptions and schemas), rounded up, plus four tokens of
/// framing per message and per tool. English text averages about four characters per
/// token on current tokenizers; code and other languages count higher, so treat it as a
/// budget hint, not a bill.
pub fn estimate_tokens(body: &Map<String, Value>) -> u64 {
    fn chars(value: &Value) -> usize {
        match value {
            Value::String(s) => s.chars().count(),
            Value::Array(items) => items.iter().map(chars).sum(),
            Value::Object(map) => map
                .iter()
                // Block types and cache markers are framing, not text.
                .filter(|(k, _)| !matches!(k.as_str(), "type" | "cache_control" | "id"))
                .map(|(_, v)| chars(v))
                .sum(),
            Value::Number(n) => n.to_string().len(),
            Value::Bool(_) | Value::Null => 0,
        }
    }
    let mut total = 0usize;
    let mut framing = 0u64;
    for key in ["system", "messages", "tools"] {
        if let Some(value) = body.get(key) {
            total += chars(value);
            if let Value::Array(items) = value
                && key != "system"
            {
                framing += 4 * items.len() as u64;
            }
        }
    }
    (total as u64).div_ceil(4) + framing
}

/// The Messages stream writer as a [`chunks::ChunkWriter`].
struct Writer(MessagesStreamWriter);

impl chunks::ChunkWriter for Writer {
    fn push(&mut self, chunk: &ChatCompletionChunk) -> Vec<u8> {
        self.0.push(chunk)
    }

    fn fail(&mut self, err: &ApiError) -> Vec<u8> {
        self.0.fail(errors::kind_of(err), &errors::message_of(err))
    }

    fn finish(&mut self) -> Vec<u8> {
        self.0.finish()
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn with_model_id(mut response: Response, deployment: &Deployment) -> Response {
    if let Ok(id) = HeaderValue::from_str(&deployment.id) {
        response.headers_mut().insert("x-litellm-model-id", id);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_turns_join_the_top_level_system() {
        let mut body = json!({"system": "top", "messages": [
            {"role": "user", "content": "hi"},
            {"role": "system", "content": [{"type": "text", "text": "env"}]}]})
        .as_object()
        .cloned()
        .unwrap();
        hoist_system_messages(&mut body);
        assert_eq!(body["messages"].as_array().unwrap().len(), 1);
        assert_eq!(
            body["system"],
            json!([{"type": "text", "text": "top"}, {"type": "text", "text": "env"}])
        );
    }

    #[test]
    fn estimate_counts_text_and_framing() {
        let body = json!({"model": "m", "system": "abcd",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "abcdefgh"}]}]});
        // "abcd" + "user" + "abcdefgh" = 16 chars -> 4 tokens, + 4 framing.
        assert_eq!(estimate_tokens(body.as_object().unwrap()), 8);
    }
}
