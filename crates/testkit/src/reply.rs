//! Scripted replies: what the next chat/messages request answers, whichever API it uses.

use std::time::Duration;

/// One scripted answer, rendered in the API that was called (OpenAI chat completions,
/// OpenAI responses or Anthropic messages), streaming or not.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A plain assistant text answer (`finish_reason: stop` / `stop_reason: end_turn`).
    Text(String),
    /// Tool calls in one turn, as `(name, arguments JSON string)`; several = parallel calls.
    ToolCalls(Vec<(String, String)>),
    /// Text followed by tool calls in the same turn (Anthropic text block before
    /// `tool_use` blocks; OpenAI `content` plus `tool_calls`).
    TextAndToolCalls {
        /// The text before the calls.
        text: String,
        /// `(name, arguments JSON string)` pairs.
        calls: Vec<(String, String)>,
    },
    /// Extended thinking then text. Anthropic renders a `thinking` block with its
    /// `signature`; the OpenAI APIs render only the text.
    Thinking {
        /// The reasoning text.
        thinking: String,
        /// Opaque signature sent in `signature_delta`.
        signature: String,
        /// The visible answer.
        text: String,
    },
    /// A raw error: this status and exactly this JSON body (write it vendor-shaped).
    Error {
        /// HTTP status.
        status: u16,
        /// Response body, sent as is.
        body_json: serde_json::Value,
    },
    /// A vendor-shaped error for this status in the API that was called: 429
    /// (`rate_limit_exceeded` / `rate_limit_error`), 500, 503, 529 (`overloaded_error`).
    /// `retry_after_secs` adds a `retry-after` header.
    Status {
        /// HTTP status.
        status: u16,
        /// Value of the `retry-after` header, if any.
        retry_after_secs: Option<u64>,
    },
    /// Send the first `after_chunks` stream events of `text` (for a non-streaming request,
    /// the first half of the JSON body), then close the connection abruptly.
    DropMidStream {
        /// The answer that is cut short.
        text: String,
        /// How many SSE events go out before the cut.
        after_chunks: usize,
    },
    /// Send the first `after_chunks` stream events of `text`, then end the body cleanly,
    /// without the vendor's final event (no `[DONE]`, `message_stop`, `finishReason`,
    /// `messageStop`/`metadata`, `response.completed`). This is how a cut looks when the
    /// transport does not report it: a proxy or load balancer in front of the vendor that
    /// closes its side of the stream properly when the backend goes away, or a
    /// close-delimited body whose connection ends. A non-streaming request gets the first
    /// half of the JSON body, then the connection is cut (as for `DropMidStream`).
    EndMidStream {
        /// The answer that is cut short.
        text: String,
        /// How many SSE events go out before the end.
        after_chunks: usize,
    },
    /// Send the first `after_chunks` stream events of `text`, then an in-band error event
    /// (Anthropic `event: error` with `overloaded_error`; OpenAI `data: {"error":...}`).
    /// A non-streaming request gets a 500 instead.
    ErrorMidStream {
        /// The answer that is cut short.
        text: String,
        /// How many SSE events go out before the error.
        after_chunks: usize,
    },
    /// Wait this long (on top of `MockOptions::latency`), then answer with the inner reply.
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    /// Plain text.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// One tool call.
    pub fn tool_call(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Self::ToolCalls(vec![(name.into(), arguments.into())])
    }

    /// 429 with `retry-after`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::Status {
            status: 429,
            retry_after_secs: Some(retry_after_secs),
        }
    }

    /// Anthropic's 529 `overloaded_error` (OpenAI callers get a 529 with a `server_error` body).
    pub fn overloaded() -> Self {
        Self::Status {
            status: 529,
            retry_after_secs: None,
        }
    }

    /// Wrap `self` with an extra delay.
    pub fn delayed(self, delay: Duration) -> Self {
        Self::Delayed(delay, Box::new(self))
    }
}
