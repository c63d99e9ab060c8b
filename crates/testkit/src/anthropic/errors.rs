//! Anthropic error bodies: `{"type":"error","error":{"type","message"},"request_id"}`.

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use crate::respond;

/// A 4xx/5xx in Anthropic's shape.
pub(crate) struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            kind: "invalid_request_error",
            message: message.into(),
            retry_after_secs: None,
        }
    }

    /// The body Anthropic sends for a status when nothing more specific applies.
    pub fn for_status(status: u16, retry_after_secs: Option<u64>) -> Self {
        let (kind, message) = match status {
            400 => ("invalid_request_error", "Invalid request"),
            401 => ("authentication_error", "invalid x-api-key"),
            403 => (
                "permission_error",
                "Your API key does not have permission to use the specified resource.",
            ),
            404 => ("not_found_error", "Not found"),
            413 => (
                "request_too_large",
                "Request exceeds the maximum allowed number of bytes.",
            ),
            429 => (
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit. Please try again later.",
            ),
            529 => ("overloaded_error", "Overloaded"),
            _ => ("api_error", "Internal server error"),
        };
        Self {
            status,
            kind,
            message: message.to_owned(),
            retry_after_secs,
        }
    }

    pub fn body(&self, request_id: &str) -> Value {
        json!({
            "type": "error",
            "error": {"type": self.kind, "message": self.message},
            "request_id": request_id,
        })
    }

    pub fn into_response(self, request_id: &str) -> Response {
        let mut extra = vec![("request-id", request_id.to_owned())];
        if let Some(secs) = self.retry_after_secs {
            extra.push(("retry-after", secs.to_string()));
        }
        respond::json(self.status, &self.body(request_id), &extra)
    }
}

/// Credential and version header checks, in the order the API applies them.
pub(crate) fn check_headers(expected_key: Option<&str>, headers: &HeaderMap) -> Option<ApiError> {
    if let Some(expected) = expected_key {
        let given = headers.get("x-api-key").and_then(|v| v.to_str().ok());
        let message = match given {
            None | Some("") => Some("x-api-key header is required"),
            Some(k) if k == expected => None,
            Some(_) => Some("invalid x-api-key"),
        };
        if let Some(message) = message {
            return Some(ApiError {
                status: 401,
                kind: "authentication_error",
                message: message.to_owned(),
                retry_after_secs: None,
            });
        }
    }
    if headers.get("anthropic-version").is_none() {
        return Some(ApiError::invalid("anthropic-version: header is required"));
    }
    None
}

/// 404 for a model outside the allow-list.
pub(crate) fn check_model(allowed: Option<&[String]>, model: &str) -> Option<ApiError> {
    let allowed = allowed?;
    if allowed.iter().any(|m| m == model) {
        return None;
    }
    Some(ApiError {
        status: 404,
        kind: "not_found_error",
        message: format!("model: {model}"),
        retry_after_secs: None,
    })
}

/// 400 for a body that is not JSON.
pub(crate) fn bad_json() -> ApiError {
    ApiError::invalid(
        "There was an error parsing the body of your request. Please check that it is valid JSON.",
    )
}
