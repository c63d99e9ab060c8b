//! OpenAI error bodies: `{"error":{"message","type","param","code"}}`.

use axum::response::Response;
use serde_json::{Value, json};

use crate::respond;

/// A 4xx/5xx in OpenAI's shape.
pub(crate) struct ApiError {
    pub status: u16,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// 400 `invalid_request_error`.
    pub fn invalid(
        message: impl Into<String>,
        param: Option<String>,
        code: Option<&'static str>,
    ) -> Self {
        Self {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            param,
            code,
            retry_after_secs: None,
        }
    }

    /// The body OpenAI sends for a given status when nothing more specific applies.
    pub fn for_status(status: u16, retry_after_secs: Option<u64>) -> Self {
        let (message, kind, code): (&str, &'static str, Option<&'static str>) = match status {
            429 => (
                "Rate limit reached for requests. Please try again in 1s.",
                "requests",
                Some("rate_limit_exceeded"),
            ),
            503 => (
                "The engine is currently overloaded, please try again later.",
                "server_error",
                None,
            ),
            s if s >= 500 => (
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                None,
            ),
            401 => (
                "Incorrect API key provided.",
                "invalid_request_error",
                Some("invalid_api_key"),
            ),
            404 => ("Not found.", "invalid_request_error", None),
            _ => ("Invalid request.", "invalid_request_error", None),
        };
        Self {
            status,
            message: message.to_owned(),
            kind,
            param: None,
            code,
            retry_after_secs,
        }
    }

    pub fn body(&self) -> Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }

    pub fn into_response(self) -> Response {
        let mut extra = Vec::new();
        if let Some(secs) = self.retry_after_secs {
            extra.push(("retry-after", secs.to_string()));
        }
        respond::json(self.status, &self.body(), &extra)
    }
}

/// 401 for a missing or wrong bearer token; `None` when the key is accepted.
pub(crate) fn check_auth(
    expected: Option<&str>,
    headers: &axum::http::HeaderMap,
) -> Option<ApiError> {
    let expected = expected?;
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").map(str::trim));
    match given {
        None | Some("") => Some(ApiError {
            status: 401,
            message: "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.".to_owned(),
            kind: "invalid_request_error",
            param: None,
            code: None,
            retry_after_secs: None,
        }),
        Some(key) if key == expected => None,
        Some(key) => Some(ApiError {
            status: 401,
            message: format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                redact(key)
            ),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
            retry_after_secs: None,
        }),
    }
}

/// OpenAI shows the first and last four characters of a rejected key.
fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 8))
}

/// 400 for a body that is not JSON.
pub(crate) fn bad_json() -> ApiError {
    ApiError::invalid(
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
        None,
        None,
    )
}

/// 404 for a model outside the allow-list; `None` when allowed.
pub(crate) fn check_model(allowed: Option<&[String]>, model: &str) -> Option<ApiError> {
    let allowed = allowed?;
    if allowed.iter().any(|m| m == model) {
        return None;
    }
    Some(ApiError {
        status: 404,
        message: format!("The model `{model}` does not exist or you do not have access to it."),
        kind: "invalid_request_error",
        param: None,
        code: Some("model_not_found"),
        retry_after_secs: None,
    })
}
