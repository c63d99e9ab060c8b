//! Token usage of answers passed through in a vendor's own shape (Anthropic Messages,
//! OpenAI Responses), for the request's spend record: the I/O half. What the usage *is*
//! is read by the pure `gatehouse_llm::usage::Tally`; translated answers are counted by
//! the provider adapters and [`super::chunks`].

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use gatehouse_llm::sse;
pub use gatehouse_llm::usage::Shape;
use gatehouse_llm::usage::Tally;

use crate::spend::{self, RequestRecord};

/// Records the usage of a whole (non-stream) answer body.
pub fn record_body(shape: Shape, body: &[u8]) {
    if let Some(usage) = Tally::body(shape, body) {
        spend::with(|r| r.add_usage(usage));
    }
}

struct Tap {
    parser: sse::Parser,
    tally: Tally,
    record: Option<Arc<RequestRecord>>,
}

impl Drop for Tap {
    // The stream is over (finished, failed or the client went away): count what was seen.
    fn drop(&mut self) {
        if let (Some(record), Some(usage)) = (&self.record, self.tally.usage()) {
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
        parser: sse::Parser::new(),
        tally: Tally::new(shape),
        record: spend::current(),
    };
    stream.map(move |item| {
        if tap.record.is_some()
            && let Ok(bytes) = &item
        {
            for event in tap.parser.push(bytes) {
                tap.tally.event(&event.data);
            }
        }
        item
    })
}
