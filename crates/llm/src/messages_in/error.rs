//! Errors in the Anthropic dialect: `{"type":"error","error":{"type","message"}}`.

use serde_json::{Value, json};

use crate::{ErrorKind, MapError};

/// Anthropic's `error.type` for a classified error.
pub fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ContextLength | ErrorKind::InvalidRequest | ErrorKind::ContentPolicy => {
            "invalid_request_error"
        }
        ErrorKind::Auth => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RequestTooLarge => "request_too_large",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Upstream => "api_error",
    }
}

/// HTTP status in this dialect. Differs from [`ErrorKind::status`] only for overload:
/// Anthropic clients (Claude Code, the SDKs) know 529 as "overloaded, retry later".
pub fn error_status(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::Overloaded => 529,
        other => other.status(),
    }
}

/// The error body (also the `data` of a stream `error` event).
pub fn error_body(kind: ErrorKind, message: &str) -> Value {
    json!({"type": "error", "error": {"type": error_type(kind), "message": message}})
}

/// Status and Anthropic-shaped body for a mapping failure: the client's own mistakes
/// are 400 `invalid_request_error`; a classified provider error keeps its kind; a
/// provider answer we could not read is a 502 `api_error`.
pub fn map_error_response(err: &MapError) -> (u16, Value) {
    let (kind, status) = match err {
        MapError::Upstream(e) => (e.kind, error_status(e.kind)),
        MapError::InvalidUpstream(_) => (ErrorKind::Upstream, 502),
        _ => (ErrorKind::InvalidRequest, 400),
    };
    let message = match err {
        MapError::Upstream(e) => e.message.clone(),
        other => other.to_string(),
    };
    (status, error_body(kind, &message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_is_529_and_context_length_is_an_invalid_request() {
        assert_eq!(error_status(ErrorKind::Overloaded), 529);
        assert_eq!(error_status(ErrorKind::RateLimit), 429);
        assert_eq!(
            error_body(ErrorKind::ContextLength, "prompt is too long"),
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "prompt is too long"}})
        );
        assert_eq!(error_status(ErrorKind::Auth), 401);
        assert_eq!(error_type(ErrorKind::Upstream), "api_error");
    }

    #[test]
    fn mapping_failures_get_the_right_status_and_type() {
        let (status, body) = map_error_response(&MapError::Unsupported("x".to_owned()));
        assert_eq!(status, 400);
        assert_eq!(body["error"]["type"], "invalid_request_error");
        let upstream = MapError::Upstream(crate::UpstreamError {
            kind: ErrorKind::Overloaded,
            error_type: "overloaded_error".to_owned(),
            message: "busy".to_owned(),
        });
        assert_eq!(
            map_error_response(&upstream),
            (529, error_body(ErrorKind::Overloaded, "busy"))
        );
        let (status, body) = map_error_response(&MapError::InvalidUpstream("junk".to_owned()));
        assert_eq!(
            (status, body["error"]["type"].as_str()),
            (502, Some("api_error"))
        );
    }
}
