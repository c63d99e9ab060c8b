//! Anthropic error status + body -> classified, OpenAI-shaped error.

use super::wire::ErrorResponse;
use crate::openai::ErrorBody;
use crate::{ErrorKind, UpstreamError};

/// An Anthropic HTTP error translated for an OpenAI-dialect client.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedError {
    pub kind: ErrorKind,
    /// Status to answer the client with (529 overloaded becomes 503).
    pub status: u16,
    /// Whether another attempt (same or other deployment) may succeed.
    pub retryable: bool,
    pub body: ErrorBody,
    pub upstream: UpstreamError,
}

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
        Some(400 | 422) => ErrorKind::InvalidRequest,
        Some(401) => ErrorKind::Auth,
        Some(403) => ErrorKind::PermissionDenied,
        Some(404) => ErrorKind::NotFound,
        Some(413) => ErrorKind::RequestTooLarge,
        Some(429) => ErrorKind::RateLimit,
        Some(529) => ErrorKind::Overloaded,
        _ => ErrorKind::Upstream,
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
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let excerpt: String = text.trim().chars().take(300).collect();
            let message = if excerpt.is_empty() {
                format!("upstream returned HTTP {status}")
            } else {
                excerpt
            };
            (String::new(), message)
        }
    };
    let upstream = upstream_error(Some(status), &error_type, &message);
    let kind = upstream.kind;
    let client_status = match kind {
        // Keep an unexpected 5xx visible as such; anything else unknown is a bad gateway.
        ErrorKind::Upstream if (500..600).contains(&status) && status != 529 => status,
        ErrorKind::Upstream => 502,
        _ => kind.status(),
    };
    MappedError {
        kind,
        status: client_status,
        retryable: kind.is_retryable(),
        body: ErrorBody::from_kind(kind, message),
        upstream,
    }
}
