use serde::{Deserialize, Serialize};

use super::Map;
use crate::ErrorKind;

/// OpenAI error body: `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub error_type: String,
    /// OpenAI always sends `param` and `code`, null when absent.
    pub param: Option<String>,
    pub code: Option<String>,
    #[serde(flatten)]
    pub rest: Map,
}

impl ErrorBody {
    /// Body for a classified error, with the OpenAI type and code clients look for.
    pub fn from_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                message: message.into(),
                error_type: kind.openai_type().to_owned(),
                param: None,
                code: kind.openai_code().map(str::to_owned),
                rest: Map::new(),
            },
        }
    }
}

/// Classifies an error from an OpenAI-compatible upstream (OpenAI, Azure, vLLM, Ollama,
/// llama.cpp, ...) by its status and body, once, where the body arrives. OpenAI names
/// the two kinds the router treats specially in `error.code`
/// (`context_length_exceeded`, `content_policy_violation` / Azure's `content_filter`);
/// vLLM and llama.cpp only say it in the message ("maximum context length",
/// "exceeds the context size"), which is their only signal, so that narrow text is read.
pub fn classify(status: u16, body: &[u8]) -> ErrorKind {
    #[derive(Deserialize)]
    struct Shape {
        error: Option<Detail>,
    }
    #[derive(Deserialize)]
    struct Detail {
        #[serde(default)]
        code: Option<serde_json::Value>,
        #[serde(default, rename = "type")]
        error_type: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    let detail = serde_json::from_slice::<Shape>(body)
        .ok()
        .and_then(|s| s.error);
    let code = detail
        .as_ref()
        .and_then(|d| d.code.as_ref())
        .and_then(|c| c.as_str())
        .unwrap_or("");
    let error_type = detail
        .as_ref()
        .and_then(|d| d.error_type.as_deref())
        .unwrap_or("");
    let message = detail
        .as_ref()
        .and_then(|d| d.message.as_deref())
        .unwrap_or("")
        .to_ascii_lowercase();
    match code {
        "context_length_exceeded" | "string_above_max_length" => return ErrorKind::ContextLength,
        "content_policy_violation" | "content_filter" => return ErrorKind::ContentPolicy,
        "rate_limit_exceeded" | "insufficient_quota" => return ErrorKind::RateLimit,
        "invalid_api_key" => return ErrorKind::Auth,
        "model_not_found" => return ErrorKind::NotFound,
        _ => {}
    }
    if matches!(status, 400 | 413 | 422)
        && (message.contains("maximum context length")
            || message.contains("context length")
            || message.contains("exceeds the context size")
            || message.contains("context window"))
    {
        return ErrorKind::ContextLength;
    }
    if error_type == "overloaded_error" {
        return ErrorKind::Overloaded;
    }
    // A 2xx or 3xx reported as an error (the upstream broke its protocol) is `Upstream`.
    ErrorKind::from_status(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_openai_compatible_errors() {
        let body = |code: &str, msg: &str| {
            format!(
                r#"{{"error":{{"message":"{msg}","type":"invalid_request_error","param":null,"code":{code}}}}}"#
            )
        };
        assert_eq!(
            classify(400, body("\"context_length_exceeded\"", "x").as_bytes()),
            ErrorKind::ContextLength
        );
        assert_eq!(
            classify(
                400,
                body("null", "This model's maximum context length is 4096 tokens").as_bytes()
            ),
            ErrorKind::ContextLength
        );
        assert_eq!(
            classify(400, body("\"content_filter\"", "x").as_bytes()),
            ErrorKind::ContentPolicy
        );
        assert_eq!(
            classify(400, body("null", "bad").as_bytes()),
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            classify(429, b"<html>slow down</html>"),
            ErrorKind::RateLimit
        );
        assert_eq!(classify(503, b""), ErrorKind::Overloaded);
        assert_eq!(classify(500, b"[1,2,3]"), ErrorKind::Upstream);
        assert_eq!(classify(401, b"{}"), ErrorKind::Auth);
    }
}
