//! One module per vendor dialect: how a chat request in OpenAI's shape reaches it and how
//! its answer comes back in OpenAI's shape. `proxy` picks the module by the deployment's
//! dialect.

pub mod adapter;
pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod gemini;
pub mod openai;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::deployments::Deployment;
use crate::error::ApiError;

/// Parameters only the gateway reads (LiteLLM's request-level knobs: routing, timeouts,
/// caching, mocking); never sent upstream, whatever the vendor (passthrough included:
/// OpenAI refuses fields it does not know).
pub const GATEWAY_ONLY_PARAMS: &[&str] = &[
    "tags",
    "timeout",
    "stream_timeout",
    "mock_response",
    "mock_testing_fallbacks",
    "num_retries",
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "caching",
    "cache",
    "no-log",
    "litellm_logging_obj",
    "api_base",
    "api_key",
];

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The router's headers (`x-litellm-model-id`, ...) are added by `pipeline::decorate`.
pub fn sse_response(body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

pub fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Token counters (low-cardinality: model names come from config), and the request's
/// spend record.
pub fn record_usage(deployment: &Deployment, usage: crate::cost::Usage) {
    crate::spend::with(|r| r.add_usage(usage));
    let model = deployment.model_name.clone();
    metrics::counter!("gatehouse_tokens_total", "model" => model.clone(), "kind" => "prompt")
        .increment(usage.prompt);
    metrics::counter!("gatehouse_tokens_total", "model" => model, "kind" => "completion")
        .increment(usage.completion);
}

/// Translated chat chunks as the client's SSE bytes.
pub fn chunks_sse(
    chunks: &[gatehouse_llm::openai::ChatCompletionChunk],
) -> Result<Vec<u8>, crate::error::ApiError> {
    let mut out = Vec::new();
    for chunk in chunks {
        let json = serde_json::to_string(chunk)
            .map_err(|e| crate::error::ApiError::Internal(e.to_string()))?;
        gatehouse_llm::sse::encode(None, &json, &mut out);
    }
    Ok(out)
}

/// The end of a translated stream: its last chunks, then `[DONE]`.
pub fn final_sse(chunks: &[gatehouse_llm::openai::ChatCompletionChunk]) -> Vec<u8> {
    let mut out = chunks_sse(chunks).unwrap_or_default();
    out.extend_from_slice(gatehouse_llm::sse::DONE);
    out
}

/// An upstream error status + body as a vendor's mapper reads it: its kind, the status to
/// answer with, and an OpenAI-shaped body. Keeps the `Retry-After` the vendor sent.
pub fn remap_error(
    err: ApiError,
    map: impl FnOnce(
        u16,
        &[u8],
    ) -> (
        gatehouse_llm::ErrorKind,
        u16,
        gatehouse_llm::openai::ErrorBody,
    ),
) -> ApiError {
    match err {
        ApiError::Upstream {
            status,
            body,
            retry_after,
            ..
        } => {
            let (kind, mapped_status, mapped) = map(status.as_u16(), &body);
            ApiError::Upstream {
                status: StatusCode::from_u16(mapped_status).unwrap_or(StatusCode::BAD_GATEWAY),
                kind,
                body: serde_json::to_vec(&mapped).map(Bytes::from).unwrap_or(body),
                retry_after,
            }
        }
        other => other,
    }
}
