//! Server-sent-event framing and the response body that drains a stream's channel.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Comment lines keep idle connections (and proxies in between) from timing out, and let us
/// notice a client that went away.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// One `message` event; `id` enables resumption with `Last-Event-ID`.
pub fn message_event(id: Option<&str>, data: &str) -> Bytes {
    event(id, Some("message"), data)
}

/// A general event. `data` may span lines; each becomes its own `data:` field.
pub fn event(id: Option<&str>, name: Option<&str>, data: &str) -> Bytes {
    let mut s = String::with_capacity(data.len() + 48);
    if let Some(id) = id {
        s.push_str("id: ");
        s.push_str(id);
        s.push('\n');
    }
    if let Some(name) = name {
        s.push_str("event: ");
        s.push_str(name);
        s.push('\n');
    }
    if data.is_empty() {
        s.push_str("data: \n");
    }
    for line in data.lines() {
        s.push_str("data: ");
        s.push_str(line);
        s.push('\n');
    }
    s.push('\n');
    Bytes::from(s)
}

/// A `text/event-stream` response that ends when every sender of `rx` is gone.
pub fn response(rx: mpsc::Receiver<Bytes>) -> Response {
    response_with_guard(rx, ())
}

/// As [`response`], dropping `guard` when the body is dropped (client gone or stream over).
pub fn response_with_guard<G: Send + 'static>(rx: mpsc::Receiver<Bytes>, guard: G) -> Response {
    let stream = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        let next = tokio::select! {
            m = rx.recv() => m?,
            () = tokio::time::sleep(KEEPALIVE) => Bytes::from_static(b": keepalive\n\n"),
        };
        Some((Ok::<_, Infallible>(next), (rx, guard)))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Stops nginx-style proxies from buffering the stream.
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_events() {
        assert_eq!(
            &message_event(Some("1-2"), "{}")[..],
            b"id: 1-2\nevent: message\ndata: {}\n\n"
        );
        assert_eq!(&event(Some("1-1"), None, "")[..], b"id: 1-1\ndata: \n\n");
        assert_eq!(
            &event(None, Some("x"), "a\nb")[..],
            b"event: x\ndata: a\ndata: b\n\n"
        );
    }
}
