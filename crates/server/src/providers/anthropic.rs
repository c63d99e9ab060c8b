//! Anthropic Messages upstreams behind the OpenAI chat API: the request, the answer and
//! the stream are translated by `gatehouse_llm::anthropic`.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use gatehouse_llm::MapError;
use gatehouse_llm::anthropic::{self, AnthropicDefaults, StreamMapper};
use gatehouse_llm::openai::ChatRequest;
use serde_json::{Map, Value};

use super::{GATEWAY_ONLY_PARAMS, json_response, record_tokens, sse_response, unix_now};
use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::send::{UpstreamCall, send};
use crate::upstream::translate::{StreamTranslator, translate};

/// The chat request as Anthropic will get it, ready to send.
pub struct Prepared {
    pub body: Bytes,
    pub stream: bool,
    pub include_usage: bool,
}

/// Maps an OpenAI chat body for `deployment`. Parameters Anthropic has no equivalent for
/// fail the request unless `drop_params` is on (LiteLLM's behaviour).
pub fn prepare(
    state: &AppState,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
) -> Result<Prepared, ApiError> {
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
    let request: ChatRequest = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::BadRequest(format!("invalid chat request: {e}")))?;
    let mapped = anthropic::chat_to_messages(
        &request,
        &deployment.upstream_model,
        &AnthropicDefaults::default(),
    )
    .map_err(map_error)?;
    if !mapped.dropped.is_empty() && !state.settings.drop_params {
        return Err(ApiError::BadRequest(format!(
            "anthropic does not support these parameters: {}. Remove them, or set litellm_settings.drop_params: true to drop them",
            mapped.dropped.join(", ")
        )));
    }
    let body = serde_json::to_vec(&mapped.body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Prepared {
        body: Bytes::from(body),
        stream: mapped.stream,
        include_usage: mapped.include_usage,
    })
}

pub async fn call(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
    forward_headers: Vec<(HeaderName, HeaderValue)>,
) -> Result<Response, ApiError> {
    let prepared = prepare(state, deployment, client_body)?;
    let call = UpstreamCall {
        deployment,
        path: anthropic::MESSAGES_PATH,
        body: prepared.body,
        stream: prepared.stream,
        request_id,
        forward_headers,
    };
    let response = send(&state.http, &call).await.map_err(vendor_error)?;
    if prepared.stream {
        let translator = ChatChunks {
            mapper: StreamMapper::new(&deployment.model_name, unix_now(), prepared.include_usage),
        };
        let stream = translate(response.bytes_stream(), translator, deployment.timeout).await?;
        return Ok(sse_response(Body::from_stream(stream), deployment));
    }
    let bytes = response.bytes().await.map_err(|e| {
        ApiError::UpstreamUnreachable(format!("reading the upstream body failed: {e}"))
    })?;
    let completion = anthropic::messages_to_chat(&bytes, &deployment.model_name, unix_now())
        .map_err(map_error)?;
    if let Some(usage) = &completion.usage {
        record_tokens(deployment, usage.prompt_tokens, usage.completion_tokens);
    }
    let body = serde_json::to_vec(&completion).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, Bytes::from(body), deployment))
}

/// One non-streaming chat round, answered in OpenAI's shape.
pub async fn complete(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    body: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let prepared = prepare(state, deployment, body)?;
    let call = UpstreamCall {
        deployment,
        path: anthropic::MESSAGES_PATH,
        body: prepared.body,
        stream: false,
        request_id,
        forward_headers: Vec::new(),
    };
    let bytes = send(&state.http, &call)
        .await
        .map_err(vendor_error)?
        .bytes()
        .await
        .map_err(|e| {
            ApiError::UpstreamUnreachable(format!("reading the upstream body failed: {e}"))
        })?;
    let completion = anthropic::messages_to_chat(&bytes, &deployment.model_name, unix_now())
        .map_err(map_error)?;
    if let Some(usage) = &completion.usage {
        record_tokens(deployment, usage.prompt_tokens, usage.completion_tokens);
    }
    serde_json::to_value(&completion).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Anthropic's error status and body, as the OpenAI client expects them (529 → 503).
pub fn vendor_error(err: ApiError) -> ApiError {
    super::remap_error(err, |status, body| {
        let m = anthropic::map_error(status, body);
        (m.kind, m.status, m.body)
    })
}

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

/// Anthropic SSE → OpenAI `chat.completion.chunk` SSE.
struct ChatChunks {
    mapper: StreamMapper,
}

impl StreamTranslator for ChatChunks {
    fn on_event(&mut self, event: Option<&str>, data: &str) -> Result<Vec<u8>, ApiError> {
        let chunks = self.mapper.on_event(event, data).map_err(map_error)?;
        super::chunks_sse(&chunks)
    }

    fn usage(&self) -> Option<crate::cost::Usage> {
        Some(super::token_usage(&self.mapper.usage()))
    }

    fn finish(&mut self) -> Vec<u8> {
        super::final_sse(&self.mapper.finish())
    }
}

/// Opens a streaming chat round on an Anthropic deployment: the chat body is mapped
/// with [`prepare`], and the returned [`StreamMapper`] turns the upstream's Messages SSE
/// back into chat chunks. Used by the inbound dialects that re-encode chunks themselves.
pub async fn open_chat_stream(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    body: &Map<String, Value>,
) -> Result<(reqwest::Response, StreamMapper), ApiError> {
    let prepared = prepare(state, deployment, body)?;
    let call = UpstreamCall {
        deployment,
        path: anthropic::MESSAGES_PATH,
        body: prepared.body,
        stream: true,
        request_id,
        forward_headers: Vec::new(),
    };
    let response = send(&state.http, &call).await.map_err(vendor_error)?;
    let mapper = StreamMapper::new(&deployment.model_name, unix_now(), prepared.include_usage);
    Ok((response, mapper))
}
