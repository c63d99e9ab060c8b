//! Reading and identifying requests: the request id and the JSON body (size-limited).

use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::error::ApiError;

/// The id tying a request's logs, response and upstream calls together: the client's
/// `x-request-id` when it sent a sane one, else a fresh UUID.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Middleware: assign the request id, time the request, echo the id on the response.
pub async fn observe(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().clone();
    req.extensions_mut().insert(RequestId(id.clone()));
    let started = std::time::Instant::now();
    let span = tracing::info_span!("request", request_id = %id, %method, route = %route);
    let mut response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    let elapsed = started.elapsed();
    metrics::histogram!("gatehouse_request_duration_seconds", "route" => route.clone(), "status" => status_class(status.as_u16()))
        .record(elapsed.as_secs_f64());
    metrics::counter!("gatehouse_requests_total", "route" => route.clone(), "status" => status_class(status.as_u16()))
        .increment(1);
    tracing::debug!(parent: &span, status = status.as_u16(), ms = elapsed.as_secs_f64() * 1e3, "done");
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
pub async fn read_body(body: Body, limit: usize, limit_mb: f64) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        // axum reports an over-limit body as a LengthLimitError source.
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge { limit_mb }
        } else {
            ApiError::BadRequest(format!("could not read the request body: {e}"))
        }
    })
}

/// Parses a JSON object body the way OpenAI reports a bad one.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::BadRequest(
            "the request body must be a JSON object".into(),
        )),
        Err(e) => Err(ApiError::BadRequest(format!(
            "We could not parse the JSON body of your request: {e}"
        ))),
    }
}

/// A model request's body as every inbound API reads it: size-limited, a JSON object,
/// with a non-empty `model` (its length is what routing by body size sees).
pub struct ModelRequest {
    pub body: Map<String, Value>,
    pub model: String,
    pub len: usize,
}

/// Reads a model request; `missing_model` is the error in the API's own words.
pub async fn read_model_request(
    settings: &crate::state::Settings,
    body: Body,
    missing_model: impl FnOnce() -> ApiError,
) -> Result<ModelRequest, ApiError> {
    let bytes = read_body(
        body,
        settings.max_request_bytes,
        settings.max_request_size_mb,
    )
    .await?;
    let body = parse_object(&bytes)?;
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        _ => return Err(missing_model()),
    };
    Ok(ModelRequest {
        body,
        model,
        len: bytes.len(),
    })
}
