//! Relaying an upstream SSE stream to the client chunk by chunk, nothing buffered.
//!
//! Failures after the first byte cannot change the HTTP status any more, so they are
//! sent in-band as an OpenAI-shaped `data: {"error": ...}` event — never dropped silently.
//! Dropping the returned stream (the client went away) drops the upstream response and
//! so cancels the upstream request.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use crate::error::ApiError;

/// The in-band SSE event for an error that happened mid-stream. A vendor error already
/// mapped to OpenAI's shape keeps its message and type.
pub fn sse_error_event(err: &ApiError) -> Bytes {
    if let ApiError::Upstream { body, .. } = err
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(body)
        && value.get("error").and_then(|e| e.get("message")).is_some()
    {
        return Bytes::from(format!("data: {value}\n\n"));
    }
    Bytes::from(format!("data: {}\n\n", err.openai_body()))
}

/// The error of a stream the upstream ended before its final event (`[DONE]`, Anthropic
/// `message_stop`, Gemini's `finishReason`, ...): cut on the way, whatever the transport
/// said, so the client must not take what it got for the whole answer.
pub fn cut_error() -> ApiError {
    ApiError::UpstreamUnreachable(
        "the upstream ended the stream before it finished (no final event)".into(),
    )
}

/// Peek before commit: waits for a stream's first bytes before the response head goes
/// out, so that a stream failing at once — no first byte within `idle`, a connection
/// closed or broken before any event, or a first event that `in_band` reads as an error —
/// is still an ordinary error the router can retry or fall back from.
pub async fn peek<S>(
    upstream: S,
    idle: Duration,
    in_band: impl FnOnce(&[u8]) -> Option<ApiError>,
) -> Result<impl Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static, ApiError>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
{
    let mut upstream = Box::pin(upstream);
    let first = match tokio::time::timeout(idle, upstream.next()).await {
        Err(_) => return Err(ApiError::UpstreamTimeout(idle.as_secs_f64())),
        Ok(None) => {
            return Err(ApiError::UpstreamUnreachable(
                "the upstream closed the stream before its first event".into(),
            ));
        }
        Ok(Some(Err(e))) => {
            return Err(ApiError::UpstreamUnreachable(format!(
                "upstream stream failed before its first event: {e}"
            )));
        }
        Ok(Some(Ok(first))) => first,
    };
    if let Some(err) = in_band(&first) {
        return Err(err);
    }
    Ok(futures_util::stream::once(async move { Ok(first) }).chain(upstream))
}

/// The `data:` of the first SSE event in `chunk`, when the chunk holds its whole line.
pub fn first_data(chunk: &[u8]) -> Option<&[u8]> {
    let start = chunk.windows(5).position(|w| w == b"data:")? + 5;
    let rest = &chunk[start..];
    let end = rest.iter().position(|b| *b == b'\n')?;
    Some(rest[..end].trim_ascii())
}

/// Whether the first SSE event in `chunk` is named `error` (Anthropic's and the Responses
/// API's in-band errors).
pub fn first_event_is_error(chunk: &[u8]) -> bool {
    let text = chunk.trim_ascii_start();
    text.starts_with(b"event: error") || text.starts_with(b"event:error")
}

/// Upper bound for one coalesced write.
const COALESCE_MAX: usize = 64 * 1024;

struct Relay<S> {
    upstream: std::pin::Pin<Box<S>>,
    /// An item read while coalescing, to hand out next.
    pending: Option<Result<Bytes, reqwest::Error>>,
    ended: bool,
    scanner: crate::spend::UsageScanner,
    record: Option<std::sync::Arc<crate::spend::RequestRecord>>,
    /// Drops the usage-only chunk the gateway asked for on the client's behalf; holds an
    /// unfinished event between reads.
    strip: Option<Vec<u8>>,
    /// `data: [DONE]` went by: an end without it is a cut stream.
    done: bool,
}

