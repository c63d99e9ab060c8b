//! The head of an SSE response.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

pub fn response(body: Body) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// Relays an Anthropic upstream's SSE bytes unchanged; a failure after the head was
/// sent (connection lost, no chunk within `idle`) ends the stream with an Anthropic
/// `event: error`, never silently.
pub fn relay_anthropic(
    upstream: impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
    idle: std::time::Duration,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static
{
    use futures_util::StreamExt;
    let upstream = Box::pin(upstream);
    futures_util::stream::unfold(Some(upstream), move |state| async move {
        let mut upstream = state?;
        let err = match tokio::time::timeout(idle, upstream.next()).await {
            Ok(Some(Ok(chunk))) => return Some((Ok(chunk), Some(upstream))),
            Ok(None) => return None,
            Ok(Some(Err(e))) => {
                crate::error::ApiError::UpstreamUnreachable(format!("upstream stream failed: {e}"))
            }
            Err(_) => crate::error::ApiError::UpstreamTimeout(idle.as_secs_f64()),
        };
        tracing::warn!(error = %err, "upstream stream failed mid-way");
        metrics::counter!("gatehouse_stream_errors_total", "kind" => err.kind()).increment(1);
        let event = super::errors::anthropic_event(&err);
        Some((Ok(bytes::Bytes::from(event)), None))
    })
}
