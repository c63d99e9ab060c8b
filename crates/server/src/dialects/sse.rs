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

/// Relays an upstream's SSE bytes unchanged; a failure after the head was sent
/// (connection lost, no chunk within `idle`) ends the stream with the event `on_error`
/// writes in the client's dialect, never silently.
pub fn relay_with(
    upstream: impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
    idle: std::time::Duration,
    on_error: fn(&crate::error::ApiError) -> Vec<u8>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static
{
    use futures_util::StreamExt;
    let upstream = Box::pin(upstream);
    let record = crate::spend::current();
    futures_util::stream::unfold(Some(upstream), move |state| {
        let record = record.clone();
        async move {
            let mut upstream = state?;
            let err = match tokio::time::timeout(idle, upstream.next()).await {
                Ok(Some(Ok(chunk))) => return Some((Ok(chunk), Some(upstream))),
                Ok(None) => return None,
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

/// An Anthropic upstream's stream, relayed; failures end it with an Anthropic `error` event.
pub fn relay_anthropic(
    upstream: impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
    idle: std::time::Duration,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static
{
    relay_with(upstream, idle, super::errors::anthropic_event)
}

/// An OpenAI Responses stream, relayed; failures end it with a Responses `error` event
/// (`{"type":"error","code","message","param"}`), which Responses clients understand.
pub fn relay_responses(
    upstream: impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send + 'static,
    idle: std::time::Duration,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + Send + 'static
{
    relay_with(upstream, idle, responses_error_event)
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
