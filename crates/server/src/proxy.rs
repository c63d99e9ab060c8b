//! Forwarding an OpenAI-dialect request to a model group: pick deployments in order,
//! send (with retries), fall over to the next deployment on transient failures — all
//! before the first byte reaches the client — then relay the answer.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use gatehouse_config::Dialect;
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::body::passthrough;
use crate::upstream::send::{UpstreamCall, is_retryable, send};
use crate::upstream::stream::relay;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Embeddings,
}

impl Endpoint {
    fn openai_path(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/chat/completions",
            Self::Embeddings => "/embeddings",
        }
    }
}

/// The deployments of `model` this caller may use, in the order to try them.
pub fn route(
    state: &AppState,
    caller: &Caller,
    model: &str,
) -> Result<Vec<Arc<Deployment>>, ApiError> {
    let Some(order) = state.groups.pick_order(model) else {
        let usable: Vec<&str> = state
            .groups
            .names()
            .iter()
            .filter(|name| {
                state
                    .groups
                    .group(name)
                    .and_then(|g| g.first())
                    .is_some_and(|d| caller.may_use_model(name, &d.access_groups))
            })
            .map(String::as_str)
            .collect();
        return Err(ApiError::ModelNotFound(format!(
            "model '{model}' does not exist; models available to this key: {}",
            if usable.is_empty() {
                "none".to_string()
            } else {
                usable.join(", ")
            }
        )));
    };
    if !order
        .iter()
        .any(|d| caller.may_use_model(model, &d.access_groups))
    {
        return Err(ApiError::Forbidden(format!(
            "this key may not use model '{model}'"
        )));
    }
    Ok(order)
}

/// Sends an OpenAI-dialect body to the first deployment that answers.
pub async fn forward(
    state: &AppState,
    request_id: &str,
    deployments: &[Arc<Deployment>],
    body: &Map<String, Value>,
    stream: bool,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let mut last_err = None;
    for deployment in deployments {
        match forward_to(state, request_id, deployment, body, stream, endpoint).await {
            Ok(response) => {
                deployment.stats.record(true);
                return Ok(response);
            }
            Err(err) => {
                deployment.stats.record(!is_retryable(&err));
                if !is_retryable(&err) {
                    return Err(err);
                }
                tracing::warn!(deployment = %deployment.id, error = %err, "deployment failed, trying the next one");
                last_err = Some(err);
            }
        }
    }
    Err(last_err.unwrap_or_else(|| ApiError::Internal("model group has no deployments".into())))
}

async fn forward_to(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
    stream: bool,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let path = match deployment.provider.dialect {
        Dialect::OpenAi => endpoint.openai_path().to_string(),
        Dialect::Azure => azure_path(deployment, endpoint),
        other => {
            return Err(ApiError::NotImplemented(format!(
                "provider '{}' ({other:?} API) is not supported yet for this endpoint",
                deployment.provider.name
            )));
        }
    };
    let body = passthrough(client_body, deployment, &state.settings);
    let body =
        Bytes::from(serde_json::to_vec(&body).map_err(|e| ApiError::Internal(e.to_string()))?);
    let call = UpstreamCall {
        deployment,
        path: &path,
        body,
        stream,
        request_id,
        forward_headers: Vec::new(),
    };
    let response = send(&state.http, &call).await?;
    if stream {
        return Ok(stream_response(response, deployment));
    }
    let bytes = response.bytes().await.map_err(|e| {
        ApiError::UpstreamUnreachable(format!("reading the upstream body failed: {e}"))
    })?;
    record_usage(deployment, &bytes);
    Ok(json_response(StatusCode::OK, bytes, deployment))
}

fn azure_path(deployment: &Deployment, endpoint: Endpoint) -> String {
    let version = deployment.api_version.as_deref().unwrap_or("2024-10-21");
    format!(
        "/openai/deployments/{}{}?api-version={version}",
        deployment.upstream_model,
        endpoint.openai_path()
    )
}

fn stream_response(response: reqwest::Response, deployment: &Deployment) -> Response {
    let body = Body::from_stream(relay(response.bytes_stream(), deployment.timeout));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    add_deployment_headers(headers, deployment);
    response
}

pub fn json_response(status: StatusCode, body: Bytes, deployment: &Deployment) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    add_deployment_headers(headers, deployment);
    response
}

fn add_deployment_headers(headers: &mut axum::http::HeaderMap, deployment: &Deployment) {
    if let Ok(id) = HeaderValue::from_str(&deployment.id) {
        headers.insert("x-litellm-model-id", id);
    }
}

/// Token counters from a non-streaming body. Only `usage` is read; a body without one
/// (some local servers) counts nothing.
fn record_usage(deployment: &Deployment, body: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Usage {
        #[serde(default)]
        prompt_tokens: u64,
        #[serde(default)]
        completion_tokens: u64,
    }
    #[derive(serde::Deserialize)]
    struct WithUsage {
        usage: Option<Usage>,
    }
    if let Ok(WithUsage { usage: Some(u) }) = serde_json::from_slice::<WithUsage>(body) {
        let model = deployment.model_name.clone();
        metrics::counter!("gatehouse_tokens_total", "model" => model.clone(), "kind" => "prompt")
            .increment(u.prompt_tokens);
        metrics::counter!("gatehouse_tokens_total", "model" => model, "kind" => "completion")
            .increment(u.completion_tokens);
    }
}
