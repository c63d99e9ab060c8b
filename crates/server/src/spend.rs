//! Per-request accounting: tokens, cost, deployment, MCP calls — written as one spend
//! row when the request is over, off the request path (the store's batched writer).
//!
//! The record travels with the request as a task-local, so the layers that learn a piece
//! (the provider that read `usage`, the stream that saw the last chunk, the tool loop)
//! add it without every signature carrying it. A stream keeps a clone until its last
//! chunk; the row is written when the last clone is dropped — for a stream, when the
//! client got everything or went away.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;

use crate::cost;
use crate::deployments::Deployment;
use crate::state::AppState;

tokio::task_local! {
    static CURRENT: Arc<RequestRecord>;
}

#[derive(Default)]
struct Tally {
    deployment: Option<Arc<Deployment>>,
    /// The router's hold on the deployment that answered (in-flight slot, tpm window).
    served: Option<gatehouse_router::Served<Deployment>>,
    usage: cost::Usage,
    status: Option<String>,
    mcp_calls: Option<Value>,
    cache_hit: bool,
    /// The request's span (tracing on), ended with the record.
    span: Option<crate::otel::Span>,
    /// The current upstream attempt's span context, sent upstream as `traceparent`.
    upstream_trace: Option<crate::otel::TraceContext>,
}

pub struct RequestRecord {
    state: Arc<AppState>,
    request_id: String,
    key_hash: String,
    model: String,
    started: Instant,
    tally: Mutex<Tally>,
    /// The key's limits and its admission: the parallel slot is held until the
    /// record (and so the response or stream) is gone; tokens are counted then.
    limits: crate::limits::KeyLimits,
    _permit: Option<crate::limits::Permit>,
}

impl RequestRecord {
    pub fn new(state: Arc<AppState>, request_id: &str, key_hash: String, model: &str) -> Arc<Self> {
        Self::with_limits(state, request_id, key_hash, model, Default::default(), None)
    }