/// Relays `upstream` unchanged, cutting it with an in-band error when no chunk arrives
/// within `idle_timeout` or the upstream connection fails. Chunks the upstream connection
/// has already received go out in one write instead of one write each (a whole small
/// stream otherwise costs one syscall per event).
pub fn relay<S>(
    upstream: S,
    idle_timeout: Duration,
    strip_usage: bool,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
{
    let state = Relay {
        upstream: Box::pin(upstream),
        pending: None,
        ended: false,
        scanner: crate::spend::UsageScanner::default(),
        // The request's spend record lives as long as the stream and learns its usage here.
        record: crate::spend::current(),
        strip: strip_usage.then(Vec::new),
        done: false,
    };
    futures_util::stream::unfold(Some(state), move |state| async move {
        let mut st = state?;
        let first = match st.pending.take() {
            Some(item) => Some(item),
            None if st.ended => return cut_off(st),
            None => match tokio::time::timeout(idle_timeout, st.upstream.next()).await {
                Ok(item) => item,
                Err(_) => {
                    metrics::counter!("gatehouse_stream_errors_total", "kind" => "idle_timeout")
                        .increment(1);
                    let err = ApiError::UpstreamTimeout(idle_timeout.as_secs_f64());
                    if let Some(record) = &st.record {
                        record.stream_failed(&err);
                    }
                    return Some((Ok(sse_error_event(&err)), None));
                }
            },
        };
        let Some(first) = first else {
            return cut_off(st);
        };
        match first {
            Err(e) => {
                tracing::warn!(error = %e, "upstream stream failed mid-way");
                metrics::counter!("gatehouse_stream_errors_total", "kind" => "upstream")
                    .increment(1);
                let err = ApiError::UpstreamUnreachable(format!("upstream stream failed: {e}"));
                if let Some(record) = &st.record {
                    record.stream_failed(&err);
                }
                Some((Ok(sse_error_event(&err)), None))
            }
            Ok(chunk) => {
                let chunk = coalesce(chunk, &mut st).await;
                if contains(&chunk, b"data: [DONE]") {
                    st.done = true;
                }
                if let Some(record) = &st.record
                    && let Some(usage) = st.scanner.scan(&chunk)
                {
                    record.add_usage(usage);
                }
                let chunk = match st.strip.as_mut() {
                    Some(held) => without_usage_chunks(held, chunk, st.ended),
                    None => chunk,
                };
                Some((Ok(chunk), Some(st)))
            }
        }
    })
}

/// The upstream ended. Without `[DONE]` it was cut: the client gets an in-band error, not
/// an answer that merely stops.
type Step<S> = Option<(Result<Bytes, Infallible>, Option<Relay<S>>)>;

fn cut_off<S>(st: Relay<S>) -> Step<S> {
    if st.done {
        return None;
    }
    metrics::counter!("gatehouse_stream_errors_total", "kind" => "cut").increment(1);
    let err = cut_error();
    if let Some(record) = &st.record {
        record.stream_failed(&err);
    }
    let mut out = st.strip.unwrap_or_default();
    out.extend_from_slice(&sse_error_event(&err));
    Some((Ok(Bytes::from(out)), None))
}

/// The complete events of `held` + `chunk` except usage-only chunks (`"choices":[]`);
/// an unfinished last event stays in `held` (bounded: a line longer than 1 MiB passes).
fn without_usage_chunks(held: &mut Vec<u8>, chunk: Bytes, ended: bool) -> Bytes {
    // The common case costs one scan and no copy: whole events, none of them usage-only.
    if held.is_empty()
        && chunk.ends_with(b"\n\n")
        && !contains(&chunk, b"\"choices\":[]")
        && !contains(&chunk, b"\"choices\": []")
    {
        return chunk;
    }
    held.extend_from_slice(&chunk);
    let cut = if ended {
        held.len()
    } else {
        match held.windows(2).rposition(|w| w == b"\n\n") {
            Some(end) => end + 2,
            None if held.len() > 1 << 20 => held.len(),
            None => return Bytes::new(),
        }
    };
    let complete: Vec<u8> = held.drain(..cut).collect();
    let mut out = Vec::with_capacity(complete.len());
    for event in complete.split_inclusive(|b| *b == b'\n') {
        let usage_only = event.starts_with(b"data:")
            && (contains(event, b"\"choices\":[]") || contains(event, b"\"choices\": []"))
            && contains(event, b"\"usage\"");
        if !usage_only {
            out.extend_from_slice(event);
        }
    }
    // A dropped `data:` line leaves its blank separator; collapse the doubled blank lines.
    while let Some(pos) = out.windows(3).position(|w| w == b"\n\n\n") {
        out.remove(pos);
    }
    if out.starts_with(b"\n") {
        out.remove(0);
    }
    Bytes::from(out)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Appends whatever the upstream connection has already decoded, without waiting.
async fn coalesce<S>(first: Bytes, st: &mut Relay<S>) -> Bytes
where
    S: Stream<Item = Result<Bytes, reqwest::Error>>,
{
    use futures_util::FutureExt;
    let mut buf: Option<bytes::BytesMut> = None;
    let mut len = first.len();
    let mut idle = 0;
    while len < COALESCE_MAX {
        // Let the upstream connection task decode what it has already read.
        tokio::task::yield_now().await;
        match st.upstream.next().now_or_never() {
            None if idle < 3 => idle += 1,
            None => break,
            Some(None) => {
                st.ended = true;
                break;
            }
            Some(Some(Ok(c))) => {
                idle = 0;
                len += c.len();
                buf.get_or_insert_with(|| bytes::BytesMut::from(&first[..]))
                    .extend_from_slice(&c);
            }
            Some(Some(Err(e))) => {
                st.pending = Some(Err(e));
                break;
            }
        }
    }
    buf.map(bytes::BytesMut::freeze).unwrap_or(first)
}
