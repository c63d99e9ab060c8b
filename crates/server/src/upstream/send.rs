//! Sending one request to one deployment: timeouts, retries on transient failures
//! (honouring `Retry-After`), and mapping transport failures to [`ApiError`].

use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse_config::Dialect;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::deployments::Deployment;
use crate::error::ApiError;

/// `Retry-After` values are clamped to a day (the router decides whether to wait).
const MAX_RETRY_AFTER_SECS: f64 = 86_400.0;
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

/// Sends `call` once. Returns the upstream response once its status is a success; an
/// error status becomes [`ApiError::Upstream`] with the upstream body, its kind (as an
/// OpenAI-compatible upstream means it; vendor adapters refine it) and its `Retry-After`.
/// Retries and fall-over are the router's (`pipeline::attempts`), not this function's.
pub async fn send(
    http: &reqwest::Client,
    call: &UpstreamCall<'_>,
) -> Result<reqwest::Response, ApiError> {
    let started = Instant::now();
    let result = send_once(http, call).await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    };
    metrics::histogram!("gatehouse_upstream_seconds", "provider" => call.deployment.provider.name, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}

/// Parsed upstream URLs of one deployment, keyed by their text: parsing the URL on every
/// request was about 3 % of a request's instructions (callgrind). A deployment calls a
/// handful of URLs; past [`URL_CACHE_MAX`] new ones are parsed each time, not kept.
#[derive(Debug, Default)]
pub struct UrlCache(std::sync::Mutex<Vec<(String, reqwest::Url)>>);

const URL_CACHE_MAX: usize = 8;

impl Clone for UrlCache {
    /// A copy starts empty (a clone may get another `api_base`).
    fn clone(&self) -> Self {
        UrlCache::default()
    }
}

impl UrlCache {
    fn get(&self, text: String) -> Result<reqwest::Url, ApiError> {
        let lock = || self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, url)) = lock().iter().find(|(t, _)| *t == text) {
            return Ok(url.clone());
        }
        let url = reqwest::Url::parse(&text).map_err(|e| {
            ApiError::UpstreamUnreachable(format!("invalid upstream URL {text}: {e}"))
        })?;
        let mut cached = lock();
        if cached.len() < URL_CACHE_MAX && !cached.iter().any(|(t, _)| *t == text) {
            cached.push((text, url.clone()));
        }
        Ok(url)
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from LLM vendors and ignored),
/// clamped: a hostile `1e300` must not overflow a `Duration`.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(MAX_RETRY_AFTER_SECS)))
}

async fn send_once(
    http: &reqwest::Client,
    call: &UpstreamCall<'_>,
) -> Result<reqwest::Response, ApiError> {
    let deployment = call.deployment;
    // An absolute `path` is the whole URL: Bedrock derives its endpoint per request
    // (region from the deployment's AWS settings) and signs exactly that URL.
    let url = if call.path.starts_with("https://") || call.path.starts_with("http://") {
        deployment.urls.get(call.path.to_string())?
    } else {
        deployment
            .urls
            .get(format!("{}{}", deployment.api_base, call.path))?
    };
    let mut builder = http
        .post(url)
        .headers(upstream_headers(call))
        .body(call.body.clone());
    // Tracing on: the upstream sees this attempt's span as its parent.
    let mut traceparent = None;
    crate::spend::with(|r| traceparent = r.upstream_traceparent());
    if let Some(tp) = traceparent {
        builder = builder.header("traceparent", tp);
    }
    let wait = if call.stream {
        deployment.stream_timeout.unwrap_or(deployment.timeout)
    } else {
        // The whole exchange, body included, must finish in time.
        builder = builder.timeout(deployment.timeout);
        deployment.timeout
    };
    let response = match tokio::time::timeout(wait, builder.send()).await {
        Err(_) => return Err(ApiError::UpstreamTimeout(wait.as_secs_f64())),
        Ok(Err(e)) if e.is_timeout() => {
            return Err(ApiError::UpstreamTimeout(wait.as_secs_f64()));
        }
        Ok(Err(e)) => return Err(ApiError::UpstreamUnreachable(describe(&e))),
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let error_type = aws_error_type(deployment, response.headers());
    let mut body = read_error_body(response).await;
    if let Some(error_type) = error_type {
        body = with_aws_error_type(body, &error_type);
    }
    let status = axum::http::StatusCode::from_u16(status.as_u16())
        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY);
    let mut err = ApiError::upstream(status, body);
    if let ApiError::Upstream { retry_after: r, .. } = &mut err {
        *r = retry_after;
    }
    Err(err)
}

/// The largest whole (non-streamed) answer read from an upstream. Upstreams are
/// untrusted: without a bound one endless body would hold the gateway's memory.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Reads a successful upstream answer whole, up to [`MAX_ANSWER_BYTES`] (a larger one is
/// the upstream's failure, 502).
pub async fn read_answer(response: reqwest::Response) -> Result<Bytes, ApiError> {
    use futures_util::StreamExt;
    let too_large = || {
        ApiError::UpstreamUnreachable(format!(
            "the upstream's answer is larger than {} MiB",
            MAX_ANSWER_BYTES / (1024 * 1024)
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut out = bytes::BytesMut::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::UpstreamUnreachable(format!("reading the upstream body failed: {e}"))
        })?;
        if out.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// An error body is kept for the client and the classifier, up to 64 KiB: an upstream
/// answering an endless error page must not hold the gateway's memory.
async fn read_error_body(response: reqwest::Response) -> Bytes {
    use futures_util::StreamExt;
    const LIMIT: usize = 64 * 1024;
    let mut out = bytes::BytesMut::new();
    let mut chunks = response.bytes_stream();
    while let Some(Ok(chunk)) = chunks.next().await {
        let room = LIMIT - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= LIMIT {
            break;
        }
    }
    out.freeze()
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
