//! OpenAI-compatible upstreams (OpenAI, Azure, vLLM, Ollama, Groq, ...): passthrough.
//! The client's JSON goes out with the model rewritten; the answer's bytes come back as
//! they are.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;

use gatehouse_config::Dialect;
use serde_json::{Map, Value};

use super::{json_response, sse_response};
use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::proxy::Endpoint;
use crate::state::AppState;
use crate::upstream::body::passthrough_bytes;
use crate::upstream::send::{UpstreamCall, send};
use crate::upstream::stream::relay;

pub async fn call(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    client_body: &Map<String, Value>,
    stream: bool,
    endpoint: Endpoint,
) -> Result<Response, ApiError> {
    let path = match deployment.provider.dialect {
        Dialect::Azure => azure_path(deployment, endpoint),
        _ => endpoint.openai_path().to_string(),
    };
    // A streamed chat answer is billed by its usage, which OpenAI-compatible upstreams only
    // send when asked: ask, and keep the extra chunk from a client that did not.
    let ask_usage = stream && endpoint == Endpoint::ChatCompletions;
    let client_wants_usage = client_body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = passthrough_bytes(client_body, deployment, &state.settings, ask_usage)?;
    let call = UpstreamCall {
        deployment,
        path: &path,
        body,
        stream,
        request_id,
        forward_headers: Vec::new(),
    };
    let response = send(&state.http, &call)
        .await
        .map_err(|e| vendor_error(deployment, e))?;
    if stream {
        let strip_usage = ask_usage && !client_wants_usage;
        let idle = deployment.stream_timeout.unwrap_or(deployment.timeout);
        let upstream = crate::upstream::stream::peek(response.bytes_stream(), idle, |first| {
            let data = crate::upstream::stream::first_data(first)?;
            let error = serde_json::from_slice::<Value>(data)
                .ok()?
                .get("error")?
                .clone();
            // An error as the stream's first event: classified like an error status.
            let status = error
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| StatusCode::from_u16(u16::try_from(c).ok()?).ok())
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some(ApiError::upstream(
                status,
                bytes::Bytes::copy_from_slice(data),
            ))
        })
        .await?;
        let body = Body::from_stream(relay(upstream, deployment.timeout, strip_usage));
        return Ok(sse_response(body));
    }
    let bytes = crate::upstream::send::read_answer(response).await?;
    checked_usage(deployment, &bytes, endpoint)?;
    Ok(json_response(StatusCode::OK, bytes))
}

/// One non-streaming chat round, parsed: what the tool-execution loop works with.
pub async fn complete(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    body: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let path = match deployment.provider.dialect {
        Dialect::Azure => azure_path(deployment, Endpoint::ChatCompletions),
        _ => Endpoint::ChatCompletions.openai_path().to_string(),
    };
    let body = passthrough_bytes(body, deployment, &state.settings, false)?;
    let call = UpstreamCall {
        deployment,
        path: &path,
        body,
        stream: false,
        request_id,
        forward_headers: Vec::new(),
    };
    let bytes = send(&state.http, &call)
        .await
        .map_err(|e| vendor_error(deployment, e))?
        .bytes()
        .await
        .map_err(|e| {
            ApiError::UpstreamUnreachable(format!("reading the upstream body failed: {e}"))
        })?;
    checked_usage(deployment, &bytes, Endpoint::ChatCompletions)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::UpstreamUnreachable(format!("the upstream answered invalid JSON: {e}"))
    })
}

/// An absolute URL (see `providers::azure`), which `upstream::send` uses as it is.
fn azure_path(deployment: &Deployment, endpoint: Endpoint) -> String {
    super::azure::url(deployment, endpoint)
}

/// Azure's content-filter refusals made recognisable; other upstreams' errors pass.
fn vendor_error(deployment: &Deployment, err: ApiError) -> ApiError {
    match deployment.provider.dialect {
        Dialect::Azure => super::azure::vendor_error(err),
        _ => err,
    }
}

/// Reads a whole answer once: it must be the JSON object its endpoint returns (`choices`
/// for chat, `data` for embeddings), or the upstream broke its protocol (502, never relayed
/// as a success); its `usage` is counted. A local server that sends no `usage` counts
/// nothing.
fn checked_usage(deployment: &Deployment, body: &[u8], endpoint: Endpoint) -> Result<(), ApiError> {
    #[derive(serde::Deserialize)]
    struct Answer {
        choices: Option<Vec<serde::de::IgnoredAny>>,
        data: Option<Vec<serde::de::IgnoredAny>>,
        usage: Option<Value>,
    }
    let answer = serde_json::from_slice::<Answer>(body).map_err(|e| {
        ApiError::UpstreamUnreachable(format!(
            "the upstream answered something that is not a {} object: {e}",
            endpoint.openai_path()
        ))
    })?;
    let has_items = match endpoint {
        Endpoint::ChatCompletions => answer.choices.is_some(),
        Endpoint::Embeddings => answer.data.is_some(),
    };
    if !has_items {
        return Err(ApiError::UpstreamUnreachable(format!(
            "the upstream's {} answer has no {}",
            endpoint.openai_path(),
            if endpoint == Endpoint::Embeddings {
                "data"
            } else {
                "choices"
            }
        )));
    }
    if let Some(usage) = answer
        .usage
        .as_ref()
        .and_then(crate::cost::Usage::from_value)
    {
        super::record_usage(deployment, usage);
    }
    Ok(())
}

/// Opens a streaming chat round on an OpenAI-compatible deployment and returns the
/// upstream response (its body is OpenAI `chat.completion.chunk` SSE). Used by the
/// inbound dialects (Responses, Messages) that re-encode the chunks themselves.
pub async fn open_chat_stream(
    state: &AppState,
    request_id: &str,
    deployment: &Deployment,
    body: &Map<String, Value>,
) -> Result<reqwest::Response, ApiError> {
    let path = match deployment.provider.dialect {
        Dialect::Azure => azure_path(deployment, Endpoint::ChatCompletions),
        _ => Endpoint::ChatCompletions.openai_path().to_string(),
    };
    let body = passthrough_bytes(body, deployment, &state.settings, false)?;
    let call = UpstreamCall {
        deployment,
        path: &path,
        body,
        stream: true,
        request_id,
        forward_headers: Vec::new(),
    };
    send(&state.http, &call)
        .await
        .map_err(|e| vendor_error(deployment, e))
}
