//! The seam every translated provider (Anthropic, Gemini, Bedrock) implements, and the
//! drivers written once over it.
//!
//! A [`ChatAdapter`] says how an OpenAI chat body becomes the vendor's request
//! ([`ChatAdapter::prepare`]), how a whole answer comes back ([`ChatAdapter::parse`]),
//! which stateful mapper turns its stream into chat chunks ([`ChatAdapter::stream_mapper`])
//! and what its errors mean ([`ChatAdapter::classify`]). The drivers — [`call`] (the chat
//! API's answer), [`complete`] (a typed completion for the tool loop and the other
//! dialects) and [`open_stream`] (typed chunks for Responses and Messages streams) — send,
//! map errors, read and count usage the same way for every vendor.

use std::pin::Pin;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use gatehouse_config::Dialect;
pub use gatehouse_llm::ChunkMapper;
use gatehouse_llm::openai::{ChatCompletion, ChatRequest, ErrorBody};
use gatehouse_llm::{ErrorKind, MapError};
use serde_json::{Map, Value};

use super::{GATEWAY_ONLY_PARAMS, json_response, sse_response};
use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::send::{UpstreamCall, send};
use crate::upstream::translate::translate;

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// A vendor request, ready to send.
pub struct Prepared {
    /// Appended to `api_base`, or a whole URL (Bedrock signs the exact URL).
    pub path: String,
    pub body: Bytes,
    /// Extra headers (SigV4's).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub stream: bool,
    pub include_usage: bool,
}

pub trait ChatAdapter: Sync {
    /// The vendor's name in messages ("anthropic does not support ...").
    fn vendor(&self) -> &'static str;
    /// Maps `request` for `deployment`; returns the parameters the vendor lacks.
    fn prepare(
        &self,
        deployment: &Deployment,
        request: &ChatRequest,
    ) -> Result<(Prepared, Vec<String>), ApiError>;
    fn parse(
        &self,
        deployment: &Deployment,
        request_id: &str,
        body: &[u8],
    ) -> Result<ChatCompletion, MapError>;
    fn stream_mapper(
        &self,
        deployment: &Deployment,
        request_id: &str,
        include_usage: bool,
    ) -> Box<dyn ChunkMapper>;
    /// An error status + body: its kind, the status to answer, an OpenAI-shaped body.
    fn classify(&self, status: u16, body: &[u8]) -> (ErrorKind, u16, ErrorBody);
    /// The upstream's bytes as SSE events (Bedrock re-frames its binary event stream).
    fn frame(&self, upstream: ByteStream) -> ByteStream {
        upstream
    }
}

/// The adapter for a translated dialect; `None` for OpenAI-compatible ones (passthrough).
pub fn for_dialect(dialect: Dialect) -> Option<&'static dyn ChatAdapter> {
    match dialect {
        Dialect::Anthropic => Some(&super::anthropic::Anthropic),
        Dialect::Gemini => Some(&super::gemini::Gemini),
        Dialect::Bedrock => Some(&super::bedrock::Bedrock),
        Dialect::OpenAi | Dialect::Azure => None,
    }
}

/// The client body with the deployment's provider params merged under it, and what no
/// vendor validating its fields may see removed: the gateway's own params, the configured
/// drops, and AWS settings (credentials, not model inputs).
pub fn merged_body(
    state: &AppState,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
) -> Map<String, Value> {
    let mut body = client_body.clone();
    for (key, value) in &deployment.default_params {
        body.entry(key.clone()).or_insert_with(|| value.clone());
    }
    for key in GATEWAY_ONLY_PARAMS.iter().copied().chain(
        state
            .settings
            .additional_drop_params
            .iter()
            .map(String::as_str),
    ) {
        body.remove(key);
    }
    body.retain(|key, _| !key.starts_with("aws_"));
    body
}

/// Maps `client_body` for `deployment` with `adapter`. `stream` forces the mode. Unknown
/// parameters fail the request unless `drop_params` is on (LiteLLM's behaviour).
fn prepare(
    adapter: &dyn ChatAdapter,
    state: &AppState,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
    stream: Option<bool>,
) -> Result<Prepared, ApiError> {
    let mut body = merged_body(state, deployment, client_body);
    if let Some(stream) = stream {
        body.insert("stream".into(), Value::Bool(stream));
        if !stream {
            body.remove("stream_options");
        }
    }
    let request: ChatRequest = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::BadRequest(format!("invalid chat request: {e}")))?;
    let (prepared, dropped) = adapter.prepare(deployment, &request)?;
    if !dropped.is_empty() && !state.settings.drop_params {
        return Err(ApiError::BadRequest(format!(
            "{} does not support these parameters: {}. Remove them, or set litellm_settings.drop_params: true to drop them",
            adapter.vendor(),
            dropped.join(", ")
        )));
    }
    Ok(prepared)
}