    fn with_limits(
        state: Arc<AppState>,
        request_id: &str,
        key_hash: String,
        model: &str,
        limits: crate::limits::KeyLimits,
        permit: Option<crate::limits::Permit>,
    ) -> Arc<Self> {
        let mut tally = Tally::default();
        if let Some(tracer) = &state.tracer {
            let inbound = crate::otel::current_inbound();
            let operation = inbound.map_or("chat", |i| i.operation);
            let mut span = crate::otel::Span::start(
                tracer.clone(),
                inbound.and_then(|i| i.parent),
                format!("{operation} {model}"),
                crate::otel::Kind::Server,
            );
            span.set("gen_ai.operation.name", operation);
            span.set("gen_ai.request.model", model);
            span.set("gatehouse.request_id", request_id);
            tally.span = Some(span);
        }
        Arc::new(Self {
            state,
            request_id: request_id.to_owned(),
            key_hash,
            model: model.to_owned(),
            started: Instant::now(),
            tally: Mutex::new(tally),
            limits,
            _permit: permit,
        })
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_deployment(&self, deployment: &Arc<Deployment>) {
        self.tally().deployment = Some(deployment.clone());
    }

    /// The router's hold on the deployment that answered: kept until the answer is over,
    /// then told the tokens used. A tool loop's later rounds replace earlier ones.
    pub fn set_served(&self, served: gatehouse_router::Served<Deployment>) {
        let mut t = self.tally();
        let tokens = t.usage.prompt + t.usage.completion;
        if let Some(previous) = t.served.replace(served) {
            previous.record_tokens(tokens);
        }
    }

    /// The answer failed after it started (a stream cut or broken mid-way): the deployment
    /// that served it is charged with the failure (cooldowns), and the row says so.
    pub fn stream_failed(&self, err: &crate::error::ApiError) {
        let mut t = self.tally();
        if let (Some(served), Some(failure)) = (&t.served, err.failure()) {
            served.failed(failure);
        }
        t.status = Some(format!("error:{}", err.kind()));
    }

    /// Adds one model call's usage (a tool loop makes several).
    pub fn add_usage(&self, usage: cost::Usage) {
        self.tally().usage.add(usage);
    }

    pub fn set_status(&self, status: impl Into<String>) {
        self.tally().status = Some(status.into());
    }

    pub fn set_mcp_calls(&self, calls: Value) {
        self.tally().mcp_calls = Some(calls);
    }

    /// The MCP tool calls made so far, as `(server, tool)` pairs.
    pub fn mcp_tools(&self) -> Vec<(String, String)> {
        let t = self.tally();
        let Some(Value::Array(calls)) = &t.mcp_calls else {
            return Vec::new();
        };
        let field = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        calls
            .iter()
            .map(|c| (field(c, "server"), field(c, "tool")))
            .collect()
    }

    /// Whether the answer failed (a status other than success was set).
    pub fn failed(&self) -> bool {
        self.tally()
            .status
            .as_deref()
            .is_some_and(|s| s != "success")
    }

    /// A span under the request's (tracing on), e.g. an attempt or a tool call.
    pub fn child_span(&self, name: String, kind: crate::otel::Kind) -> Option<crate::otel::Span> {
        let parent = self.tally().span.as_ref()?.context();
        let tracer = self.state.tracer.clone()?;
        Some(crate::otel::Span::start(tracer, parent, name, kind))
    }

    /// The span context upstream calls carry from now on (the current attempt's).
    pub fn set_upstream_trace(&self, context: Option<crate::otel::TraceContext>) {
        self.tally().upstream_trace = context;
    }

    /// `traceparent` for an upstream call: the current attempt's span.
    pub fn upstream_traceparent(&self) -> Option<String> {
        self.tally().upstream_trace.map(|c| c.header())
    }

    /// The answer came from the response cache: no deployment, no usage, $0.
    pub fn set_cache_hit(&self) {
        self.tally().cache_hit = true;
    }

    /// Records one MCP tool execution in the audit log (sizes, not contents).
    pub fn audit(
        &self,
        server: &str,
        tool: &str,
        duration_ms: u64,
        outcome: &str,
        args_size: u64,
        result_size: u64,
    ) {
        write_audit(
            &self.state,
            gatehouse_store::AuditRow {
                key_hash: self.key_hash.clone(),
                request_id: Some(self.request_id.clone()),
                server: server.to_owned(),
                tool: tool.to_owned(),
                duration_ms,
                outcome: outcome.to_owned(),
                args_size,
                result_size,
                created_at: chrono::Utc::now(),
            },
        );
    }

    /// The cost so far, for the `x-litellm-response-cost` header.
    pub fn cost(&self) -> f64 {
        let t = self.tally();
        t.deployment
            .as_ref()
            .and_then(|d| d.price)
            .map(|p| cost::cost(&p, &t.usage))
            .unwrap_or(0.0)
    }
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        {
            let mut t = self.tally();
            if let Some(served) = t.served.take() {
                served.record_tokens(t.usage.prompt + t.usage.completion);
            }
            if let Some(mut span) = t.span.take() {
                span.set("gen_ai.usage.input_tokens", t.usage.prompt);
                span.set("gen_ai.usage.output_tokens", t.usage.completion);
                span.set("gatehouse.cache_hit", t.cache_hit);
                if let Some(d) = &t.deployment {
                    span.set("gen_ai.system", d.provider.name);
                    span.set("gen_ai.response.model", d.upstream_model.clone());
                    span.set("gatehouse.deployment.id", d.id.clone());
                }
                if let Some(status) = t.status.as_deref().filter(|s| *s != "success") {
                    span.fail(status.trim_start_matches("error:"), status);
                }
                span.end();
            }
        }
        if !self.limits.is_unlimited() {
            let t = self.tally();
            let tokens = t.usage.prompt + t.usage.completion;
            drop(t);
            self.state
                .limiter
                .record_tokens(&self.key_hash, &self.limits, tokens);
        }
        let Some(persistence) = &self.state.persistence else {
            return;
        };
        // The row carries the cost to the key's stored spend (and, unless
        // `disable_spend_logs`, to the log); the writer adds it to the cached key at once,
        // so the budget holds here before the batch is written.
        let cost = self.cost();
        let t = self.tally();
        let row = gatehouse_store::SpendRow {
            request_id: self.request_id.clone(),
            key_hash: self.key_hash.clone(),
            model: self.model.clone(),
            deployment: t.deployment.as_ref().map(|d| d.id.clone()),
            prompt_tokens: t.usage.prompt,
            completion_tokens: t.usage.completion,
            cost,
            latency_ms: self.started.elapsed().as_millis() as u64,
            status: t.status.clone().unwrap_or_else(|| "success".into()),
            mcp_calls: t.mcp_calls.clone().unwrap_or(Value::Null),
            cache_hit: t.cache_hit,
            created_at: chrono::Utc::now(),
        };
        if !persistence.spend.try_log(row) {
            metrics::counter!("gatehouse_spend_dropped_total").increment(1);
        }
    }
}

