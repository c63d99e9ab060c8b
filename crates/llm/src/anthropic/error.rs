//! Anthropic error status + body -> classified, OpenAI-shaped error.

use super::wire::ErrorResponse;
pub use crate::error::MappedError;
use crate::error::body_excerpt;
use crate::{ErrorKind, UpstreamError};

/// Classifies an Anthropic error by its `error.type` (stable), falling back to the HTTP
/// status. Context-length overflow is the one case read from the message: Anthropic sends
/// it as a plain `invalid_request_error`, and the text ("prompt is too long: N tokens >
/// M maximum", "... exceed context limit ...") is the vendor's only signal. Clients and
/// the router need it distinguished (OpenAI code `context_length_exceeded`, no retry on
/// a same-size model), so we accept this narrow text match.
pub fn classify(status: Option<u16>, error_type: &str, message: &str) -> ErrorKind {
    let by_type = match error_type {
        "invalid_request_error" if is_context_length(message) => Some(ErrorKind::ContextLength),
        "invalid_request_error" => Some(ErrorKind::InvalidRequest),
        "authentication_error" => Some(ErrorKind::Auth),
        "permission_error" => Some(ErrorKind::PermissionDenied),
        "not_found_error" => Some(ErrorKind::NotFound),
        "request_too_large" => Some(ErrorKind::RequestTooLarge),
        "rate_limit_error" => Some(ErrorKind::RateLimit),
        "overloaded_error" => Some(ErrorKind::Overloaded),
        "api_error" | "timeout_error" => Some(ErrorKind::Upstream),
        _ => None,
    };
    if let Some(kind) = by_type {
        return kind;
    }
    match status {
        Some(400) if is_context_length(message) => ErrorKind::ContextLength,
        Some(status) => ErrorKind::from_status(status),
        None => ErrorKind::Upstream,
    }
}

fn is_context_length(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("prompt is too long")
        || m.contains("exceed context limit")
        || m.contains("context window")
}

pub(crate) fn upstream_error(
    status: Option<u16>,
    error_type: &str,
    message: &str,
) -> UpstreamError {
    UpstreamError {
        kind: classify(status, error_type, message),
        error_type: error_type.to_owned(),
        message: message.to_owned(),
    }
}

/// Maps an Anthropic error response (status + body bytes). Bodies that are not
/// Anthropic's JSON (a proxy's HTML page) are classified by status, with a short excerpt
/// of the body as the message.
pub fn map_error(status: u16, body: &[u8]) -> MappedError {
    let (error_type, message) = match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(resp) => (resp.error.error_type, resp.error.message),
        Err(_) => (String::new(), body_excerpt(status, body)),
    };
    MappedError::new(status, upstream_error(Some(status), &error_type, &message))
}
