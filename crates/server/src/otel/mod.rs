//! OpenTelemetry traces, exported as OTLP over HTTP/protobuf, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES__ENDPOINT`, or LiteLLM's `OTEL_ENDPOINT`)
//! is set or `litellm_settings.callbacks` lists `otel`.
//!
//! Spans, with the GenAI semantic conventions: one per request (`spend::RequestRecord`
//! owns it: it ends when the answer is over, streams included), one per upstream attempt
//! (`pipeline::attempts`), one per tool execution and one per MCP request under it
//! (`tools::execute`). A client's W3C `traceparent` is the request span's parent (the
//! [`inbound`] middleware reads it); each attempt's context goes upstream as
//! `traceparent`, each MCP call's in `params._meta.traceparent`.
//!
//! Spans queue (bounded; dropped and counted when full) for one exporter task that posts
//! them in batches; the request path never waits on the collector.

mod context;
mod proto;
mod span;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use context::TraceContext;
pub use span::{Attr, Kind, Span, SpanData};

const QUEUE: usize = 8192;
const BATCH: usize = 512;
const LINGER: Duration = Duration::from_millis(200);
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Tracer {
    tx: mpsc::Sender<SpanData>,
    rx: Mutex<Option<mpsc::Receiver<SpanData>>>,
    endpoint: String,
    headers: Vec<(String, String)>,
    resource: Vec<(String, Attr)>,
    down: AtomicBool,
}

/// Where traces go, from the environment (`env`) and whether the config asks for them.
pub fn endpoint(env: &dyn Fn(&str) -> Option<String>, callback: bool) -> Option<String> {
    let get = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if let Some(url) = get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return Some(url);
    }
    if let Some(base) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        return Some(format!("{}/v1/traces", base.trim_end_matches('/')));
    }
    if let Some(url) = get("OTEL_ENDPOINT") {
        return Some(url);
    }
    callback.then(|| "http://localhost:4318/v1/traces".to_owned())
}

/// `k=v,k2=v2` lists (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_RESOURCE_ATTRIBUTES`).
fn pairs(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Tracer {
    /// The tracer the environment and config ask for; `None` when tracing is off.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>, callback: bool) -> Option<Tracer> {
        let endpoint = endpoint(env, callback)?;
        if let Some(p) = env("OTEL_EXPORTER_OTLP_PROTOCOL").filter(|p| p != "http/protobuf") {
            tracing::warn!(protocol = %p, "OTEL_EXPORTER_OTLP_PROTOCOL: only http/protobuf is supported; exporting with it");
        }
        let headers = env("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .or_else(|| env("OTEL_EXPORTER_OTLP_HEADERS"))
            .or_else(|| env("OTEL_HEADERS"))
            .map(|h| pairs(&h))
            .unwrap_or_default();
        let mut resource: Vec<(String, Attr)> = env("OTEL_RESOURCE_ATTRIBUTES")
            .map(|a| pairs(&a))
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, Attr::Str(v)))
            .collect();
        let service = env("OTEL_SERVICE_NAME").unwrap_or_else(|| "gatehouse".into());
        resource.retain(|(k, _)| k != "service.name");
        resource.push(("service.name".into(), Attr::Str(service)));
        resource.push((
            "service.version".into(),
            Attr::Str(env!("CARGO_PKG_VERSION").into()),
        ));
        let (tx, rx) = mpsc::channel(QUEUE);
        Some(Tracer {
            tx,
            rx: Mutex::new(Some(rx)),
            endpoint,
            headers,
            resource,
            down: AtomicBool::new(false),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn emit(&self, span: SpanData) {
        if self.tx.try_send(span).is_err() {
            metrics::counter!("gatehouse_otel_spans_dropped_total").increment(1);
        }
    }

    /// Starts the exporter, owned by the returned handle. `None` when it was already
    /// started.
    pub fn spawn_exporter(self: &std::sync::Arc<Self>, http: reqwest::Client) -> Option<Exporter> {
        let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        let tracer = self.clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let stop = stopped;
            loop {
                let first = tokio::select! {
                    span = rx.recv() => span,
                    () = stop.cancelled() => None,
                };
                let Some(first) = first else { break };
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + LINGER;
                while batch.len() < BATCH {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(span)) => batch.push(span),
                        _ => break,
                    }
                }
                tracer.export(&http, &batch).await;
            }
            let mut rest = Vec::new();
            while let Ok(span) = rx.try_recv() {
                rest.push(span);
            }
            for chunk in rest.chunks(BATCH) {
                tracer.export(&http, chunk).await;
            }
        });
        Some(Exporter { task, stop })
    }

    async fn export(&self, http: &reqwest::Client, spans: &[SpanData]) {
        let body = proto::export_request(&self.resource, spans);
        let mut request = http
            .post(&self.endpoint)
            .header("content-type", "application/x-protobuf")
            .timeout(EXPORT_TIMEOUT)
            .body(body);
        for (k, v) in &self.headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let outcome = match request.send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("the collector answered {}", r.status())),
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(()) => {
                metrics::counter!("gatehouse_otel_spans_exported_total")
                    .increment(spans.len() as u64);
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!(endpoint = %self.endpoint, "OTLP trace export works again");
                }
            }
            Err(error) => {
                metrics::counter!("gatehouse_otel_spans_dropped_total")
                    .increment(spans.len() as u64);
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(endpoint = %self.endpoint, %error, "OTLP trace export failed; spans are dropped until it works");
                }
            }
        }
    }
}

/// The running exporter task.
pub struct Exporter {
    task: tokio::task::JoinHandle<()>,
    stop: CancellationToken,
}

impl Exporter {
    /// Sends what is queued (waiting at most 3 s) and ends the task.
    pub async fn stop(self) {
        self.stop.cancel();
        let abort = self.task.abort_handle();
        if tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .is_err()
        {
            abort.abort();
            tracing::warn!("OTLP exporter did not finish in 3 s; the last spans are lost");
        }
    }
}

/// What the middleware learnt about the inbound request, for the request span.
#[derive(Debug, Clone, Copy)]
pub struct Inbound {
    pub parent: Option<TraceContext>,
    /// `gen_ai.operation.name`: `chat` or `embeddings`.
    pub operation: &'static str,
}

tokio::task_local! {
    static INBOUND: Inbound;
}

/// The inbound request's trace context, when tracing is on and a handler runs under
/// [`inbound`].
pub fn current_inbound() -> Option<Inbound> {
    INBOUND.try_with(|i| *i).ok()
}

/// Middleware: reads the client's `traceparent` for the handler's spans.
pub async fn inbound(
    State(state): State<std::sync::Arc<crate::state::AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if state.tracer.is_none() {
        return next.run(req).await;
    }
    let parent = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse);
    let operation = if req.uri().path().ends_with("/embeddings") {
        "embeddings"
    } else {
        "chat"
    };
    INBOUND
        .scope(Inbound { parent, operation }, next.run(req))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_otel_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            endpoint(
                &env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/")]),
                false
            )
            .as_deref(),
            Some("http://c:4318/v1/traces")
        );
        assert_eq!(
            endpoint(
                &env(&[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t/x")
                ]),
                false
            )
            .as_deref(),
            Some("http://t/x")
        );
        assert_eq!(endpoint(&env(&[]), false), None);
        assert_eq!(
            endpoint(&env(&[]), true).as_deref(),
            Some("http://localhost:4318/v1/traces")
        );
        assert_eq!(
            pairs("a=1, b = x%20y,bad"),
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "x y".to_owned())
            ]
        );
    }
}
