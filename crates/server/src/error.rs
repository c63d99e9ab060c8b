//! Every error the API returns, and the one place that says what status and body it gets.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to an OpenAI-dialect client. Upstream errors that already carry an
/// OpenAI-shaped body are passed through as [`ApiError::Upstream`] with their status.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    InvalidParam {
        message: String,
        param: &'static str,
    },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    ModelNotFound(String),
    #[error("{0}")]
    NotFound(String),
    #[error(
        "request body is larger than the {limit_mb} MB limit (general_settings.max_request_size_mb)"
    )]
    PayloadTooLarge { limit_mb: f64 },
    /// A body whose `Content-Type` this route does not read (local mode: not JSON).
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    RateLimited(String),
    /// A key's own rpm/tpm/parallel limit; carries LiteLLM's `x-ratelimit-*` and
    /// `retry-after` headers.
    #[error("{message}")]
    OverKeyLimit {
        message: String,
        headers: Box<axum::http::HeaderMap>,
    },
    #[error("{0}")]
    BudgetExceeded(String),
    #[error("upstream did not answer within {0:.1}s")]
    UpstreamTimeout(f64),
    /// The text is usually an HTTP client error, which names the URL: printed redacted.
    #[error("could not reach the upstream: {}", gatehouse_config::redact::text(.0))]
    UpstreamUnreachable(String),
    /// The upstream answered an error; its status and (OpenAI-shaped) body are kept, with
    /// what it means (`kind`, classified once by the provider adapter where the vendor's
    /// body arrived) and how long the vendor asked us to wait (`Retry-After`, clamped).
    #[error("upstream error {status} ({})", kind.label())]
    Upstream {
        status: StatusCode,
        kind: gatehouse_llm::ErrorKind,
        body: bytes::Bytes,
        retry_after: Option<std::time::Duration>,
    },
    /// No deployment of the group could be tried (all cooling down or over their own
    /// rpm/tpm); `retry_after` is when the first comes back.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after: Option<std::time::Duration>,
    },
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// What the router needs to know of a failed attempt; `None` for the gateway's own
    /// errors (a request it could not map, ...), which no other deployment would fix.
    pub fn failure(&self) -> Option<gatehouse_router::Failure> {
        use gatehouse_router::Failure;
        match self {
            Self::UpstreamTimeout(_) => Some(Failure::Timeout),
            Self::UpstreamUnreachable(_) => Some(Failure::Unreachable),
            Self::Upstream { kind, .. } => Some(Failure::Vendor(*kind)),
            _ => None,
        }
    }

    /// Headers the error carries whatever the dialect: the key limit's `x-ratelimit-*` and
    /// `retry-after`, and `retry-after` when no deployment is available.
    pub fn headers(&self) -> Option<axum::http::HeaderMap> {
        match self {
            Self::OverKeyLimit { headers, .. } => Some(headers.as_ref().clone()),
            Self::Unavailable {
                retry_after: Some(after),
                ..
            } => {
                let mut h = axum::http::HeaderMap::new();
                let secs = after.as_secs_f64().ceil().max(1.0) as u64;
                h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
                Some(h)
            }
            _ => None,
        }
    }

    /// An upstream error classified from an OpenAI-compatible body.
    pub fn upstream(status: StatusCode, body: bytes::Bytes) -> Self {
        Self::Upstream {
            status,
            kind: gatehouse_llm::openai::classify_error(status.as_u16(), &body),
            body,
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidParam { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::ModelNotFound(_) | Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited(_) | Self::OverKeyLimit { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::BudgetExceeded(_) => StatusCode::BAD_REQUEST,
            Self::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::UpstreamUnreachable(_) => StatusCode::BAD_GATEWAY,
            Self::Upstream { status, .. } => *status,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `error.type` for this error.
    pub fn openai_type(&self) -> &'static str {
        match self {
            Self::BadRequest(_)
            | Self::InvalidParam { .. }
            | Self::PayloadTooLarge { .. }
            | Self::UnsupportedMediaType(_) => "invalid_request_error",
            Self::Unauthorized(_) => "authentication_error",
            Self::Forbidden(_) => "permission_error",
            Self::ModelNotFound(_) | Self::NotFound(_) => "not_found_error",
            Self::RateLimited(_) | Self::OverKeyLimit { .. } => "rate_limit_error",
            Self::BudgetExceeded(_) => "budget_exceeded",
            Self::UpstreamTimeout(_) => "timeout",
            Self::UpstreamUnreachable(_) | Self::Upstream { .. } | Self::Unavailable { .. } => {
                "api_error"
            }
            Self::NotImplemented(_) | Self::MethodNotAllowed(_) => "invalid_request_error",
            Self::Internal(_) => "internal_error",
        }
    }

    /// OpenAI's `error.code` for this error.
    fn openai_code(&self) -> Option<&'static str> {
        match self {
            Self::Unauthorized(_) => Some("invalid_api_key"),
            Self::ModelNotFound(_) => Some("model_not_found"),
            Self::PayloadTooLarge { .. } => Some("request_too_large"),
            Self::RateLimited(_) | Self::OverKeyLimit { .. } => Some("rate_limit_exceeded"),
            Self::BudgetExceeded(_) => Some("budget_exceeded"),
            _ => None,
        }
    }

    /// A low-cardinality label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BadRequest(_) | Self::InvalidParam { .. } => "bad_request",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::ModelNotFound(_) => "model_not_found",
            Self::NotFound(_) => "not_found",
            Self::PayloadTooLarge { .. } => "too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::RateLimited(_) | Self::OverKeyLimit { .. } => "rate_limited",
            Self::BudgetExceeded(_) => "budget_exceeded",
            Self::UpstreamTimeout(_) => "upstream_timeout",
            Self::UpstreamUnreachable(_) => "upstream_unreachable",
            Self::Upstream { .. } => "upstream_error",
            Self::Unavailable { .. } => "no_deployment",
            Self::NotImplemented(_) => "not_implemented",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::Internal(_) => "internal",
        }
    }

    /// The body in OpenAI's error shape: `{"error":{"message","type","param","code"}}`.
    pub fn openai_body(&self) -> serde_json::Value {
        let param = match self {
            Self::InvalidParam { param, .. } => json!(param),
            _ => serde_json::Value::Null,
        };
        json!({
            "error": {
                "message": gatehouse_config::redact::text(&self.to_string()),
                "type": self.openai_type(),
                "param": param,
                "code": self.openai_code(),
            }
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        metrics::counter!("gatehouse_errors_total", "kind" => self.kind()).increment(1);
        let status = self.status();
        let extra_headers = self.headers();
        let body = match self {
            Self::Upstream { body, .. } if looks_like_openai_error(&body) => body,
            Self::Upstream { status, body, .. } => {
                // Not OpenAI-shaped (an HTML proxy page, a vendor body): wrap it so the
                // client's SDK can still parse the error, and keep the upstream text.
                let text = String::from_utf8_lossy(&body);
                let text = gatehouse_config::redact::text(&text);
                let message = format!(
                    "upstream returned {status}: {}",
                    text.chars().take(2000).collect::<String>()
                );
                bytes::Bytes::from(
                    json!({"error": {"message": message, "type": "api_error", "param": null, "code": null}})
                        .to_string(),
                )
            }
            other => bytes::Bytes::from(other.openai_body().to_string()),
        };
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(extra) = extra_headers {
            response.headers_mut().extend(extra);
        }
        response
    }
}

fn looks_like_openai_error(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Shape {
        error: serde_json::Map<String, serde_json::Value>,
    }
    serde_json::from_slice::<Shape>(body)
        .map(|s| s.error.contains_key("message"))
        .unwrap_or(false)
}
