//! A stream of OpenAI `chat.completion.chunk`s from any deployment, whatever its vendor:
//! OpenAI-compatible upstreams stream chunks already (parsed here), Anthropic upstreams
//! are mapped by the stateful `anthropic::StreamMapper`.
//!
//! [`open`] peeks before it commits: it reads until the first chunk arrives, so an
//! upstream that fails at once is still an ordinary error the caller can answer with a
//! status — and a transient one falls over to the next deployment.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use gatehouse_llm::openai::{
    ChatCompletion, ChatCompletionChunk, ChunkChoice, Delta, FunctionCallDelta, ToolCallDelta,
    Usage,
};
use gatehouse_llm::sse;
use serde_json::{Map, Value, json};

use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::providers;
use crate::providers::adapter::ChunkMapper;
use crate::state::AppState;

type Upstream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

enum Decoder {
    /// OpenAI-compatible: each `data:` is a chunk, `[DONE]` ends the stream.
    OpenAi,
    /// A translated vendor's stateful mapper (Anthropic, Gemini, Bedrock).
    Mapped(Box<dyn ChunkMapper>),
}

/// Chat chunks of one upstream stream, in order.
pub struct ChunkStream {
    upstream: Upstream,
    parser: sse::Parser,
    decoder: Decoder,
    queue: VecDeque<ChatCompletionChunk>,
    idle: Duration,
    done: bool,
    /// The usage was already added to the spend record (a whole answer).
    counted: bool,
    /// The deployment that is answering.
    pub deployment: Arc<Deployment>,
}

impl ChunkStream {
    /// The next chunk; `None` once the upstream ended normally. An `Err` ends the
    /// stream (later calls return `None`).
    pub async fn next(&mut self) -> Option<Result<ChatCompletionChunk, ApiError>> {
        loop {
            if let Some(chunk) = self.queue.pop_front() {
                return Some(Ok(chunk));
            }
            if self.done {
                return None;
            }
            match tokio::time::timeout(self.idle, self.upstream.next()).await {
                Err(_) => {
                    self.done = true;
                    return Some(Err(ApiError::UpstreamTimeout(self.idle.as_secs_f64())));
                }
                Ok(Some(Err(e))) => {
                    self.done = true;
                    return Some(Err(ApiError::UpstreamUnreachable(format!(
                        "upstream stream failed: {e}"
                    ))));
                }
                Ok(None) => {
                    self.done = true;
                    if let Some(event) = self.parser.finish()
                        && let Err(e) = self.decode(&event)
                    {
                        return Some(Err(e));
                    }
                    if let Decoder::Mapped(mapper) = &mut self.decoder {
                        self.queue.extend(mapper.finish());
                    }
                }
                Ok(Some(Ok(bytes))) => {
                    for event in self.parser.push(&bytes) {
                        if let Err(e) = self.decode(&event) {
                            self.done = true;
                            self.queue.clear();
                            return Some(Err(e));
                        }
                    }
                }
            }
        }
    }

    fn decode(&mut self, event: &sse::Event) -> Result<(), ApiError> {
        match &mut self.decoder {
            Decoder::Mapped(mapper) => {
                let chunks = mapper
                    .on_event(event.event.as_deref(), &event.data)
                    .map_err(providers::adapter::map_error)?;
                self.queue.extend(chunks);
            }
            Decoder::OpenAi => {
                let data = event.data.trim();
                if data.is_empty() {
                    return Ok(());
                }
                if data == "[DONE]" {
                    self.done = true;
                    return Ok(());
                }
                let value: Value = serde_json::from_str(data).map_err(|e| {
                    ApiError::UpstreamUnreachable(format!(
                        "the upstream sent an invalid chunk: {e}"
                    ))
                })?;
                if value.get("error").is_some() {
                    // An in-band error: keep the vendor's body, classified as a 5xx.
                    return Err(ApiError::upstream(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Bytes::from(data.to_owned()),
                    ));
                }
                let chunk: ChatCompletionChunk = serde_json::from_value(value).map_err(|e| {
                    ApiError::UpstreamUnreachable(format!(
                        "the upstream sent an invalid chunk: {e}"
                    ))
                })?;
                self.queue.push_back(chunk);
            }
        }
        Ok(())
    }
}

