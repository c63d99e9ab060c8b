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
use memchr::memmem;

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
    let start = memmem::find(chunk, b"data:")? + 5;
    let rest = &chunk[start..];
    let end = memchr::memchr(b'\n', rest)?;
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
    if held.is_empty() && chunk.ends_with(b"\n\n") && empty_choices(&chunk, 0).is_none() {
        return chunk;
    }
    held.extend_from_slice(&chunk);
    let cut = if ended {
        held.len()
    } else {
        match memmem::rfind(held, b"\n\n") {
            Some(end) => end + 2,
            None if held.len() > 1 << 20 => held.len(),
            None => return Bytes::new(),
        }
    };
    let complete = &held[..cut];
    let mut out = Vec::with_capacity(complete.len());
    let mut copied = 0;
    let mut from = 0;
    // Only the lines holding `"choices":[]` are looked at; the rest is copied in slices.
    while let Some(at) = empty_choices(complete, from) {
        let start = memchr::memrchr(b'\n', &complete[..at]).map_or(0, |p| p + 1);
        let end = memchr::memchr(b'\n', &complete[at..]).map_or(complete.len(), |p| at + p + 1);
        let line = &complete[start..end];
        from = end;
        if !(line.starts_with(b"data:") && memmem::find(line, b"\"usage\"").is_some()) {
            continue;
        }
        out.extend_from_slice(&complete[copied..start]);
        // The dropped event's blank separator goes with it.
        copied = if complete.get(end) == Some(&b'\n') {
            end + 1
        } else {
            end
        };
        from = copied;
    }
    out.extend_from_slice(&complete[copied..]);
    held.drain(..cut);
    Bytes::from(out)
}

/// Where `"choices":[]` (or `"choices": []`) next occurs in `text` at or after `from`.
fn empty_choices(text: &[u8], from: usize) -> Option<usize> {
    let rest = text.get(from..)?;
    let a = memmem::find(rest, b"\"choices\":[]");
    let b = memmem::find(rest, b"\"choices\": []");
    match (a, b) {
        (Some(a), Some(b)) => Some(from + a.min(b)),
        (a, b) => a.or(b).map(|p| from + p),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memmem::find(haystack, needle).is_some()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(parts: &[&[u8]], ended_last: bool) -> Vec<u8> {
        let mut held = Vec::new();
        let mut out = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let ended = ended_last && i == parts.len() - 1;
            out.extend_from_slice(&without_usage_chunks(
                &mut held,
                Bytes::copy_from_slice(part),
                ended,
            ));
        }
        out
    }

    const USAGE: &[u8] = b"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1}}\n\n";

    #[test]
    fn drops_only_usage_only_events_with_their_separator() {
        let a = b"data: {\"choices\":[{\"delta\":{}}],\"usage\":null}\n\n";
        let done = b"data: [DONE]\n\n";
        let whole = [&a[..], USAGE, done].concat();
        assert_eq!(strip(&[&whole], false), [&a[..], done].concat());
        // First and last positions, and the spaced spelling.
        let spaced = b"data: {\"choices\": [], \"usage\": {}}\n\n";
        assert_eq!(strip(&[&[USAGE, done].concat()], false), done.to_vec());
        assert_eq!(strip(&[&[&a[..], spaced].concat()], true), a.to_vec());
        // `"choices":[]` without usage stays.
        let no_usage = b"data: {\"choices\":[]}\n\n";
        assert_eq!(strip(&[no_usage], false), no_usage.to_vec());
    }

    #[test]
    fn holds_an_event_split_across_reads() {
        let done = b"data: [DONE]\n\n";
        let (head, tail) = USAGE.split_at(20);
        assert_eq!(strip(&[head, &[tail, done].concat()], false), done.to_vec());
        // A plain chunk split mid-event comes out whole, once.
        let a = b"data: {\"choices\":[{}]}\n\n";
        let (x, y) = a.split_at(9);
        let out = strip(&[x, &[y, USAGE].concat()], false);
        assert_eq!(out, a.to_vec());
    }
}
