//! The provider adapters behind the OpenAI chat and embeddings APIs, for one deployment:
//! which provider module maps, sends and maps back. Which deployment, retries and
//! fallbacks are the router's (`pipeline::attempts`).

use axum::response::Response;
use gatehouse_config::Dialect;
use serde_json::{Map, Value};

use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::providers;
use crate::state::AppState;

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

/// One non-streaming chat round on one deployment, parsed into OpenAI's
/// `chat.completion` shape whatever the vendor (the body must not ask for a stream). An
/// answer that is not a JSON object is the upstream's failure (502), never a success.
pub async fn complete_one(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    body: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let value = match providers::adapter::for_dialect(deployment.provider.dialect) {
        None => providers::openai::complete(state, request_id, deployment, body).await?,
        Some(adapter) => {
            let completion =
                providers::adapter::complete(adapter, state, request_id, deployment, body).await?;
            serde_json::to_value(&completion).map_err(|e| ApiError::Internal(e.to_string()))?
        }
    };
    if !value.get("choices").is_some_and(Value::is_array) {
        return Err(ApiError::UpstreamUnreachable(
            "the upstream answered something that is not a chat completion".into(),
        ));
    }
    Ok(value)
}

/// Sends an OpenAI-dialect request to one deployment and relays its answer (passthrough
/// for OpenAI-compatible upstreams, translated for the others).
pub async fn forward_one(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
    stream: bool,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let dialect = deployment.provider.dialect;
    match (providers::adapter::for_dialect(dialect), endpoint) {
        (None, _) => {
            providers::openai::call(state, request_id, deployment, client_body, stream, endpoint)
                .await
        }
        (Some(adapter), Endpoint::ChatCompletions) => {
            providers::adapter::call(
                adapter,
                state,
                request_id,
                deployment,
                client_body,
                Vec::new(),
            )
            .await
        }
        _ => embeddings(state, request_id, deployment, client_body, dialect).await,
    }
}

async fn embeddings(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
    dialect: Dialect,
) -> Result<Response, ApiError> {
    match dialect {
        Dialect::Gemini => {
            providers::gemini::embeddings(state, request_id, deployment, client_body).await
        }
        Dialect::Bedrock => {
            providers::bedrock::embeddings(state, request_id, deployment, client_body).await
        }
        _ => Err(ApiError::NotImplemented(format!(
            "provider '{}' ({dialect:?} API) has no embeddings endpoint",
            deployment.provider.name,
        ))),
    }
}
