//! Google API error bodies: `{"error":{"code","message","status","details"?}}`.

use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use crate::respond;

/// A 4xx/5xx in Google's shape.
pub(crate) struct ApiError {
    pub code: u16,
    pub status: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: 400,
            status: "INVALID_ARGUMENT",
            message: message.into(),
            details: None,
        }
    }

    /// What Gemini answers for a status when nothing more specific applies.
    pub fn for_status(code: u16) -> Self {
        let (code, status, message) = match code {
            400 => (
                400,
                "INVALID_ARGUMENT",
                "Request contains an invalid argument.",
            ),
            403 => (
                403,
                "PERMISSION_DENIED",
                "The caller does not have permission",
            ),
            404 => (404, "NOT_FOUND", "Requested entity was not found."),
            429 => (
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details.",
            ),
            // Gemini has no 529; its overload signal is 503 UNAVAILABLE.
            503 | 529 => (
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
            ),
            504 => (
                504,
                "DEADLINE_EXCEEDED",
                "Deadline expired before operation could complete.",
            ),
            _ => (
                500,
                "INTERNAL",
                "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            ),
        };
        Self {
            code,
            status,
            message: message.to_owned(),
            details: None,
        }
    }

    pub fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message, "status": self.status});
        if let Some(details) = &self.details {
            error["details"] = details.clone();
        }
        json!({"error": error})
    }

    pub fn into_response(self, retry_after_secs: Option<u64>) -> Response {
        let extra: Vec<(&'static str, String)> = retry_after_secs
            .map(|s| vec![("retry-after", s.to_string())])
            .unwrap_or_default();
        respond::json(self.code, &self.body(), &extra)
    }
}

/// The key comes in `x-goog-api-key` or the `key` query parameter.
pub(crate) fn check_key(
    expected: Option<&str>,
    headers: &HeaderMap,
    uri: &Uri,
) -> Option<ApiError> {
    let expected = expected?;
    let from_query = uri.query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "key")
            .map(|(_, v)| v.to_owned())
    });
    let given = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(from_query);
    match given.as_deref() {
        None | Some("") => Some(ApiError {
            code: 403,
            status: "PERMISSION_DENIED",
            message: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.".to_owned(),
            details: None,
        }),
        Some(k) if k == expected => None,
        Some(_) => Some(ApiError {
            code: 400,
            status: "INVALID_ARGUMENT",
            message: "API key not valid. Please pass a valid API key.".to_owned(),
            details: Some(json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }])),
        }),
    }
}

/// 404 for a model outside the allow-list.
pub(crate) fn check_model(
    allowed: Option<&[String]>,
    model: &str,
    method: &str,
) -> Option<ApiError> {
    let allowed = allowed?;
    if allowed.iter().any(|m| m == model) {
        return None;
    }
    Some(ApiError {
        code: 404,
        status: "NOT_FOUND",
        message: format!(
            "models/{model} is not found for API version v1beta, or is not supported for {method}. Call ListModels to see the list of available models and their supported methods."
        ),
        details: None,
    })
}
