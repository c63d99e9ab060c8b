//! A stream of OpenAI `chat.completion.chunk`s from any deployment, whatever its vendor:
//! OpenAI-compatible upstreams stream chunks already (parsed here), translated vendors
//! (Anthropic, Gemini, Bedrock) are mapped by their stateful `gatehouse_llm::ChunkMapper`.
//!
//! An upstream that ends without its final event (`[DONE]`, or a mapper that is not
//! complete) was cut: the stream ends with an error, never with a normal finish.
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
use gatehouse_llm::openai::{ChatCompletionChunk, Usage};
use gatehouse_llm::{ChunkMapper, ChunkWriter, sse};
use serde_json::{Map, Value, json};

use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::providers;
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
    /// `[DONE]` arrived (OpenAI-compatible upstreams).
    finished: bool,
    /// An error to report once the chunks mapped before it are out.
    pending: Option<ApiError>,
    /// A chunk was handed out.
    delivered: bool,
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
                self.delivered = true;
                return Some(Ok(chunk));
            }
            if let Some(err) = self.pending.take() {
                return Some(Err(err));
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
                    let complete = match &self.decoder {
                        Decoder::Mapped(mapper) => mapper.is_complete(),
                        Decoder::OpenAi => self.finished,
                    };
                    if !complete {
                        // Cut: no made-up finish, but the tokens reported so far are
                        // billed (a usage-only chunk writers take in silently).
                        // (Before any chunk the cut stays an ordinary, retryable error.)
                        if let Decoder::Mapped(mapper) = &self.decoder
                            && self.delivered
                            && let Some(usage) = mapper.usage()
                        {
                            let head = gatehouse_llm::openai::ChunkHead {
                                id: "",
                                created: 0,
                                model: &self.deployment.model_name,
                            };
                            self.queue.push_back(head.usage(usage));
                        }
                        self.pending = Some(crate::upstream::stream::cut_error());
                    } else if let Decoder::Mapped(mapper) = &mut self.decoder {
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
                    self.finished = true;
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
        finished: false,
        pending: None,
        delivered: false,
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

/// The client's SSE body: every chunk through `writer`, then its closing events (or its
/// error event). Dropping the body (client gone) drops the upstream stream with it.
pub fn encode<W: ChunkWriter + 'static>(
    chunks: ChunkStream,
    writer: W,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    let record = crate::spend::current();
    let usage = UsageOnDrop {
        record: record.clone().filter(|_| !chunks.counted),
        last: None,
    };
    futures_util::stream::unfold(
        (chunks, writer, usage, record, false),
        |(mut chunks, mut writer, mut usage, record, done)| async move {
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
                    if let Some(record) = &record {
                        record.stream_failed(&err);
                    }
                    (
                        writer.fail(
                            super::errors::kind_of(&err),
                            &super::errors::message_of(&err),
                        ),
                        true,
                    )
                }
                None => (writer.finish(), true),
            };
            Some((
                Ok(Bytes::from(bytes)),
                (chunks, writer, usage, record, done),
            ))
        },
    )
    .filter(|chunk: &Result<Bytes, std::convert::Infallible>| {
        let keep = chunk.as_ref().map(|b| !b.is_empty()).unwrap_or(true);
        async move { keep }
    })
}