/// Opens a streamed chat round of `body` (an OpenAI chat body; `stream` and
/// `include_usage` are set here) on one deployment and returns its chunk stream once the
/// first chunk arrived (peek before commit: a failure before it is an ordinary error the
/// router can retry or fall back from).
pub async fn open(
    state: &AppState,
    request_id: &str,
    deployment: &Arc<Deployment>,
    body: &Map<String, Value>,
) -> Result<ChunkStream, ApiError> {
    let mut body = body.clone();
    body.insert("stream".into(), Value::Bool(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    open_one(state, request_id, deployment, &body).await
}

async fn open_one(
    state: &AppState,
    request_id: &str,
    deployment: &Arc<Deployment>,
    body: &Map<String, Value>,
) -> Result<ChunkStream, ApiError> {
    let (upstream, decoder) = match providers::adapter::for_dialect(deployment.provider.dialect) {
        None => {
            let response =
                providers::openai::open_chat_stream(state, request_id, deployment, body).await?;
            let upstream: Upstream = Box::pin(response.bytes_stream());
            (upstream, Decoder::OpenAi)
        }
        Some(adapter) => {
            let (events, mapper) =
                providers::adapter::open_stream(adapter, state, request_id, deployment, body)
                    .await?;
            (events, Decoder::Mapped(mapper))
        }
    };
    let mut stream = ChunkStream {
        upstream,
        parser: sse::Parser::new(),
        decoder,
        queue: VecDeque::new(),
        idle: deployment.stream_timeout.unwrap_or(deployment.timeout),
        done: false,
        counted: false,
        deployment: deployment.clone(),
    };
    // Peek: the first chunk (or the end) must arrive before anything is committed.
    match stream.next().await {
        Some(Ok(first)) => stream.queue.push_front(first),
        Some(Err(err)) => return Err(err),
        None => {}
    }
    Ok(stream)
}

/// A whole chat completion as the chunks a stream of it would have had: one with the
/// message (choice 0), one with the usage.
pub fn completion_chunks(completion: ChatCompletion) -> Vec<ChatCompletionChunk> {
    let chunk = |choices: Vec<ChunkChoice>, usage: Option<Usage>| ChatCompletionChunk {
        id: completion.id.clone(),
        object: "chat.completion.chunk".into(),
        created: completion.created,
        model: completion.model.clone(),
        choices,
        usage,
        rest: Default::default(),
    };
    let mut out = Vec::new();
    if let Some(choice) = completion.choices.iter().find(|c| c.index == 0) {
        let msg = &choice.message;
        let tool_calls = msg.tool_calls.as_ref().map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, call)| ToolCallDelta {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    id: Some(call.id.clone()),
                    kind: Some("function".into()),
                    function: Some(FunctionCallDelta {
                        name: Some(call.function.name.clone()),
                        arguments: Some(call.function.arguments.clone()),
                    }),
                })
                .collect()
        });
        let delta = Delta {
            role: Some("assistant".into()),
            content: msg.content.clone(),
            reasoning_content: msg.reasoning_content.clone(),
            thinking_blocks: msg.thinking_blocks.clone(),
            tool_calls,
            rest: Default::default(),
        };
        out.push(chunk(
            vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: choice.finish_reason.clone(),
            }],
            None,
        ));
    }
    if let Some(usage) = completion.usage.clone() {
        out.push(chunk(Vec::new(), Some(usage)));
    }
    out
}

/// Adds the stream's last reported usage to the spend record when the stream is over
/// (finished, failed, or dropped because the client went away).
struct UsageOnDrop {
    record: Option<Arc<crate::spend::RequestRecord>>,
    last: Option<Usage>,
}

impl Drop for UsageOnDrop {
    fn drop(&mut self) {
        if let (Some(record), Some(u)) = (&self.record, &self.last) {
            record.add_usage(crate::cost::Usage::from_chat(u));
        }
    }
}

/// Encodes chat chunks for one client dialect (a stateful stream writer).
pub trait ChunkWriter: Send + 'static {
    fn push(&mut self, chunk: &ChatCompletionChunk) -> Vec<u8>;
    /// The upstream failed mid-stream: the in-band error event that ends the stream.
    fn fail(&mut self, err: &ApiError) -> Vec<u8>;
    /// The upstream ended normally: the closing events.
    fn finish(&mut self) -> Vec<u8>;
}

/// The client's SSE body: every chunk through `writer`, then its closing events (or its
/// error event). Dropping the body (client gone) drops the upstream stream with it.
pub fn encode<W: ChunkWriter>(
    chunks: ChunkStream,
    writer: W,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    let usage = UsageOnDrop {
        record: (!chunks.counted).then(crate::spend::current).flatten(),
        last: None,
    };
    futures_util::stream::unfold(
        (chunks, writer, usage, false),
        |(mut chunks, mut writer, mut usage, done)| async move {
            if done {
                return None;
            }
            let (bytes, done) = match chunks.next().await {
                Some(Ok(chunk)) => {
                    if let Some(u) = &chunk.usage {
                        usage.last = Some(u.clone());
                    }
                    (writer.push(&chunk), false)
                }
                Some(Err(err)) => {
                    tracing::warn!(error = %err, "upstream stream failed mid-way");
                    metrics::counter!("gatehouse_stream_errors_total", "kind" => err.kind())
                        .increment(1);
                    (writer.fail(&err), true)
                }
                None => (writer.finish(), true),
            };
            Some((Ok(Bytes::from(bytes)), (chunks, writer, usage, done)))
        },
    )
    .filter(|chunk: &Result<Bytes, std::convert::Infallible>| {
        let keep = chunk.as_ref().map(|b| !b.is_empty()).unwrap_or(true);
        async move { keep }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_llm::responses::{ResponsesContext, ResponsesStreamWriter};

    #[test]
    fn a_whole_completion_becomes_a_well_formed_stream() {
        let completion: ChatCompletion = serde_json::from_value(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "calling",
                "tool_calls": [{"id": "call_1", "type": "function",
                                "function": {"name": "f", "arguments": "{\"a\":1}"}}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}))
        .unwrap();
        let mut writer = ResponsesStreamWriter::new(ResponsesContext::default(), "resp_x", 1);
        for chunk in completion_chunks(completion) {
            writer.push(&chunk);
        }
        writer.finish();
        let response = writer.response();
        assert_eq!(response["output"][0]["content"][0]["text"], "calling");
        assert_eq!(response["output"][1]["name"], "f");
        assert_eq!(response["output"][1]["arguments"], "{\"a\":1}");
        assert_eq!(response["usage"]["total_tokens"], 5);
    }
}
