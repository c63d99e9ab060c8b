//! Forwarding an OpenAI-dialect request to a model group: pick deployments in order,
//! send (with retries), fall over to the next deployment on transient failures — all
//! before the first byte reaches the client — then relay the answer.

use std::sync::Arc;

use axum::response::Response;
use gatehouse_config::Dialect;
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::providers;
use crate::state::AppState;
use crate::upstream::send::is_retryable;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Embeddings,
}

impl Endpoint {
    pub fn openai_path(self) -> &'static str {
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
        crate::spend::with(|r| r.set_deployment(deployment));
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

/// One non-streaming chat round over the group (with fall-over), parsed into OpenAI's
/// `chat.completion` shape whatever the vendor. The body must not ask for a stream.
pub async fn complete(
    state: &AppState,
    request_id: &str,
    deployments: &[Arc<Deployment>],
    body: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let mut last_err = None;
    for deployment in deployments {
        crate::spend::with(|r| r.set_deployment(deployment));
        let result = match deployment.provider.dialect {
            Dialect::OpenAi | Dialect::Azure => {
                providers::openai::complete(state, request_id, deployment, body).await
            }
            Dialect::Anthropic => {
                providers::anthropic::complete(state, request_id, deployment, body).await
            }
            Dialect::Gemini => {
                providers::gemini::complete(state, request_id, deployment, body).await
            }
            Dialect::Bedrock => {
                providers::bedrock::complete(state, request_id, deployment, body).await
            }
        };
        match result {
            Ok(value) => {
                deployment.stats.record(true);
                return Ok(value);
            }
            Err(err) => {
                deployment.stats.record(!is_retryable(&err));
                if !is_retryable(&err) {
                    return Err(err);
                }
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
    match (deployment.provider.dialect, endpoint) {
        (Dialect::OpenAi | Dialect::Azure, _) => {
            providers::openai::call(state, request_id, deployment, client_body, stream, endpoint)
                .await
        }
        (Dialect::Anthropic, Endpoint::ChatCompletions) => {
            providers::anthropic::call(state, request_id, deployment, client_body, Vec::new()).await
        }
        (Dialect::Gemini, Endpoint::ChatCompletions) => {
            providers::gemini::call(state, request_id, deployment, client_body).await
        }
        (Dialect::Gemini, Endpoint::Embeddings) => {
            providers::gemini::embeddings(state, request_id, deployment, client_body).await
        }
        (Dialect::Bedrock, Endpoint::ChatCompletions) => {
            providers::bedrock::call(state, request_id, deployment, client_body).await
        }
        (Dialect::Bedrock, Endpoint::Embeddings) => {
            providers::bedrock::embeddings(state, request_id, deployment, client_body).await
        }
        (dialect, _) => Err(ApiError::NotImplemented(format!(
            "provider '{}' ({dialect:?} API) is not supported yet for {}",
            deployment.provider.name,
            endpoint.openai_path()
        ))),
    }
}
