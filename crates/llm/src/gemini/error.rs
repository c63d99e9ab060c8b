//! Google API errors (`{"error":{"code","message","status","details"}}`) -> classified,
//! OpenAI-shaped errors.

use serde_json::Value;

use super::wire::{ErrorDetail, ErrorResponse};
pub use crate::error::MappedError;
use crate::error::body_excerpt;
use crate::{ErrorKind, UpstreamError};

/// Classifies by the canonical `status` (stable), then `details[].reason` (Google's
/// `ErrorInfo`, where a bad API key is `API_KEY_INVALID` under a 400), then the HTTP code.
/// Context overflow is a plain `INVALID_ARGUMENT` whose message is the only signal
/// ("The input token count (N) exceeds the maximum number of tokens allowed (M)"), so it
/// is recognised by that narrow text, as for Anthropic.
pub fn classify(code: Option<u16>, status: &str, message: &str, details: &[Value]) -> ErrorKind {
    let reasons = || {
        details
            .iter()
            .filter_map(|d| d.get("reason").and_then(Value::as_str))
    };
    if reasons().any(|r| r == "API_KEY_INVALID" || r == "API_KEY_SERVICE_BLOCKED") {
        return ErrorKind::Auth;
    }
    let by_status = match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE"
            if is_context_length(message) =>
        {
            Some(ErrorKind::ContextLength)
        }
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => {
            Some(ErrorKind::InvalidRequest)
        }
        "UNAUTHENTICATED" => Some(ErrorKind::Auth),
        "PERMISSION_DENIED" => Some(ErrorKind::PermissionDenied),
        "NOT_FOUND" => Some(ErrorKind::NotFound),
        "RESOURCE_EXHAUSTED" => Some(ErrorKind::RateLimit),
        "UNAVAILABLE" => Some(ErrorKind::Overloaded),
        "INTERNAL" | "UNKNOWN" | "DEADLINE_EXCEEDED" | "ABORTED" | "CANCELLED" => {
            Some(ErrorKind::Upstream)
        }
        _ => None,
    };
    if let Some(kind) = by_status {
        return kind;
    }
    match code {
        Some(400) if is_context_length(message) => ErrorKind::ContextLength,
        Some(code) => ErrorKind::from_status(code),
        None => ErrorKind::Upstream,
    }
}

fn is_context_length(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    (m.contains("input token count") && m.contains("exceeds the maximum"))
        || m.contains("context window")
}

pub(crate) fn upstream_error(detail: &ErrorDetail) -> UpstreamError {
    UpstreamError {
        kind: classify(
            detail.code,
            &detail.status,
            &detail.message,
            &detail.details,
        ),
        error_type: detail.status.clone(),
        message: detail.message.clone(),
    }
}

/// Maps a Gemini error response (status + body bytes). Bodies that are not Google's JSON
/// are classified by status, with an excerpt of the body as the message.
pub fn map_error(status: u16, body: &[u8]) -> MappedError {
    let detail = match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(resp) => resp.error,
        Err(_) => ErrorDetail {
            code: Some(status),
            message: body_excerpt(status, body),
            ..ErrorDetail::default()
        },
    };
    let detail = ErrorDetail {
        code: detail.code.or(Some(status)),
        ..detail
    };
    MappedError::new(status, upstream_error(&detail))
}
