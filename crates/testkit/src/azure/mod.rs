//! Azure OpenAI: `/openai/deployments/{deployment}/chat/completions` and `/embeddings`
//! with `?api-version=` and the `api-key` header. Azure checks the version and the key
//! itself, then answers exactly as OpenAI does (the deployment stands for the model), so
//! after its own checks the request is served by the OpenAI mock. Azure's content-filter
//! refusals are scripted with [`crate::Reply::Error`] (see [`content_filter_error`]).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use crate::openai;
use crate::respond;
use crate::state::Shared;

/// API versions the mock serves (a representative GA and preview set).
const VERSIONS: &[&str] = &[
    "2024-02-01",
    "2024-06-01",
    "2024-10-21",
    "2025-01-01-preview",
    "2025-03-01-preview",
    "2025-04-01-preview",
];

/// The body Azure sends with HTTP 400 when its content filter blocks a prompt.
pub fn content_filter_error() -> Value {
    json!({"error": {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
        "type": null,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": false, "severity": "safe"},
                "self_harm": {"filtered": false, "severity": "safe"},
                "sexual": {"filtered": false, "severity": "safe"},
                "violence": {"filtered": true, "severity": "medium"},
            },
        },
    }})
}

fn error(status: u16, code: &str, message: &str) -> Response {
    respond::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
        &[],
    )
}

/// Azure's own checks, then the OpenAI behaviour with the deployment as the model.
async fn admit(
    shared: &Arc<Shared>,
    deployment: &str,
    uri: &Uri,
    headers: &HeaderMap,
    bytes: &Bytes,
) -> Result<(HeaderMap, Bytes), Response> {
    let version = uri
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("api-version=")));
    // Azure answers an unknown or missing api-version with a bare 404.
    if !version.is_some_and(|v| VERSIONS.contains(&v)) {
        return Err(error(404, "404", "Resource not found"));
    }
    let key = headers.get("api-key").and_then(|v| v.to_str().ok());
    if let Some(expected) = shared.opts.api_key.as_deref()
        && key != Some(expected)
    {
        return Err(error(
            401,
            "401",
            "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
        ));
    }
    let mut headers = headers.clone();
    if let Some(key) = key
        && let Ok(v) = HeaderValue::from_str(&format!("Bearer {key}"))
    {
        headers.insert("authorization", v);
    }
    // The deployment decides the model; Azure ignores (and tolerates) a `model` field.
    let bytes = match respond::parse_body(bytes) {
        Ok(Value::Object(mut body)) => {
            body.insert("model".into(), json!(deployment));
            Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
        }
        _ => bytes.clone(),
    };
    Ok((headers, bytes))
}

pub(crate) async fn chat(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    match admit(&shared, &deployment, &uri, &headers, &bytes).await {
        Ok((headers, bytes)) => {
            openai::chat::handle(State(shared), method, uri, headers, bytes).await
        }
        Err(resp) => resp,
    }
}

pub(crate) async fn embeddings(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    match admit(&shared, &deployment, &uri, &headers, &bytes).await {
        Ok((headers, bytes)) => {
            openai::embeddings::handle(State(shared), method, uri, headers, bytes).await
        }
        Err(resp) => resp,
    }
}
