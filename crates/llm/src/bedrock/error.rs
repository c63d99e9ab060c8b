//! Bedrock errors -> classified, OpenAI-shaped errors.
//!
//! Bedrock (AWS restJson) names the error in the `x-amzn-errortype` header
//! (`ThrottlingException:http://internal.amazon.com/...`) with `{"message": ...}` as the
//! body; the gateway copies the header into the body as `__type` (AWS's JSON-protocol
//! convention) so the type survives to here. In a ConverseStream the same names arrive
//! as `:exception-type` event headers.

use serde::Deserialize;

pub use crate::error::MappedError;
use crate::error::body_excerpt;
use crate::{ErrorKind, UpstreamError};

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
        Some(status) => ErrorKind::from_status(status),
        None => ErrorKind::Upstream,
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
        Err(_) => (String::new(), body_excerpt(status, body)),
    };
    MappedError::new(status, upstream_error(Some(status), &error_type, &message))
}
