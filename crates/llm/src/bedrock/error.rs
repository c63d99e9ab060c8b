//! Bedrock errors -> classified, OpenAI-shaped errors.
//!
//! Bedrock (AWS restJson) names the error in the `x-amzn-errortype` header
//! (`ThrottlingException:http://internal.amazon.com/...`) with `{"message": ...}` as the
//! body; the gateway copies the header into the body as `__type` (AWS's JSON-protocol
//! convention) so the type survives to here. In a ConverseStream the same names arrive
//! as `:exception-type` event headers.

use serde::Deserialize;

use crate::openai::ErrorBody;
use crate::{ErrorKind, UpstreamError};

/// A Bedrock error translated for an OpenAI-dialect client.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedError {
    pub kind: ErrorKind,
    pub status: u16,
    pub retryable: bool,
    pub body: ErrorBody,
    pub upstream: UpstreamError,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default, rename = "__type")]
    error_type: Option<String>,
    #[serde(default, alias = "Message")]
    message: Option<String>,
}

/// `ThrottlingException:http://...` or `com.amazon...#ThrottlingException` -> the name.
fn short_type(raw: &str) -> &str {
    let name = raw.split(':').next().unwrap_or(raw);
    name.rsplit('#').next().unwrap_or(name)
}

/// Classifies by exception name, then status. Context overflow is a
/// `ValidationException` whose message is the only signal ("Input is too long for
/// requested model", "too many input tokens", Claude's "prompt is too long"), matched
/// narrowly as for the other vendors.
pub fn classify(status: Option<u16>, error_type: &str, message: &str) -> ErrorKind {
    let by_type = match short_type(error_type) {
        "ValidationException" if is_context_length(message) => Some(ErrorKind::ContextLength),
        "ValidationException" => Some(ErrorKind::InvalidRequest),
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "ExpiredTokenException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException" => Some(ErrorKind::Auth),
        "AccessDeniedException" => Some(ErrorKind::PermissionDenied),
        "ResourceNotFoundException" => Some(ErrorKind::NotFound),
        "ThrottlingException" | "ServiceQuotaExceededException" | "ModelNotReadyException" => {
            Some(ErrorKind::RateLimit)
        }
        "ServiceUnavailableException" => Some(ErrorKind::Overloaded),
        "InternalServerException"
        | "ModelErrorException"
        | "ModelTimeoutException"
        | "ModelStreamErrorException" => Some(ErrorKind::Upstream),
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
        Some(503) => ErrorKind::Overloaded,
        _ => ErrorKind::Upstream,
    }
}

fn is_context_length(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("input is too long")
        || m.contains("too many input tokens")
        || m.contains("prompt is too long")
        || m.contains("context window")
        || m.contains("context length")
}

pub(crate) fn upstream_error(
    status: Option<u16>,
    error_type: &str,
    message: &str,
) -> UpstreamError {
    UpstreamError {
        kind: classify(status, error_type, message),
        error_type: short_type(error_type).to_owned(),
        message: message.to_owned(),
    }
}

/// Maps a Bedrock error response (status + body bytes, `__type` as the gateway adds it).
pub fn map_error(status: u16, body: &[u8]) -> MappedError {
    let (error_type, message) = match serde_json::from_slice::<Body>(body) {
        Ok(b) => (
            b.error_type.unwrap_or_default(),
            b.message
                .unwrap_or_else(|| format!("upstream returned HTTP {status}")),
        ),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let excerpt: String = text.trim().chars().take(300).collect();
            (
                String::new(),
                if excerpt.is_empty() {
                    format!("upstream returned HTTP {status}")
                } else {
                    excerpt
                },
            )
        }
    };
    let upstream = upstream_error(Some(status), &error_type, &message);
    let kind = upstream.kind;
    let client_status = match kind {
        ErrorKind::Upstream if (500..600).contains(&status) => status,
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
