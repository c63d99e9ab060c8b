//! Keeping a copy of an answer on its way to the client. A JSON answer is already whole
//! in memory; a stream is copied chunk by chunk (up to `max_item_bytes`, then the copy is
//! dropped and the stream goes on) and stored only when it reached its end marker — a
//! stream that was cut, errored or abandoned by the client is never stored.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures_util::Stream;
use gatehouse_config::cache::CallType;
use http_body_util::BodyExt;

use super::ResponseCache;
use super::entry::{Entry, now_ms};
use crate::error::ApiError;
use crate::spend::RequestRecord;

/// An answer to store once it is whole.
pub struct Pending {
    pub cache: Arc<ResponseCache>,
    pub record: Option<Arc<RequestRecord>>,
    pub api: CallType,
    pub key: String,
    pub ttl: Duration,
    pub max_bytes: usize,
}

impl Pending {
    fn finish(self, stream: bool, body: Bytes) {
        let entry = Entry {
            stream,
            stored_ms: now_ms(),
            body,
        };
        self.cache
            .finish(self.record.as_deref(), self.api, self.key, entry, self.ttl);
    }
}

/// The response, with its answer stored (JSON) or to be stored when the stream ends.
pub async fn store_when_done(response: Response, pending: Pending) -> Result<Response, ApiError> {
    let streaming = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    let (parts, body) = response.into_parts();
    if streaming {
        let tee = Tee {
            inner: body.into_data_stream(),
            copy: Some(Vec::new()),
            pending: Some(pending),
        };
        return Ok(Response::from_parts(parts, Body::from_stream(tee)));
    }
    let whole = axum::body::HttpBody::size_hint(&body)
        .exact()
        .is_some_and(|n| usize::try_from(n).is_ok_and(|n| n <= pending.max_bytes));
    if !whole {
        return Ok(Response::from_parts(parts, body));
    }
    let bytes = body
        .collect()
        .await
        .map_err(|e| ApiError::Internal(format!("reading the answer to cache it: {e}")))?
        .to_bytes();
    pending.finish(false, bytes.clone());
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

struct Tee<S> {
    inner: S,
    /// `None` once the copy outgrew the limit or a chunk failed.
    copy: Option<Vec<u8>>,
    pending: Option<Pending>,
}

impl<S> Stream for Tee<S>
where
    S: Stream<Item = Result<Bytes, axum::Error>> + Unpin,
{
    type Item = Result<Bytes, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => {
                let limit = this.pending.as_ref().map_or(0, |p| p.max_bytes);
                if let Some(copy) = &mut this.copy {
                    if copy.len() + chunk.len() > limit {
                        this.copy = None;
                    } else {
                        copy.extend_from_slice(chunk);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => this.copy = None,
            Poll::Ready(None) => {
                if let (Some(copy), Some(pending)) = (this.copy.take(), this.pending.take())
                    && complete(pending.api, &copy)
                {
                    pending.finish(true, Bytes::from(copy));
                }
            }
            Poll::Pending => {}
        }
        polled
    }
}

/// Whether a whole stream ended the way a finished answer ends in its dialect.
fn complete(api: CallType, sse: &[u8]) -> bool {
    let tail = &sse[sse.len().saturating_sub(512)..];
    match api {
        CallType::ChatCompletions => tail.trim_ascii_end().ends_with(b"data: [DONE]"),
        CallType::Messages => contains(tail, b"message_stop"),
        CallType::Responses => {
            contains(sse, b"response.completed") && !contains(tail, b"\"type\":\"error\"")
        }
        CallType::Embeddings => false,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_finished_streams_are_complete() {
        let chat = b"data: {\"choices\":[]}\n\ndata: [DONE]\n\n";
        assert!(complete(CallType::ChatCompletions, chat));
        assert!(!complete(
            CallType::ChatCompletions,
            b"data: {\"choices\":[]}\n\n"
        ));
        let messages = b"event: message_delta\ndata: {}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        assert!(complete(CallType::Messages, messages));
        assert!(!complete(CallType::Messages, b"event: error\ndata: {}\n\n"));
        assert!(complete(
            CallType::Responses,
            b"event: response.completed\ndata: {\"type\":\"response.completed\"}\n\n"
        ));
        assert!(!complete(
            CallType::Responses,
            b"event: response.output_text.delta\ndata: {}\n\n"
        ));
    }
}
