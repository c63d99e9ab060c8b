//! One cached answer: the bytes the client got (a JSON body, or a whole SSE stream that
//! finished cleanly), and when it was stored. Encoded flat for Redis: version, stream
//! flag, store time (ms since the epoch, big-endian), then the body.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub stream: bool,
    pub stored_ms: u64,
    pub body: Bytes,
}

const VERSION: u8 = 1;
const HEAD: usize = 10;

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD + self.body.len());
        out.push(VERSION);
        out.push(u8::from(self.stream));
        out.extend_from_slice(&self.stored_ms.to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// `None` for bytes another version (or something else) wrote: a miss, not an error.
    pub fn decode(raw: Bytes) -> Option<Entry> {
        if raw.len() < HEAD || raw[0] != VERSION || raw[1] > 1 {
            return None;
        }
        let mut ms = [0u8; 8];
        ms.copy_from_slice(&raw[2..HEAD]);
        Some(Entry {
            stream: raw[1] == 1,
            stored_ms: u64::from_be_bytes(ms),
            body: raw.slice(HEAD..),
        })
    }

    /// Bytes it occupies in memory, for the local cache's bound.
    pub fn weight(&self) -> usize {
        self.body.len() + 64
    }

    /// The answer as the client gets it on a hit, with `x-litellm-cache-key`.
    pub fn response(&self, key: &str) -> Response {
        let mut response = if self.stream {
            crate::dialects::sse::response(Body::from(self.body.clone()))
        } else {
            let mut r = (StatusCode::OK, Body::from(self.body.clone())).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        };
        if let Ok(v) = HeaderValue::from_str(key) {
            response.headers_mut().insert("x-litellm-cache-key", v);
        }
        response
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_foreign_bytes() {
        let e = Entry {
            stream: true,
            stored_ms: 1_700_000_000_123,
            body: Bytes::from_static(b"data: [DONE]\n\n"),
        };
        assert_eq!(Entry::decode(Bytes::from(e.encode())), Some(e));
        assert_eq!(Entry::decode(Bytes::from_static(b"{\"a\":1}")), None);
        assert_eq!(Entry::decode(Bytes::new()), None);
    }
}
