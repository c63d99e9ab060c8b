//! Driving a vendor SSE stream through its stateful [`ChunkMapper`] into OpenAI chat-chunk
//! SSE for a chat completions client.
//!
//! Peek before commit: the first upstream events are read *before* the response head is
//! sent, so an error the vendor reports at once (overloaded, rate limited) is still an
//! ordinary error that the caller can retry or fall back from. After the first chunk
//! has gone out, failures are sent in-band — and so is a stream the upstream ended before
//! its final event (the mapper is not complete): `data: {"error":...}` and no `[DONE]`.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use gatehouse_llm::{ChunkMapper, sse};

use crate::error::ApiError;
use crate::providers::adapter::map_error;
use crate::providers::{chunks_sse, final_sse};

type Upstream = std::pin::Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

struct Driver {
    upstream: Upstream,
    parser: sse::Parser,
    mapper: Box<dyn ChunkMapper>,
    idle: Duration,
    done: bool,
    record: Option<std::sync::Arc<crate::spend::RequestRecord>>,
}

enum Step {
    Bytes(Vec<u8>),
    /// Failed; the bytes are what was mapped before the failure.
    Failed(Vec<u8>, ApiError),
    End(Vec<u8>),
}

impl Driver {
    async fn step(&mut self) -> Step {
        let chunk = match tokio::time::timeout(self.idle, self.upstream.next()).await {
            Err(_) => {
                return Step::Failed(
                    Vec::new(),
                    ApiError::UpstreamTimeout(self.idle.as_secs_f64()),
                );
            }
            Ok(None) => {
                let mut out = Vec::new();
                if let Some(event) = self.parser.finish()
                    && let Err(e) = self.map(&event, &mut out)
                {
                    return Step::Failed(out, e);
                }
                // Billed whether or not the stream was whole: the tokens were spent.
                if let (Some(record), Some(usage)) = (&self.record, self.mapper.usage()) {
                    record.add_usage(crate::cost::Usage::from_chat(&usage));
                }
                if !self.mapper.is_complete() {
                    return Step::Failed(out, super::stream::cut_error());
                }
                out.extend(final_sse(&self.mapper.finish()));
                return Step::End(out);
            }
            Ok(Some(Err(e))) => {
                return Step::Failed(
                    Vec::new(),
                    ApiError::UpstreamUnreachable(format!("upstream stream failed: {e}")),
                );
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        let mut out = Vec::new();
        for event in self.parser.push(&chunk) {
            if let Err(e) = self.map(&event, &mut out) {
                return Step::Failed(out, e);
            }
        }
        Step::Bytes(out)
    }

    fn map(&mut self, event: &sse::Event, out: &mut Vec<u8>) -> Result<(), ApiError> {
        let chunks = self
            .mapper
            .on_event(event.event.as_deref(), &event.data)
            .map_err(map_error)?;
        out.extend(chunks_sse(&chunks)?);
        Ok(())
    }
}

/// Reads `upstream` until the mapper has produced the first bytes for the client (or
/// failed), then returns a stream of everything.
pub async fn translate(
    upstream: impl Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
    mapper: Box<dyn ChunkMapper>,
    idle: Duration,
) -> Result<impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static, ApiError> {
    let mut driver = Driver {
        upstream: Box::pin(upstream),
        parser: sse::Parser::new(),
        mapper,
        idle,
        done: false,
        record: crate::spend::current(),
    };
    let first = loop {
        match driver.step().await {
            Step::Bytes(b) if b.is_empty() => continue,
            Step::Bytes(b) => break b,
            Step::End(b) => {
                driver.done = true;
                break b;
            }
            // Nothing reached the client yet: an ordinary, retryable-if-transient error.
            Step::Failed(b, err) if b.is_empty() => return Err(err),
            Step::Failed(mut b, err) => {
                driver.done = true;
                b.extend_from_slice(&super::stream::sse_error_event(&err));
                break b;
            }
        }
    };
    let head = futures_util::stream::once(async move { Ok(Bytes::from(first)) });
    let rest = futures_util::stream::unfold(driver, |mut driver| async move {
        if driver.done {
            return None;
        }
        let bytes = match driver.step().await {
            Step::Bytes(b) => b,
            Step::End(b) => {
                driver.done = true;
                b
            }
            Step::Failed(mut b, err) => {
                tracing::warn!(error = %err, "upstream stream failed mid-way");
                if let Some(record) = &driver.record {
                    record.stream_failed(&err);
                }
                metrics::counter!("gatehouse_stream_errors_total", "kind" => err.kind())
                    .increment(1);
                driver.done = true;
                b.extend_from_slice(&super::stream::sse_error_event(&err));
                b
            }
        };
        Some((Ok(Bytes::from(bytes)), driver))
    })
    .filter(|chunk: &Result<Bytes, Infallible>| {
        let keep = chunk.as_ref().map(|b| !b.is_empty()).unwrap_or(true);
        async move { keep }
    });
    Ok(head.chain(rest))
}
