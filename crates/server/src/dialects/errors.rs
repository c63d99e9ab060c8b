//! Errors in the dialect the client called.
//!
//! [`ApiError`] is OpenAI-shaped by default; an Anthropic Messages client needs
//! `{"type":"error","error":{"type","message"}}` with Anthropic's statuses (529 for
//! overload), and a Responses stream reports failures as `response.failed` with an
//! [`ErrorKind`]. One function each says how.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_llm::ErrorKind;
use gatehouse_llm::messages_in::{error_body, error_status};
use serde_json::Value;

use crate::error::ApiError;

/// What an error means, vendor-neutrally (for Anthropic bodies and `response.failed`).
pub fn kind_of(err: &ApiError) -> ErrorKind {
    match err {
        ApiError::BadRequest(_) | ApiError::InvalidParam { .. } | ApiError::NotImplemented(_) => {
            ErrorKind::InvalidRequest
        }
        ApiError::Unauthorized(_) => ErrorKind::Auth,
        ApiError::Forbidden(_) => ErrorKind::PermissionDenied,
        ApiError::ModelNotFound(_) | ApiError::NotFound(_) => ErrorKind::NotFound,
        ApiError::PayloadTooLarge { .. } => ErrorKind::RequestTooLarge,
        ApiError::RateLimited(_) | ApiError::OverKeyLimit { .. } => ErrorKind::RateLimit,
        ApiError::UpstreamTimeout(_) | ApiError::UpstreamUnreachable(_) | ApiError::Internal(_) => {
            ErrorKind::Upstream
        }
        ApiError::Upstream { kind, .. } => *kind,
        ApiError::Unavailable { .. } => ErrorKind::Overloaded,
        // Errors added later (budgets, limits, ...) are classified by their status.
        other => gatehouse_llm::openai::classify_error(other.status().as_u16(), b""),
    }
}

/// The human-readable message: the vendor's own for upstream errors.
pub fn message_of(err: &ApiError) -> String {
    if let ApiError::Upstream { status, body, .. } = err {
        let parsed = serde_json::from_slice::<Value>(body).ok();
        if let Some(message) = parsed
            .as_ref()
            .and_then(|v| v.pointer("/error/message"))
            .and_then(Value::as_str)
        {
            return message.to_owned();
        }
        let text = String::from_utf8_lossy(body);
        return format!(
            "upstream returned {status}: {}",
            text.chars().take(2000).collect::<String>()
        );
    }
    err.to_string()
}

/// True when `body` is already an Anthropic error (`{"type":"error","error":{...}}`).
fn is_anthropic_error(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).is_ok_and(|v| {
        v.get("type").and_then(Value::as_str) == Some("error") && v.pointer("/error/type").is_some()
    })
}

/// Status and Anthropic-shaped body for `err`. An Anthropic upstream's own error body is
/// passed on unchanged with its status.
pub fn anthropic_parts(err: &ApiError) -> (StatusCode, bytes::Bytes) {
    if let ApiError::Upstream { status, body, .. } = err
        && is_anthropic_error(body)
    {
        return (*status, body.clone());
    }
    let kind = kind_of(err);
    let status = match err {
        // Keep gateway statuses Anthropic has no kind for (502, 504, 501).
        ApiError::UpstreamTimeout(_)
        | ApiError::UpstreamUnreachable(_)
        | ApiError::NotImplemented(_) => err.status(),
        _ => StatusCode::from_u16(error_status(kind)).unwrap_or(StatusCode::BAD_GATEWAY),
    };
    let body = error_body(kind, &message_of(err)).to_string();
    (status, bytes::Bytes::from(body))
}

/// `err` as an Anthropic error response.
pub fn anthropic_response(err: &ApiError) -> Response {
    metrics::counter!("gatehouse_errors_total", "kind" => err.kind()).increment(1);
    let (status, body) = anthropic_parts(err);
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(extra) = err.headers() {
        response.headers_mut().extend(extra);
    }
    response
}

/// The `data` of an Anthropic stream `error` event for `err`.
pub fn anthropic_event(err: &ApiError) -> Vec<u8> {
    let (_, body) = anthropic_parts(err);
    let mut out = Vec::new();
    gatehouse_llm::sse::encode(Some("error"), &String::from_utf8_lossy(&body), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gateway_errors_take_anthropic_shape() {
        let (status, body) = anthropic_parts(&ApiError::ModelNotFound("no such model".into()));
        assert_eq!(status, 404);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({"type": "error", "error": {"type": "not_found_error", "message": "no such model"}})
        );
        let (status, _) = anthropic_parts(&ApiError::Unauthorized("bad key".into()));
        assert_eq!(status, 401);
    }

    #[test]
    fn upstream_bodies_are_kept_or_translated() {
        let native = br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#;
        let err = ApiError::upstream(
            StatusCode::from_u16(529).unwrap(),
            bytes::Bytes::from_static(native),
        );
        assert_eq!(anthropic_parts(&err).1.as_ref(), native);
        let openai = br#"{"error":{"message":"slow down","type":"rate_limit_error"}}"#;
        let err = ApiError::upstream(
            StatusCode::TOO_MANY_REQUESTS,
            bytes::Bytes::from_static(openai),
        );
        let (status, body) = anthropic_parts(&err);
        assert_eq!(status, 429);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["type"], "rate_limit_error");
        assert_eq!(body["error"]["message"], "slow down");
        let err = ApiError::upstream(
            StatusCode::from_u16(529).unwrap(),
            bytes::Bytes::from_static(b"{}"),
        );
        assert_eq!(kind_of(&err), ErrorKind::Overloaded);
        assert_eq!(anthropic_parts(&err).0, 529);
    }
}