/// Queues one audit row (MCP tool executions) off the request path.
pub fn write_audit(state: &AppState, row: gatehouse_store::AuditRow) {
    let Some(persistence) = &state.persistence else {
        return;
    };
    if !persistence.spend.try_audit(row) {
        metrics::counter!("gatehouse_audit_dropped_total").increment(1);
    }
}

/// Runs `f` with the current request's record, if there is one.
pub fn with(f: impl FnOnce(&RequestRecord)) {
    let _ = CURRENT.try_with(|r| f(r));
}

/// The current request's record, for a stream or task that outlives the handler.
pub fn current() -> Option<Arc<RequestRecord>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Runs a handler's future with `record` as the current request's record.
pub async fn scope<F: std::future::Future>(record: Arc<RequestRecord>, f: F) -> F::Output {
    CURRENT.scope(record, f).await
}

/// Reads `usage` from OpenAI-style SSE bytes as they pass, lines split across chunks
/// included (only the unfinished last line is kept, bounded).
#[derive(Default)]
pub struct UsageScanner {
    partial: Vec<u8>,
}

const MAX_LINE: usize = 1 << 20;

impl UsageScanner {
    pub fn scan(&mut self, chunk: &[u8]) -> Option<cost::Usage> {
        let mut found = None;
        let mut rest = chunk;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let line = &rest[..end];
            if self.partial.is_empty() {
                found = usage_of_line(line).or(found);
            } else {
                self.partial.extend_from_slice(line);
                let whole = std::mem::take(&mut self.partial);
                found = usage_of_line(&whole).or(found);
            }
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() && self.partial.len() + rest.len() <= MAX_LINE {
            self.partial.extend_from_slice(rest);
        }
        found
    }
}

fn usage_of_line(line: &[u8]) -> Option<cost::Usage> {
    let data = line.strip_prefix(b"data:")?;
    // Cheap pre-check: most chunks carry no usage (or `"usage":null`).
    if memchr::memmem::find(data, b"\"usage\":{").is_none()
        && memchr::memmem::find(data, b"\"usage\": {").is_none()
    {
        return None;
    }
    // Only the four numbers billing needs are read; the rest of the chunk (and of
    // `usage`) is skipped without building a `Value` tree (callgrind: the tree cost
    // about 40k instructions per streamed request). Fields keep `Usage::from_value`'s
    // leniency: anything but an unsigned integer counts as 0.
    #[derive(serde::Deserialize)]
    struct Chunk {
        usage: Option<WireUsage>,
    }
    #[derive(serde::Deserialize)]
    struct WireUsage {
        prompt_tokens: Option<Value>,
        completion_tokens: Option<Value>,
        prompt_tokens_details: Option<Value>,
        cache_creation_input_tokens: Option<Value>,
    }
    let n = |v: &Option<Value>| v.as_ref().and_then(Value::as_u64).unwrap_or(0);
    let usage = serde_json::from_slice::<Chunk>(data).ok()?.usage?;
    Some(cost::Usage {
        prompt: n(&usage.prompt_tokens),
        completion: n(&usage.completion_tokens),
        cached_read: usage
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.get("cached_tokens"))
            .and_then(Value::as_u64)
            .unwrap_or(0),
        cache_write: n(&usage.cache_creation_input_tokens),
    })
}

