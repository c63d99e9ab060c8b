//! Anthropic Messages upstreams behind the OpenAI chat API: the request, the answer and
//! the stream are translated by `gatehouse_llm::anthropic`; sending, error mapping and
//! usage are the shared drivers' (`providers::adapter`).

use gatehouse_llm::anthropic::{self, AnthropicDefaults, StreamMapper};
use gatehouse_llm::openai::{ChatCompletion, ChatRequest, ErrorBody};
use gatehouse_llm::{ErrorKind, MapError};

use super::adapter::{ChatAdapter, ChunkMapper, Prepared};
use super::unix_now;
use crate::deployments::Deployment;
use crate::error::ApiError;

pub struct Anthropic;

impl ChatAdapter for Anthropic {
    fn vendor(&self) -> &'static str {
        "anthropic"
    }

    fn prepare(
        &self,
        deployment: &Deployment,
        request: &ChatRequest,
    ) -> Result<(Prepared, Vec<String>), ApiError> {
        let mapped = anthropic::chat_to_messages(
            request,
            &deployment.upstream_model,
            &AnthropicDefaults::default(),
        )
        .map_err(super::adapter::map_error)?;
        let body =
            serde_json::to_vec(&mapped.body).map_err(|e| ApiError::Internal(e.to_string()))?;
        let prepared = Prepared {
            path: anthropic::MESSAGES_PATH.to_owned(),
            body: body.into(),
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
        anthropic::messages_to_chat(body, &deployment.model_name, unix_now())
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

    /// Anthropic's error status and body, as the OpenAI client expects them (529 → 503).
    fn classify(&self, status: u16, body: &[u8]) -> (ErrorKind, u16, ErrorBody) {
        let m = anthropic::map_error(status, body);
        (m.kind, m.status, m.body)
    }
}
