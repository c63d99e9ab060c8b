//! Sending one request to one deployment: timeouts, retries on transient failures
//! (honouring `Retry-After`), and mapping transport failures to [`ApiError`].

use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse_config::Dialect;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::deployments::Deployment;
use crate::error::ApiError;

/// `Retry-After` values above this are not waited for: the error goes to the client.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
const ANTHROPIC_VERSION: &str = "2023-06-01";

pub struct UpstreamCall<'a> {
    pub deployment: &'a Deployment,
    /// Appended to the deployment's `api_base`, e.g. `/chat/completions`.
    pub path: &'a str,
    pub body: Bytes,
    pub stream: bool,
    pub request_id: &'a str,
    /// Client headers forwarded unchanged (e.g. `anthropic-beta`).
    pub forward_headers: Vec<(HeaderName, HeaderValue)>,
}

/// Whether trying again (here or on another deployment) may succeed.
pub fn is_retryable(err: &ApiError) -> bool {
    match err {
        ApiError::UpstreamTimeout(_) | ApiError::UpstreamUnreachable(_) => true,
        ApiError::Upstream { status, .. } => is_retryable_status(*status),
        _ => false,
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// Sends `call`, retrying transient failures up to the deployment's `max_retries`.
/// Returns the upstream response once its status is a success; an error status becomes
/// [`ApiError::Upstream`] with the upstream body.
pub async fn send(
    http: &reqwest::Client,
    call: &UpstreamCall<'_>,
) -> Result<reqwest::Response, ApiError> {
    let deployment = call.deployment;
    let mut attempt = 0;
    loop {
        let started = Instant::now();
        let result = send_once(http, call).await;
        let elapsed = started.elapsed().as_secs_f64();
        let outcome = match &result {
            Ok(_) => "ok",
            Err((e, _)) => e.kind(),
        };
        metrics::histogram!("gatehouse_upstream_seconds", "provider" => deployment.provider.name, "outcome" => outcome)
            .record(elapsed);
        let err = match result {
            Ok(response) => return Ok(response),
            Err((err, retry_after)) => {
                if attempt >= deployment.max_retries || !is_retryable(&err) {
                    return Err(err);
                }
                match retry_after {
                    Some(wait) if wait > MAX_RETRY_AFTER => return Err(err),
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => tokio::time::sleep(backoff(attempt)).await,
                }
                err
            }
        };
        attempt += 1;
        tracing::warn!(
            deployment = %deployment.id,
            attempt,
            error = %err,
            "retrying upstream call"
        );
        metrics::counter!("gatehouse_upstream_retries_total", "provider" => deployment.provider.name).increment(1);
    }
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(5))).min(Duration::from_secs(2))
}

type Failure = (ApiError, Option<Duration>);

async fn send_once(
    http: &reqwest::Client,
    call: &UpstreamCall<'_>,
) -> Result<reqwest::Response, Failure> {
    let deployment = call.deployment;
    // An absolute `path` is the whole URL: Bedrock derives its endpoint per request
    // (region from the deployment's AWS settings) and signs exactly that URL.
    let url = if call.path.starts_with("https://") || call.path.starts_with("http://") {
        call.path.to_string()
    } else {
        format!("{}{}", deployment.api_base, call.path)
    };
    let mut builder = http
        .post(url)
        .headers(upstream_headers(call))
        .body(call.body.clone());
    let wait = if call.stream {
        deployment.stream_timeout.unwrap_or(deployment.timeout)
    } else {
        // The whole exchange, body included, must finish in time.
        builder = builder.timeout(deployment.timeout);
        deployment.timeout
    };
    let response = match tokio::time::timeout(wait, builder.send()).await {
        Err(_) => return Err((ApiError::UpstreamTimeout(wait.as_secs_f64()), None)),
        Ok(Err(e)) if e.is_timeout() => {
            return Err((ApiError::UpstreamTimeout(wait.as_secs_f64()), None));
        }
        Ok(Err(e)) => return Err((ApiError::UpstreamUnreachable(describe(&e)), None)),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let error_type = aws_error_type(deployment, response.headers());
    let mut body = response.bytes().await.unwrap_or_default();
    if let Some(error_type) = error_type {
        body = with_aws_error_type(body, &error_type);
    }
    let status = axum::http::StatusCode::from_u16(status.as_u16())
        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    Err((ApiError::Upstream { status, body }, retry_after))
}

/// Bedrock names its error in the `x-amzn-errortype` header, which does not survive
/// into [`ApiError::Upstream`]; it is kept for the error mapper in the body as `__type`
/// (where AWS's JSON protocols put it).
fn aws_error_type(deployment: &Deployment, headers: &reqwest::header::HeaderMap) -> Option<String> {
    if deployment.provider.dialect != Dialect::Bedrock {
        return None;
    }
    headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn with_aws_error_type(body: Bytes, error_type: &str) -> Bytes {
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut map)) if !map.contains_key("__type") => {
            map.insert("__type".into(), error_type.into());
            serde_json::to_vec(&map).map(Bytes::from).unwrap_or(body)
        }
        _ => body,
    }
}

/// reqwest's Display hides the cause ("error sending request"); walk the chain so the
/// client learns it was e.g. "connection refused".
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn upstream_headers(call: &UpstreamCall<'_>) -> HeaderMap {
    let deployment = call.deployment;
    let mut headers = HeaderMap::with_capacity(6 + deployment.headers.len());
    headers.insert(
        reqwest::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = HeaderValue::from_str(call.request_id) {
        headers.insert("x-request-id", id);
    }
    if let Some(key) = deployment.api_key.as_deref() {
        let auth = match deployment.provider.dialect {
            Dialect::Anthropic => ("x-api-key", key.to_string()),
            Dialect::Azure => ("api-key", key.to_string()),
            Dialect::Gemini => ("x-goog-api-key", key.to_string()),
            Dialect::OpenAi | Dialect::Bedrock => ("authorization", format!("Bearer {key}")),
        };
        if let Ok(mut value) = HeaderValue::from_str(&auth.1) {
            value.set_sensitive(true);
            headers.insert(auth.0, value);
        }
    }
    if deployment.provider.dialect == Dialect::Anthropic {
        headers.insert(
            "anthropic-version",
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }
    for (name, value) in &call.forward_headers {
        headers.insert(name.clone(), value.clone());
    }
    for (name, value) in &deployment.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    headers
}