/// Runs a model request under the key's limits and with a spend record: refused with 429
/// (LiteLLM's `x-ratelimit-*` headers, `retry-after`) past an rpm/tpm/parallel limit; the
/// row is written when the response (its stream, for SSE) is over; a JSON answer carries
/// its cost in `x-litellm-response-cost`.
pub async fn account<F>(
    state: &Arc<AppState>,
    caller: &crate::auth::Caller,
    request_id: &str,
    model: &str,
    handler: F,
) -> Result<axum::response::Response, crate::error::ApiError>
where
    F: std::future::Future<Output = Result<axum::response::Response, crate::error::ApiError>>,
{
    let key = caller
        .key
        .as_ref()
        .map(|k| k.token_hash.clone())
        .unwrap_or_else(|| caller.key_id.clone());
    let limits = caller
        .key
        .as_ref()
        .map(|k| crate::limits::KeyLimits {
            rpm: k.rpm_limit,
            tpm: k.tpm_limit,
            max_parallel: k.max_parallel_requests,
        })
        .unwrap_or_default();
    let permit = if limits.is_unlimited() {
        None
    } else {
        match state.limiter.admit(&key, &limits).await {
            Ok(permit) => Some(permit),
            Err(refusal) => {
                let mut headers = axum::http::HeaderMap::new();
                crate::limits::refusal_headers(&mut headers, &refusal);
                return Err(crate::error::ApiError::OverKeyLimit {
                    message: refusal.to_string(),
                    headers: Box::new(headers),
                });
            }
        }
    };
    let mut rate_headers = axum::http::HeaderMap::new();
    if let Some(p) = &permit {
        crate::limits::headers(&mut rate_headers, p.status());
    }
    let record = RequestRecord::with_limits(state.clone(), request_id, key, model, limits, permit);
    let mut result = scope(record.clone(), handler).await;
    match &mut result {
        Ok(response) => {
            response.headers_mut().extend(rate_headers);
            let streaming = response
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
            if !streaming
                && let Ok(v) = axum::http::HeaderValue::from_str(&format!("{:.10}", record.cost()))
            {
                response.headers_mut().insert("x-litellm-response-cost", v);
            }
        }
        Err(e) => record.set_status(format!("error:{}", e.kind())),
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_usage_across_chunk_boundaries() {
        let mut s = UsageScanner::default();
        assert!(
            s.scan(b"data: {\"choices\":[],\"usage\":null}\n\ndata: {\"choices\":[],\"us")
                .is_none()
        );
        let u = s
            .scan(b"age\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n")
            .unwrap();
        assert_eq!((u.prompt, u.completion), (7, 3));
    }

    #[test]
    fn reads_cached_and_cache_write_tokens_and_ignores_odd_values() {
        let mut s = UsageScanner::default();
        let u = s
            .scan(
                b"data: {\"id\":\"x\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\
                  \"completion_tokens\":\"many\",\"prompt_tokens_details\":{\"cached_tokens\":4},\
                  \"cache_creation_input_tokens\":2}}\n\n",
            )
            .unwrap();
        assert_eq!(
            (u.prompt, u.completion, u.cached_read, u.cache_write),
            (10, 0, 4, 2)
        );
        // An empty `usage` counts as zeros; a line that is not JSON counts as none.
        assert!(s.scan(b"data: {\"usage\": {}}\n\n").is_some());
        assert!(
            s.scan(b"data: {\"usage\":{\"prompt_tokens\":1}\n\n")
                .is_none()
        );
    }
}
