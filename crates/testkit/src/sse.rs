//! Server-sent-event bodies with per-chunk delay and abrupt disconnects.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream;

/// One `data:` frame (OpenAI style, no event name).
pub(crate) fn data(json: &serde_json::Value) -> Bytes {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"data: ");
    // Serializing a Value cannot fail.
    let _ = serde_json::to_writer(&mut out, json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// A named event frame (Anthropic style).
pub(crate) fn event(name: &str, json: &serde_json::Value) -> Bytes {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let _ = serde_json::to_writer(&mut out, json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// How the stream ends.
pub(crate) enum Ending {
    /// All frames are sent and the body ends normally.
    Complete,
    /// Only the first n frames go out, then the connection is cut.
    CutAfter(usize),
    /// Only the first n frames go out, then the body ends normally.
    EndAfter(usize),
}

impl Ending {
    /// The end of a stream that stops after `n` frames: aborted, or ended cleanly.
    pub(crate) fn after(n: usize, graceful: bool) -> Self {
        if graceful {
            Ending::EndAfter(n)
        } else {
            Ending::CutAfter(n)
        }
    }
}

/// The error that makes hyper abort the connection mid-body.
fn cut() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "mock: dropped mid-stream",
    )
}

/// Let hyper write out what was already yielded (headers, earlier frames) before the cut,
/// so the client sees a response that breaks off rather than no response at all.
async fn flush_pause() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

/// Build a streaming response from ready frames.
pub(crate) fn response(
    frames: Vec<Bytes>,
    delay: Duration,
    ending: Ending,
    extra: &[(&'static str, String)],
) -> Response {
    let mut frames = frames;
    let limit = match ending {
        Ending::Complete => None,
        Ending::CutAfter(n) => Some(n.min(frames.len())),
        Ending::EndAfter(n) => {
            frames.truncate(n);
            None
        }
    };
    let body = match limit {
        None if delay.is_zero() => Body::from_stream(stream::iter(
            frames.into_iter().map(Ok::<Bytes, std::io::Error>),
        )),
        _ => {
            let state = (frames.into_iter(), 0usize);
            Body::from_stream(stream::unfold(state, move |(mut it, sent)| async move {
                if limit.is_some_and(|n| sent >= n) {
                    // Yield the error once; hyper drops the connection and stops polling.
                    if sent == usize::MAX {
                        return None;
                    }
                    flush_pause().await;
                    return Some((Err(cut()), (it, usize::MAX)));
                }
                let frame = it.next()?;
                if sent > 0 && !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Some((Ok(frame), (it, sent + 1)))
            }))
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    for (k, v) in extra {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(*k, v);
        }
    }
    resp
}

/// A non-streaming body that sends the first half of `json` and then cuts the connection.
pub(crate) fn truncated_json(json: &serde_json::Value) -> Response {
    let full = serde_json::to_vec(json).unwrap_or_default();
    let half = Bytes::from(full[..full.len() / 2].to_vec());
    let body = Body::from_stream(stream::unfold(Some(half), |half| async move {
        match half {
            Some(h) => Some((Ok(h), None)),
            None => {
                flush_pause().await;
                Some((Err(cut()), None))
            }
        }
    }));
    let mut resp = Response::new(body);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
