//! Azure OpenAI specifics on top of the OpenAI passthrough (`providers::openai`): the
//! deployment URL and the content-filter errors.
//!
//! URL: `{api_base}/openai/deployments/{deployment}/{chat/completions|embeddings}
//! ?api-version={v}` (Azure's data-plane REST reference), `v` from `api_version`, else
//! `AZURE_API_VERSION`, else the latest GA version. `api_base` may be written with a
//! trailing `/openai` (as in some portal snippets); it is not doubled. The key goes in
//! the `api-key` header (`upstream::send`).
//!
//! Content filter: Azure refuses a prompt with HTTP 400, `code: "content_filter"`
//! and an `innererror` (`ResponsibleAIPolicyViolation`, per-category results), with
//! `type: null`. Clients and the router recognise content-policy refusals by OpenAI's
//! `code: "content_policy_violation"` and `type: "invalid_request_error"`, so the body
//! is rewritten to that while Azure's `innererror` and `param` are kept for detail.

use axum::http::StatusCode;
use bytes::Bytes;
use gatehouse_llm::ErrorKind;
use gatehouse_llm::openai::ErrorBody;
use serde_json::Value;

use crate::deployments::Deployment;
use crate::error::ApiError;
use crate::proxy::Endpoint;

/// Latest GA data-plane version at the time of writing.
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// Absolute URL of `endpoint` on an Azure deployment.
pub fn url(deployment: &Deployment, endpoint: Endpoint) -> String {
    let version = deployment
        .api_version
        .clone()
        .or_else(|| {
            std::env::var("AZURE_API_VERSION")
                .ok()
                .filter(|v| !v.is_empty())
        })
        .unwrap_or_else(|| DEFAULT_API_VERSION.to_owned());
    let base = deployment.api_base.trim_end_matches('/');
    let base = base.strip_suffix("/openai").unwrap_or(base);
    format!(
        "{base}/openai/deployments/{}{}?api-version={version}",
        deployment.upstream_model,
        endpoint.openai_path()
    )
}

/// True for Azure's content-filter refusal body.
fn is_content_filter(error: &Value) -> bool {
    error.get("code").and_then(Value::as_str) == Some("content_filter")
        || error.pointer("/innererror/code").and_then(Value::as_str)
            == Some("ResponsibleAIPolicyViolation")
}

/// Rewrites Azure content-filter refusals (see the module docs); other errors pass.
pub fn vendor_error(err: ApiError) -> ApiError {
    let ApiError::Upstream {
        body, retry_after, ..
    } = &err
    else {
        return err;
    };
    let retry_after = *retry_after;
    let Ok(parsed) = serde_json::from_slice::<Value>(body) else {
        return err;
    };
    let Some(error) = parsed.get("error").filter(|e| is_content_filter(e)) else {
        return err;
    };
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("the request was blocked by Azure OpenAI's content filter")
        .to_owned();
    let mut mapped = ErrorBody::from_kind(ErrorKind::ContentPolicy, message);
    mapped.error.param = error
        .get("param")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(inner) = error.get("innererror") {
        mapped.error.rest.insert("innererror".into(), inner.clone());
    }
    let body = serde_json::to_vec(&mapped)
        .map(Bytes::from)
        .unwrap_or_default();
    ApiError::Upstream {
        status: StatusCode::from_u16(ErrorKind::ContentPolicy.status())
            .unwrap_or(StatusCode::BAD_REQUEST),
        kind: ErrorKind::ContentPolicy,
        body,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn content_filter_is_recognisable() {
        let azure = serde_json::json!({"error": {"message": "filtered", "type": null,
            "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {"violence": {"filtered": true, "severity": "medium"}}}}});
        let err = vendor_error(ApiError::upstream(
            StatusCode::BAD_REQUEST,
            Bytes::from(azure.to_string()),
        ));
        let ApiError::Upstream {
            status, body, kind, ..
        } = err
        else {
            panic!("not an upstream error");
        };
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(kind, ErrorKind::ContentPolicy);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "content_policy_violation");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["param"], "prompt");
        assert_eq!(
            body["error"]["innererror"]["content_filter_result"]["violence"]["filtered"],
            true
        );
        // Anything else is left alone.
        let other = Bytes::from(r#"{"error":{"code":"429","message":"slow down"}}"#);
        let err = vendor_error(ApiError::upstream(
            StatusCode::TOO_MANY_REQUESTS,
            other.clone(),
        ));
        assert!(matches!(err, ApiError::Upstream { body, .. } if body == other));
    }
}
