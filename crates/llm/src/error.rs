//! Errors raised while mapping, and the vendor-neutral classification of upstream errors.

use serde::{Deserialize, Serialize};

/// Why a mapping failed. The server turns these into client-dialect errors: everything
/// but [`MapError::Upstream`] and [`MapError::InvalidUpstream`] is the client's fault (400).
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// The client request is malformed for translation (bad JSON, missing field, bad value).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// An assistant `tool_calls[].function.arguments` string is not a JSON object.
    #[error("tool call {tool_call_id}: arguments are not valid JSON: {reason}")]
    InvalidToolArguments {
        tool_call_id: String,
        reason: String,
    },
    /// The request uses a feature the target vendor cannot express.
    #[error("unsupported for this provider: {0}")]
    Unsupported(String),
    /// The vendor reported an error (e.g. an `error` event mid-stream).
    #[error("upstream {}: {}", .0.error_type, .0.message)]
    Upstream(UpstreamError),
    /// The vendor sent something we cannot parse.
    #[error("unparseable upstream payload: {0}")]
    InvalidUpstream(String),
}

impl MapError {
    /// True when the client caused the error (maps to HTTP 400 in the client's dialect).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            MapError::InvalidRequest(_)
                | MapError::InvalidToolArguments { .. }
                | MapError::Unsupported(_)
        )
    }
}

/// An error reported by a vendor, already classified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamError {
    pub kind: ErrorKind,
    /// The vendor's own error type string (e.g. `overloaded_error`).
    pub error_type: String,
    pub message: String,
}

/// What an upstream error means for the gateway, independent of vendor. Drives the HTTP
/// status we answer with, retries/fallbacks in the router and the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The prompt (plus max_tokens) does not fit the model's context window.
    ContextLength,
    RateLimit,
    Overloaded,
    /// Missing or invalid credentials (401).
    Auth,
    /// Valid credentials without access to the resource (403).
    PermissionDenied,
    /// Unknown model or endpoint (404).
    NotFound,
    RequestTooLarge,
    InvalidRequest,
    ContentPolicy,
    /// Any other vendor failure (5xx, unknown types).
    Upstream,
}

impl ErrorKind {
    /// HTTP status the gateway answers with for this kind.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::ContextLength | ErrorKind::InvalidRequest | ErrorKind::ContentPolicy => 400,
            ErrorKind::Auth => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::RequestTooLarge => 413,
            ErrorKind::RateLimit => 429,
            ErrorKind::Overloaded => 503,
            ErrorKind::Upstream => 500,
        }
    }

    /// Whether trying again (same or another deployment) can succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimit | ErrorKind::Overloaded | ErrorKind::Upstream
        )
    }

    /// OpenAI-dialect `error.type`.
    pub fn openai_type(self) -> &'static str {
        match self {
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

    /// OpenAI-dialect `error.code`, where OpenAI clients look for a specific one.
    pub fn openai_code(self) -> Option<&'static str> {
        match self {
            ErrorKind::ContextLength => Some("context_length_exceeded"),
            ErrorKind::RateLimit => Some("rate_limit_exceeded"),
            ErrorKind::ContentPolicy => Some("content_policy_violation"),
            _ => None,
        }
    }

    /// Low-cardinality label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::ContextLength => "context_length",
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Auth => "auth",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ContentPolicy => "content_policy",
            ErrorKind::Upstream => "upstream",
        }
    }
}

impl ErrorKind {
    /// The kind an HTTP status alone says, for a vendor error without a type the vendor's
    /// own classifier knows. Context-length overflow is never read from a status: each
    /// vendor recognises its own message before falling back here.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            400 | 422 => ErrorKind::InvalidRequest,
            401 => ErrorKind::Auth,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimit,
            // 529 is Anthropic's "overloaded"; 503 everyone else's.
            503 | 529 => ErrorKind::Overloaded,
            _ => ErrorKind::Upstream,
        }
    }
}

/// A vendor's HTTP error translated for an OpenAI-dialect client (every vendor's
/// `map_error` answers with this).
#[derive(Debug, Clone, PartialEq)]
pub struct MappedError {
    pub kind: ErrorKind,
    /// Status to answer the client with.
    pub status: u16,
    /// Whether another attempt (same or other deployment) may succeed.
    pub retryable: bool,
    pub body: crate::openai::ErrorBody,
    pub upstream: UpstreamError,
}

impl MappedError {
    /// The client-facing error for `upstream`, which the vendor answered with HTTP
    /// `status`. An unclassified 5xx stays visible as such (but not Anthropic's
    /// non-standard 529); anything else unclassified is a bad gateway.
    pub fn new(status: u16, upstream: UpstreamError) -> Self {
        let kind = upstream.kind;
        let client_status = match kind {
            ErrorKind::Upstream if (500..600).contains(&status) && status != 529 => status,
            ErrorKind::Upstream => 502,
            _ => kind.status(),
        };
        MappedError {
            kind,
            status: client_status,
            retryable: kind.is_retryable(),
            body: crate::openai::ErrorBody::from_kind(kind, upstream.message.clone()),
            upstream,
        }
    }
}

/// The message for an error body that is not the vendor's JSON (a proxy's HTML page):
/// a short excerpt of it, or the bare status when it is empty.
pub fn body_excerpt(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let excerpt: String = text.trim().chars().take(300).collect();
    if excerpt.is_empty() {
        format!("upstream returned HTTP {status}")
    } else {
        excerpt
    }
}

impl UpstreamError {
    /// OpenAI-shaped body, e.g. for an in-band stream error chunk.
    pub fn to_openai(&self) -> crate::openai::ErrorBody {
        crate::openai::ErrorBody::from_kind(self.kind, self.message.clone())
    }
}