async fn send_prepared(
    adapter: &dyn ChatAdapter,
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    prepared: Prepared,
    forward_headers: Vec<(HeaderName, HeaderValue)>,
) -> Result<reqwest::Response, ApiError> {
    let mut headers = prepared.headers;
    headers.extend(forward_headers);
    let call = UpstreamCall {
        deployment,
        path: &prepared.path,
        body: prepared.body,
        stream: prepared.stream,
        request_id,
        forward_headers: headers,
    };
    send(&state.http, &call)
        .await
        .map_err(|e| super::remap_error(e, |s, b| adapter.classify(s, b)))
}

/// The chat API's answer from a translated vendor: JSON, or chat-chunk SSE.
pub async fn call(
    adapter: &dyn ChatAdapter,
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
    forward_headers: Vec<(HeaderName, HeaderValue)>,
) -> Result<Response, ApiError> {
    let prepared = prepare(adapter, state, deployment, client_body, None)?;
    let (stream, include_usage) = (prepared.stream, prepared.include_usage);
    let response = send_prepared(
        adapter,
        state,
        request_id,
        deployment,
        prepared,
        forward_headers,
    )
    .await?;
    if stream {
        let mapper = adapter.stream_mapper(deployment, request_id, include_usage);
        let events = adapter.frame(Box::pin(response.bytes_stream()));
        let idle = deployment.stream_timeout.unwrap_or(deployment.timeout);
        let stream = translate(events, mapper, idle).await?;
        return Ok(sse_response(Body::from_stream(stream)));
    }
    let completion = read(adapter, response, deployment, request_id).await?;
    let body = serde_json::to_vec(&completion).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, Bytes::from(body)))
}

/// One non-streaming round, as a typed chat completion.
pub async fn complete(
    adapter: &dyn ChatAdapter,
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    body: &Map<String, Value>,
) -> Result<ChatCompletion, ApiError> {
    let prepared = prepare(adapter, state, deployment, body, Some(false))?;
    let response =
        send_prepared(adapter, state, request_id, deployment, prepared, Vec::new()).await?;
    read(adapter, response, deployment, request_id).await
}

/// A streamed round: the vendor's events (as SSE) and the mapper that turns them into
/// chat chunks, for the dialects that re-encode chunks themselves.
pub async fn open_stream(
    adapter: &dyn ChatAdapter,
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    body: &Map<String, Value>,
) -> Result<(ByteStream, Box<dyn ChunkMapper>), ApiError> {
    let prepared = prepare(adapter, state, deployment, body, Some(true))?;
    let include_usage = prepared.include_usage;
    let response =
        send_prepared(adapter, state, request_id, deployment, prepared, Vec::new()).await?;
    let events = adapter.frame(Box::pin(response.bytes_stream()));
    Ok((
        events,
        adapter.stream_mapper(deployment, request_id, include_usage),
    ))
}

async fn read(
    adapter: &dyn ChatAdapter,
    response: reqwest::Response,
    deployment: &Deployment,
    request_id: &str,
) -> Result<ChatCompletion, ApiError> {
    let bytes = crate::upstream::send::read_answer(response).await?;
    let completion = adapter
        .parse(deployment, request_id, &bytes)
        .map_err(map_error)?;
    if let Some(usage) = &completion.usage {
        super::record_usage(deployment, crate::cost::Usage::from_chat(usage));
    }
    Ok(completion)
}

/// A mapping failure as the client sees it: the vendor's own error (classified), an
/// unreadable upstream answer (502), or the client's request (400).
pub fn map_error(err: MapError) -> ApiError {
    match err {
        MapError::Upstream(e) => {
            let status = StatusCode::from_u16(e.kind.status()).unwrap_or(StatusCode::BAD_GATEWAY);
            let body = serde_json::to_vec(&e.to_openai())
                .map(Bytes::from)
                .unwrap_or_default();
            ApiError::Upstream {
                status,
                kind: e.kind,
                body,
                retry_after: None,
            }
        }
        MapError::InvalidUpstream(m) => {
            ApiError::UpstreamUnreachable(format!("unexpected answer from the upstream: {m}"))
        }
        client => ApiError::BadRequest(client.to_string()),
    }
}
