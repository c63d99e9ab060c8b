//! Token usage of answers passed through in a vendor's own shape (Anthropic Messages,
//! OpenAI Responses), for the request's spend record. Translated answers are counted by
//! the provider adapters and [`super::chunks`].

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use gatehouse_llm::sse;
use serde_json::Value;

use crate::cost;
use crate::spend::{self, RequestRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `usage: {input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens}`.
    Anthropic,
    /// `usage: {input_tokens, output_tokens, input_tokens_details: {cached_tokens}}`.
    Responses,
}

/// Usage counters as far as they are known; Anthropic streams report input tokens at the
/// start and output tokens (cumulative) at the end.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    seen: bool,
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
}

impl Counts {
    fn merge(&mut self, shape: Shape, usage: &Value) {
        if !usage.is_object() {
            return;
        }
        self.seen = true;
        let set = |field: &mut u64, pointer: &str| {
            if let Some(n) = usage.pointer(pointer).and_then(Value::as_u64) {
                *field = n;
            }
        };
        set(&mut self.input, "/input_tokens");
        set(&mut self.output, "/output_tokens");
        match shape {
            Shape::Anthropic => {
                set(&mut self.cache_read, "/cache_read_input_tokens");
                set(&mut self.cache_write, "/cache_creation_input_tokens");
            }
            Shape::Responses => set(&mut self.cache_read, "/input_tokens_details/cached_tokens"),
        }
    }

    fn usage(&self, shape: Shape) -> Option<cost::Usage> {
        if !self.seen {
            return None;
        }
        Some(match shape {
            Shape::Anthropic => {
                cost::Usage::anthropic(self.input, self.output, self.cache_read, self.cache_write)
            }
            // Responses' input_tokens already include the cached ones.
            Shape::Responses => cost::Usage {
                prompt: self.input,
                completion: self.output,
                cached_read: self.cache_read,
                cache_write: 0,
            },
        })
    }
}

/// Records the usage of a whole (non-stream) answer body.
pub fn record_body(shape: Shape, body: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let mut counts = Counts::default();
    if let Some(usage) = value.get("usage") {
        counts.merge(shape, usage);
    }
    if let Some(usage) = counts.usage(shape) {
        spend::with(|r| r.add_usage(usage));
    }
}

struct Tap {
    shape: Shape,
    parser: sse::Parser,
    counts: Counts,
    record: Option<Arc<RequestRecord>>,
}

impl Tap {
    fn scan(&mut self, bytes: &[u8]) {
        for event in self.parser.push(bytes) {
            // Cheap pre-check: most events carry no usage.
            if !event.data.contains("\"usage\"") {
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(&event.data) else {
                continue;
            };
            let usage = match self.shape {
                Shape::Anthropic => value
                    .get("usage")
                    .or_else(|| value.pointer("/message/usage")),
                Shape::Responses => value.pointer("/response/usage"),
            };
            if let Some(usage) = usage {
                self.counts.merge(self.shape, usage);
            }
        }
    }
}

impl Drop for Tap {
    // The stream is over (finished, failed or the client went away): count what was seen.
    fn drop(&mut self) {
        if let (Some(record), Some(usage)) = (&self.record, self.counts.usage(self.shape)) {
            record.add_usage(usage);
        }
    }
}

/// Passes `stream` through unchanged, reading its usage events on the way for the
/// current request's spend record.
pub fn tap<E: Send + 'static>(
    shape: Shape,
    stream: impl Stream<Item = Result<Bytes, E>> + Send + 'static,
) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static {
    let mut tap = Tap {
        shape,
        parser: sse::Parser::new(),
        counts: Counts::default(),
        record: spend::current(),
    };
    stream.map(move |item| {
        if tap.record.is_some()
            && let Ok(bytes) = &item
        {
            tap.scan(bytes);
        }
        item
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn anthropic_stream_usage_comes_from_start_and_delta() {
        let mut tap = Tap {
            shape: Shape::Anthropic,
            parser: sse::Parser::new(),
            counts: Counts::default(),
            record: None,
        };
        tap.scan(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n");
        tap.scan(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":7}}\n\n");
        let usage = tap.counts.usage(Shape::Anthropic).unwrap();
        assert_eq!(
            (usage.prompt, usage.completion, usage.cached_read),
            (15, 7, 5)
        );
        let mut counts = Counts::default();
        counts.merge(
            Shape::Responses,
            &json!({"input_tokens": 9, "output_tokens": 2, "input_tokens_details": {"cached_tokens": 4}}),
        );
        let usage = counts.usage(Shape::Responses).unwrap();
        assert_eq!(
            (usage.prompt, usage.completion, usage.cached_read),
            (9, 2, 4)
        );
    }
}
