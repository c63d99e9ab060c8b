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

/// The in-band SSE event for an error that happened mid-stream.
pub fn sse_error_event(err: &ApiError) -> Bytes {
    Bytes::from(format!("data: {}\n\n", err.openai_body()))
}

/// Relays `upstream` unchanged, cutting it with an in-band error when no chunk arrives
/// within `idle_timeout` or the upstream connection fails.
pub fn relay(
    upstream: impl Stream<Item = Result<Bytes, reqwest::Error>> + Send + 'static,
    idle_timeout: Duration,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let upstream = Box::pin(upstream);
    // The request's spend record lives as long as the stream and learns its usage here.
    let record = crate::spend::current();
    let scanner = crate::spend::UsageScanner::default();
    futures_util::stream::unfold(Some((upstream, scanner, record)), move |state| async move {
        let (mut upstream, mut scanner, record) = state?;
        match tokio::time::timeout(idle_timeout, upstream.next()).await {
            Ok(Some(Ok(chunk))) => {
                if let Some(record) = &record
                    && let Some(usage) = scanner.scan(&chunk)
                {
                    record.add_usage(usage);
                }
                Some((Ok(chunk), Some((upstream, scanner, record))))
            }
            Ok(None) => None,
            Ok(Some(Err(e))) => {
                tracing::warn!(error = %e, "upstream stream failed mid-way");
                metrics::counter!("gatehouse_stream_errors_total", "kind" => "upstream")
                    .increment(1);
                let err = ApiError::UpstreamUnreachable(format!("upstream stream failed: {e}"));
                Some((Ok(sse_error_event(&err)), None))
            }
            Err(_) => {
                metrics::counter!("gatehouse_stream_errors_total", "kind" => "idle_timeout")
                    .increment(1);
                let err = ApiError::UpstreamTimeout(idle_timeout.as_secs_f64());
                Some((Ok(sse_error_event(&err)), None))
            }
        }
    })
}
