//! Bedrock error responses: status, `x-amzn-errortype` header, `{"message"}` body.

use axum::response::Response;
use serde_json::json;

use crate::respond;

pub(crate) struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            kind: "ValidationException",
            message: message.into(),
        }
    }

    pub fn for_status(status: u16) -> Self {
        let (status, kind, message) = match status {
            400 => (400, "ValidationException", "Invalid request"),
            403 => (
                403,
                "AccessDeniedException",
                "You don't have access to the model with the specified model ID.",
            ),
            404 => (
                404,
                "ResourceNotFoundException",
                "Could not resolve the foundation model from the provided model identifier.",
            ),
            408 => (
                408,
                "ModelTimeoutException",
                "Model has timed out in processing the request.",
            ),
            429 => (
                429,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            ),
            424 => (
                424,
                "ModelErrorException",
                "The model failed to process the request.",
            ),
            503 | 529 => (
                503,
                "ServiceUnavailableException",
                "Bedrock is unable to process your request.",
            ),
            _ => (
                500,
                "InternalServerException",
                "The server encountered an internal error.",
            ),
        };
        Self {
            status,
            kind,
            message: message.to_owned(),
        }
    }

    pub fn into_response(self, retry_after_secs: Option<u64>) -> Response {
        let mut extra = vec![
            (
                "x-amzn-errortype",
                format!(
                    "{}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                    self.kind
                ),
            ),
            (
                "x-amzn-requestid",
                "00000000-0000-4000-8000-000000000000".to_owned(),
            ),
        ];
        if let Some(secs) = retry_after_secs {
            extra.push(("retry-after", secs.to_string()));
        }
        respond::json(self.status, &json!({"message": self.message}), &extra)
    }
}
