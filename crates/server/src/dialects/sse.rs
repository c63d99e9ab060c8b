//! SSE for the inbound dialects: the response head, and relaying an upstream stream.

/// The one SSE response head (content type, no caching, no proxy buffering).
pub use crate::providers::sse_response as response;

/// Relays an upstream's SSE bytes unchanged; a failure after the head was sent
/// (connection lost, no chunk within `idle`) ends the stream with the event `on_error`
/// writes in the client's dialect, never silently — and so does an upstream that ends
/// before one of its `final_events` went by (the stream was cut on the way).
pub fn relay_with(
    upstream: impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
    idle: std::time::Duration,
    final_events: &'static [&'static str],
    on_error: fn(&crate::error::ApiError) -> Vec<u8>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static
{
    use futures_util::StreamExt;
    let upstream = Box::pin(upstream);
    let record = crate::spend::current();
    let watch = FinalEvent::new(final_events);
    futures_util::stream::unfold(Some((upstream, watch)), move |state| {
        let record = record.clone();
        async move {
            let (mut upstream, mut watch) = state?;
            let err = match tokio::time::timeout(idle, upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    watch.scan(&chunk);
                    return Some((Ok(chunk), Some((upstream, watch))));
                }
                Ok(None) if watch.seen => return None,
                Ok(None) => crate::upstream::stream::cut_error(),
                Ok(Some(Err(e))) => crate::error::ApiError::UpstreamUnreachable(format!(
                    "upstream stream failed: {e}"
                )),
                Err(_) => crate::error::ApiError::UpstreamTimeout(idle.as_secs_f64()),
            };
            tracing::warn!(error = %err, "upstream stream failed mid-way");
            metrics::counter!("gatehouse_stream_errors_total", "kind" => err.kind()).increment(1);
            if let Some(record) = &record {
                record.stream_failed(&err);
            }
            Some((Ok(bytes::Bytes::from(on_error(&err))), None))
        }
    })
}

/// Watches relayed SSE bytes for an `event: <name>` line naming one of the stream's last
/// events, without parsing the events (the bytes pass uncopied). Event lines cannot
/// occur inside JSON data, so a match at a line start is the event itself.
struct FinalEvent {
    names: &'static [&'static str],
    /// The end of the previous chunk, for a line split across two chunks.
    tail: Vec<u8>,
    seen: bool,
}

/// Longer than any `\nevent: <name>` line looked for.
const TAIL: usize = 64;

impl FinalEvent {
    fn new(names: &'static [&'static str]) -> Self {
        FinalEvent {
            names,
            // The stream's start is a line start.
            tail: b"\n".to_vec(),
            seen: false,
        }
    }

    fn scan(&mut self, chunk: &[u8]) {
        if self.seen {
            return;
        }
        let head = &chunk[..chunk.len().min(TAIL)];
        let mut joint = std::mem::take(&mut self.tail);
        joint.extend_from_slice(head);
        self.seen = self.found(&joint) || self.found(chunk);
        let keep = if chunk.len() >= TAIL {
            chunk
        } else {
            &joint[..]
        };
        self.tail = keep[keep.len().saturating_sub(TAIL)..].to_vec();
    }

    fn found(&self, bytes: &[u8]) -> bool {
        // One pass over the line starts; most lines are `data:` and fail at once.
        bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .filter_map(|(i, _)| bytes[i + 1..].strip_prefix(b"event:"))
            .any(|rest| {
                let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                self.names.iter().any(|name| {
                    // The name ends the line (`message_stop`, not `message_stopped`).
                    rest.strip_prefix(name.as_bytes())
                        .is_some_and(|end| matches!(end.first(), Some(b'\r' | b'\n')))
                })
            })
    }
}

/// An Anthropic upstream's stream, relayed; failures end it with an Anthropic `error` event.
pub fn relay_anthropic(
    upstream: impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
    idle: std::time::Duration,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static
{
    relay_with(
        upstream,
        idle,
        &["message_stop", "error"],
        super::errors::anthropic_event,
    )
}

/// An OpenAI Responses stream, relayed; failures end it with a Responses `error` event
/// (`{"type":"error","code","message","param"}`), which Responses clients understand.
pub fn relay_responses(
    upstream: impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
    idle: std::time::Duration,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static
{
    relay_with(
        upstream,
        idle,
        &[
            "response.completed",
            "response.incomplete",
            "response.failed",
            "error",
        ],
        responses_error_event,
    )
}

fn responses_error_event(err: &crate::error::ApiError) -> Vec<u8> {
    let kind = super::errors::kind_of(err);
    let data = serde_json::json!({"type": "error",
        "code": kind.openai_code().unwrap_or(kind.openai_type()),
        "message": super::errors::message_of(err), "param": null});
    let mut out = Vec::new();
    gatehouse_llm::sse::encode(Some("error"), &data.to_string(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_events_are_seen_across_chunk_boundaries_and_only_at_line_starts() {
        let stream = b"event: message_start\ndata: {\"text\":\"event: message_stop\"}\n\nevent: message_stop\ndata: {}\n\n";
        for split in 1..stream.len() {
            let mut watch = FinalEvent::new(&["message_stop"]);
            let (a, b) = stream.split_at(split);
            watch.scan(a);
            watch.scan(b);
            assert!(watch.seen, "split at {split}");
        }
        let mut watch = FinalEvent::new(&["message_stop"]);
        watch.scan(b"event: message_start\ndata: {\"t\":\"\\nevent: message_stop\"}\n\nevent: message_stopped\n");
        assert!(!watch.seen);
        let mut watch = FinalEvent::new(&["message_stop"]);
        watch.scan(b"event:message_stop\r\n");
        assert!(watch.seen);
    }
}
