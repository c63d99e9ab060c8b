//! Google Gemini (Developer API, API key) behind the OpenAI chat and embeddings APIs:
//! the request, the answer and the stream are translated by `gatehouse_llm::gemini`.
//! The key goes in `x-goog-api-key` (see `upstream::send`).

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use gatehouse_llm::gemini::{self, StreamMapper};
use gatehouse_llm::openai::{ChatCompletion, ChatRequest, ErrorBody};
use gatehouse_llm::{ErrorKind, MapError};
use serde_json::{Map, Value};

use super::adapter::{ChatAdapter, ChunkMapper, Prepared, map_error, merged_body};
use super::{json_response, unix_now};
use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::state::AppState;
use crate::upstream::send::{UpstreamCall, send};

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

pub struct Gemini;

impl ChatAdapter for Gemini {
    fn vendor(&self) -> &'static str {
        "gemini"
    }

    fn prepare(
        &self,
        deployment: &Deployment,
        request: &ChatRequest,
    ) -> Result<(Prepared, Vec<String>), ApiError> {
        let mapped = gemini::chat_to_gemini(request).map_err(map_error)?;
        let body =
            serde_json::to_vec(&mapped.body).map_err(|e| ApiError::Internal(e.to_string()))?;
        let prepared = Prepared {
            path: upstream_path(
                deployment,
                gemini::generate_path(&deployment.upstream_model, mapped.stream),
            ),
            body: Bytes::from(body),
            headers: Vec::new(),
            stream: mapped.stream,
            include_usage: mapped.include_usage,
        };
        Ok((prepared, mapped.dropped))
    }

    fn parse(
        &self,
        deployment: &Deployment,
        _request_id: &str,
        body: &[u8],
    ) -> Result<ChatCompletion, MapError> {
        gemini::gemini_to_chat(body, &deployment.model_name, unix_now())
    }

    fn stream_mapper(
        &self,
        deployment: &Deployment,
        _request_id: &str,
        include_usage: bool,
    ) -> Box<dyn ChunkMapper> {
        Box::new(StreamMapper::new(
            &deployment.model_name,
            unix_now(),
            include_usage,
        ))
    }

    /// Google's error status and body, as the OpenAI client expects them.
    fn classify(&self, status: u16, body: &[u8]) -> (ErrorKind, u16, ErrorBody) {
        let m = gemini::map_error(status, body);
        (m.kind, m.status, m.body)
    }
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
        .map_err(|e| super::remap_error(e, |s, b| Gemini.classify(s, b)))?
        .bytes()
        .await
        .map_err(|e| {
            ApiError::UpstreamUnreachable(format!("reading the upstream body failed: {e}"))
        })?;
    let answer = gemini::embeddings_response(&bytes, &deployment.model_name, mapped.base64)
        .map_err(map_error)?;
    let body = serde_json::to_vec(&answer).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(json_response(StatusCode::OK, Bytes::from(body)))
}
