//! OTLP/HTTP's protobuf body for traces (`ExportTraceServiceRequest`, opentelemetry-proto
//! `trace/v1`), written by hand: the handful of messages a span needs, so tracing costs
//! no code generator and no protobuf runtime in the build. Field numbers are the spec's.

use super::span::{Attr, Kind, SpanData};

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    tag(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn string(out: &mut Vec<u8>, field: u32, s: &str) {
    bytes(out, field, s.as_bytes());
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A nested message: written into a scratch buffer, then length-prefixed.
fn message(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    write(&mut inner);
    bytes(out, field, &inner);
}

/// `AnyValue`: string 1, bool 2, int 3, double 4, array 5.
fn any_value(out: &mut Vec<u8>, v: &Attr) {
    match v {
        Attr::Str(s) => string(out, 1, s),
        Attr::Bool(b) => {
            tag(out, 2, 0);
            varint(out, u64::from(*b));
        }
        Attr::Int(i) => {
            tag(out, 3, 0);
            varint(out, *i as u64);
        }
        Attr::F64(f) => fixed64(out, 4, f.to_bits()),
        Attr::StrList(items) => message(out, 5, |arr| {
            // ArrayValue { repeated AnyValue values = 1; }
            for item in items {
                message(arr, 1, |a| string(a, 1, item));
            }
        }),
    }
}

/// `KeyValue { string key = 1; AnyValue value = 2; }`.
fn key_value(out: &mut Vec<u8>, field: u32, key: &str, v: &Attr) {
    message(out, field, |kv| {
        string(kv, 1, key);
        message(kv, 2, |a| any_value(a, v));
    });
}

fn span(out: &mut Vec<u8>, s: &SpanData) {
    bytes(out, 1, &s.trace_id);
    bytes(out, 2, &s.span_id);
    if let Some(parent) = &s.parent {
        bytes(out, 4, parent);
    }
    string(out, 5, &s.name);
    tag(out, 6, 0);
    varint(
        out,
        match s.kind {
            Kind::Internal => 1,
            Kind::Server => 2,
            Kind::Client => 3,
        },
    );
    fixed64(out, 7, s.start_ns);
    fixed64(out, 8, s.end_ns.max(s.start_ns));
    for (k, v) in &s.attrs {
        key_value(out, 9, k, v);
    }
    // Status { string message = 2; StatusCode code = 3; } — ERROR is 2, UNSET 0.
    if let Some(error) = &s.error {
        message(out, 15, |st| {
            string(st, 2, error);
            tag(st, 3, 0);
            varint(st, 2);
        });
    }
}

/// One request body for `spans`, under one resource (`service.name`, ...) and scope.
pub fn export_request(resource: &[(String, Attr)], spans: &[SpanData]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 * spans.len() + 128);
    // ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
    message(&mut out, 1, |rs| {
        // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
        message(rs, 1, |r| {
            for (k, v) in resource {
                key_value(r, 1, k, v);
            }
        });
        message(rs, 2, |ss| {
            // ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
            message(ss, 1, |scope| {
                string(scope, 1, "gatehouse");
                string(scope, 2, env!("CARGO_PKG_VERSION"));
            });
            for s in spans {
                message(ss, 2, |b| span(b, s));
            }
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_little_endian_groups_of_seven() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        out.clear();
        varint(&mut out, (-1i64) as u64);
        assert_eq!(out.len(), 10);
    }

    #[test]
    fn a_span_starts_with_its_ids() {
        let s = SpanData {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent: None,
            name: "chat m".into(),
            kind: Kind::Server,
            start_ns: 5,
            end_ns: 6,
            attrs: vec![("k", Attr::Int(3))],
            error: None,
        };
        let mut out = Vec::new();
        span(&mut out, &s);
        assert_eq!(&out[..2], &[0x0a, 16]);
        assert_eq!(&out[2..18], &[1; 16]);
        assert_eq!(&out[18..20], &[0x12, 8]);
    }
}
