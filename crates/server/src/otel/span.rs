//! One span: started when made, sent to the exporter when ended or dropped (a span is
//! never lost because a future was cancelled).

use std::sync::Arc;

use super::Tracer;
use super::context::TraceContext;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal,
    Server,
    Client,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    Str(String),
    Int(i64),
    F64(f64),
    Bool(bool),
    StrList(Vec<String>),
}

impl From<&str> for Attr {
    fn from(s: &str) -> Self {
        Attr::Str(s.to_owned())
    }
}

impl From<String> for Attr {
    fn from(s: String) -> Self {
        Attr::Str(s)
    }
}

impl From<u64> for Attr {
    fn from(n: u64) -> Self {
        Attr::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<bool> for Attr {
    fn from(b: bool) -> Self {
        Attr::Bool(b)
    }
}

#[derive(Debug, Clone)]
pub struct SpanData {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent: Option<[u8; 8]>,
    pub name: String,
    pub kind: Kind,
    pub start_ns: u64,
    pub end_ns: u64,
    pub attrs: Vec<(&'static str, Attr)>,
    /// Set: the span's status is ERROR with this description.
    pub error: Option<String>,
}

pub struct Span {
    tracer: Arc<Tracer>,
    data: Option<SpanData>,
}

pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Span {
    /// A span under `parent` (same trace), or the root of a new trace.
    pub fn start(
        tracer: Arc<Tracer>,
        parent: Option<TraceContext>,
        name: String,
        kind: Kind,
    ) -> Span {
        let trace_id = parent.map_or_else(rand::random::<[u8; 16]>, |p| p.trace_id);
        let mut span_id = rand::random::<[u8; 8]>();
        if span_id == [0; 8] {
            span_id[0] = 1;
        }
        Span {
            tracer,
            data: Some(SpanData {
                trace_id,
                span_id,
                parent: parent.map(|p| p.span_id),
                name,
                kind,
                start_ns: now_ns(),
                end_ns: 0,
                attrs: Vec::new(),
                error: None,
            }),
        }
    }

    /// A span under this one.
    pub fn child(&self, name: String, kind: Kind) -> Span {
        Span::start(self.tracer.clone(), self.context(), name, kind)
    }

    /// This span as the parent of what it calls.
    pub fn context(&self) -> Option<TraceContext> {
        let d = self.data.as_ref()?;
        Some(TraceContext {
            trace_id: d.trace_id,
            span_id: d.span_id,
            sampled: true,
        })
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<Attr>) {
        if let Some(d) = &mut self.data {
            let value = value.into();
            match d.attrs.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => d.attrs.push((key, value)),
            }
        }
    }

    pub fn fail(&mut self, kind: &str, message: impl Into<String>) {
        self.set("error.type", kind);
        if let Some(d) = &mut self.data {
            d.error = Some(message.into());
        }
    }

    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(mut d) = self.data.take() {
            d.end_ns = now_ns();
            self.tracer.emit(d);
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        self.finish();
    }
}
