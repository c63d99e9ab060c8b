//! Google Gemini (Developer API, API key) behind the OpenAI chat and embeddings APIs:
//! the request, the answer and the stream are translated by `gatehouse_llm::gemini`.
//! The key goes in `x-goog-api-key` (see `upstream::send`).

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use gatehouse_llm::gemini::{self, StreamMapper};
use gatehouse_llm::openai::ChatRequest;
use serde_json::{Map, Value};

use super::anthropic::map_error;
use super::{GATEWAY_ONLY_PARAMS, json_response, record_tokens, sse_response, unix_now};
use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::send::{UpstreamCall, send};
use crate::upstream::translate::{StreamTranslator, translate};

/// The chat request as Gemini will get it, ready to send.
pub struct Prepared {
    pub path: String,
    pub body: Bytes,
    pub stream: bool,
    pub include_usage: bool,
}

/// The client body with the deployment's provider params merged under it and the
/// gateway-only params removed (Gemini rejects unknown fields).
fn merged_body(
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
    body
}

/// Paths carry `/v1beta`; an `api_base` written with it must not double it.
fn upstream_path(deployment: &Deployment, path: String) -> String {
    if deployment.api_base.ends_with(gemini::API_VERSION_PATH) {
        path.strip_prefix(gemini::API_VERSION_PATH)
            .map(str::to_owned)
            .unwrap_or(path)
    } else {
        path
    }
}

/// Maps an OpenAI chat body for `deployment`. Parameters Gemini has no equivalent for
/// fail the request unless `drop_params` is on (LiteLLM's behaviour).
pub fn prepare(
    state: &AppState,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
    force_stream: Option<bool>,
) -> Result<Prepared, ApiError> {
    let mut body = merged_body(state, deployment, client_body);
    if let Some(stream) = force_stream {
        body.insert("stream".to_owned(), Value::Bool(stream));
    }
    let request: ChatRequest = serde_json::from_value(Value::Object(body))
        .map_err(|e| ApiError::BadRequest(format!("invalid chat request: {e}")))?;
    let mapped = gemini::chat_to_gemini(&request).map_err(map_error)?;
    if !mapped.dropped.is_empty() && !state.settings.drop_params {
        return Err(ApiError::BadRequest(format!(
            "gemini does not support these parameters: {}. Remove them, or set litellm_settings.drop_params: true to drop them",
            mapped.dropped.join(", ")
        )));
    }
    let body = serde_json::to_vec(&mapped.body).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Prepared {
        path: upstream_path(
            deployment,
            gemini::generate_path(&deployment.upstream_model, mapped.stream),
        ),
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
) -> Result<Response, ApiError> {
    let prepared = prepare(state, deployment, client_body, None)?;
    let call = UpstreamCall {
        deployment,
        path: &prepared.path,
        body: prepared.body,
        stream: prepared.stream,
        request_id,
        forward_headers: Vec::new(),
    };
    let response = send(&state.http, &call).await.map_err(vendor_error)?;
    if prepared.stream {
        let translator = ChatChunks {
            mapper: StreamMapper::new(&deployment.model_name, unix_now(), prepared.include_usage),
        };
        let stream = translate(response.bytes_stream(), translator, deployment.timeout).await?;
        return Ok(sse_response(Body::from_stream(stream), deployment));
    }
    let completion = read_completion(response, deployment).await?;
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
    let prepared = prepare(state, deployment, body, Some(false))?;
    let call = UpstreamCall {
        deployment,
        path: &prepared.path,
        body: prepared.body,
        stream: false,
        request_id,
        forward_headers: Vec::new(),
    };
    let response = send(&state.http, &call).await.map_err(vendor_error)?;
    let completion = read_completion(response, deployment).await?;
    serde_json::to_value(&completion).map_err(|e| ApiError::Internal(e.to_string()))
}

async fn read_completion(
    response: reqwest::Response,
    deployment: &Deployment,
) -> Result<gatehouse_llm::openai::ChatCompletion, ApiError> {
    let bytes = response.bytes().await.map_err(|e| {
        ApiError::UpstreamUnreachable(format!("reading the upstream body failed: {e}"))
    })?;
    let completion =
        gemini::gemini_to_chat(&bytes, &deployment.model_name, unix_now()).map_err(map_error)?;
    if let Some(usage) = &completion.usage {
        record_tokens(deployment, usage.prompt_tokens, usage.completion_tokens);
    }
    Ok(completion)
}

/// `POST /v1/embeddings` through `batchEmbedContents`.
pub async fn embeddings(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
) -> Result<Response, ApiError> {
    let body = merged_body(state, deployment, client_body);
    let mapped =
        gemini::embeddings_request(&body, &deployment.upstream_model).map_err(map_error)?;
    let path = upstream_path(deployment, gemini::embed_path(&deployment.upstream_model));
    let call = UpstreamCall {
        deployment,
        path: &path,
        body: Bytes::from(
            serde_json::to_vec(&mapped.body).map_err(|e| ApiError::Internal(e.to_string()))?,
        ),
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
    let answer = gemini::embeddings_response(&bytes, &deployment.model_name, mapped.base64)
        .map_err(map_error)?;
    let body = serde_json::to_vec(&answer).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, Bytes::from(body), deployment))
}

/// Google's error status and body, as the OpenAI client expects them.
pub fn vendor_error(err: ApiError) -> ApiError {
    super::remap_error(err, |status, body| {
        let m = gemini::map_error(status, body);
        (m.kind, m.status, m.body)
    })
}

/// Gemini SSE (`alt=sse`) -> OpenAI `chat.completion.chunk` SSE.
struct ChatChunks {
    mapper: StreamMapper,
}

impl StreamTranslator for ChatChunks {
    fn usage(&self) -> Option<crate::cost::Usage> {
        self.mapper.usage().as_ref().map(super::token_usage)
    }

    fn on_event(&mut self, _event: Option<&str>, data: &str) -> Result<Vec<u8>, ApiError> {
        let chunks = self.mapper.on_event(data).map_err(map_error)?;
        super::chunks_sse(&chunks)
    }

    fn finish(&mut self) -> Vec<u8> {
        super::final_sse(&self.mapper.finish())
    }
}
