//! Token usage in one vendor-neutral shape: the single converter every route's usage goes
//! through (the server prices and bills [`Usage`], and re-exports it as `cost::Usage`).
//!
//! - [`Usage::from_chat`] / [`Usage::from_value`]: the chat pivot's usage, typed or as the
//!   upstream's own JSON (every translated vendor is mapped to it first).
//! - [`Usage::anthropic`]: Anthropic's split counts (input excludes cache reads/writes).
//! - [`Tally`]: usage read from answers passed through in a vendor's own shape (Anthropic
//!   Messages, OpenAI Responses), whole or as stream events, built on the same type.

use serde_json::Value;

use crate::openai;

/// Token counts of one response.
///
/// `prompt` is the whole prompt, cached parts included (OpenAI's `prompt_tokens`);
/// `cached_read` and `cache_write` say how much of it was read from or written to the
/// provider's prompt cache. Use [`Usage::anthropic`] for Anthropic's split counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt: u64,
    pub completion: u64,
    pub cached_read: u64,
    pub cache_write: u64,
}

impl Usage {
    /// From the chat pivot's usage, whatever vendor it came from. Cache reads are
    /// `prompt_tokens_details.cached_tokens`; cache writes `cache_creation_input_tokens`
    /// (where the Anthropic mapping and LiteLLM keep them). Both are part of `prompt`.
    pub fn from_chat(u: &openai::Usage) -> Self {
        Usage {
            prompt: u.prompt_tokens,
            completion: u.completion_tokens,
            cached_read: u
                .prompt_tokens_details
                .as_ref()
                .map_or(0, |d| d.cached_tokens),
            cache_write: u
                .rest
                .get("cache_creation_input_tokens")
                .and_then(Value::as_u64)
                .unwrap_or(0),
        }
    }

    /// From an OpenAI-shaped `usage` JSON value (an upstream's own, unparsed answer).
    pub fn from_value(u: &Value) -> Option<Self> {
        // Read field by field: local servers omit `total_tokens` and the details.
        let n = |pointer: &str| u.pointer(pointer).and_then(Value::as_u64);
        if !u.is_object() {
            return None;
        }
        Some(Usage {
            prompt: n("/prompt_tokens").unwrap_or(0),
            completion: n("/completion_tokens").unwrap_or(0),
            cached_read: n("/prompt_tokens_details/cached_tokens").unwrap_or(0),
            cache_write: n("/cache_creation_input_tokens").unwrap_or(0),
        })
    }

    /// Adds another model call's usage (a tool loop makes several).
    pub fn add(&mut self, other: Usage) {
        self.prompt += other.prompt;
        self.completion += other.completion;
        self.cached_read += other.cached_read;
        self.cache_write += other.cache_write;
    }

    /// As the chat API reports it (the tool loop's summed usage).
    pub fn to_chat_json(&self) -> Value {
        let mut u = serde_json::json!({
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "total_tokens": self.prompt + self.completion,
            "prompt_tokens_details": {"cached_tokens": self.cached_read},
        });
        if self.cache_write > 0 {
            crate::json::set(
                &mut u,
                "cache_creation_input_tokens",
                self.cache_write.into(),
            );
        }
        u
    }

    /// From Anthropic's usage, whose `input_tokens` excludes cache reads and writes.
    pub fn anthropic(input: u64, output: u64, cache_read: u64, cache_creation: u64) -> Self {
        Usage {
            prompt: input
                .saturating_add(cache_read)
                .saturating_add(cache_creation),
            completion: output,
            cached_read: cache_read,
            cache_write: cache_creation,
        }
    }
}

/// The vendor shape a passed-through answer reports its usage in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `usage: {input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens}`.
    Anthropic,
    /// `usage: {input_tokens, output_tokens, input_tokens_details: {cached_tokens}}`.
    Responses,
}

/// Usage counters of one passed-through answer as far as they are known: Anthropic
/// streams report input tokens at the start and output tokens (cumulative) at the end, so
/// later reports overwrite earlier ones field by field.
#[derive(Debug, Clone, Copy)]
pub struct Tally {
    shape: Shape,
    seen: bool,
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
}

impl Tally {
    pub fn new(shape: Shape) -> Self {
        Tally {
            shape,
            seen: false,
            input: 0,
            output: 0,
            cache_read: 0,
            cache_write: 0,
        }
    }

    /// Reads a whole (non-stream) answer body's `usage`.
    pub fn body(shape: Shape, body: &[u8]) -> Option<Usage> {
        let value = serde_json::from_slice::<Value>(body).ok()?;
        let mut tally = Tally::new(shape);
        if let Some(usage) = value.get("usage") {
            tally.merge(usage);
        }
        tally.usage()
    }

    /// Reads one stream event's `data` (events without usage cost a substring check).
    pub fn event(&mut self, data: &str) {
        if !data.contains("\"usage\"") {
            return;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            return;
        };
        let usage = match self.shape {
            Shape::Anthropic => value
                .get("usage")
                .or_else(|| value.pointer("/message/usage")),
            Shape::Responses => value.pointer("/response/usage"),
        };
        if let Some(usage) = usage {
            self.merge(usage);
        }
    }

    /// Merges one `usage` object in this tally's shape.
    pub fn merge(&mut self, usage: &Value) {
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
        match self.shape {
            Shape::Anthropic => {
                set(&mut self.cache_read, "/cache_read_input_tokens");
                set(&mut self.cache_write, "/cache_creation_input_tokens");
            }
            Shape::Responses => set(&mut self.cache_read, "/input_tokens_details/cached_tokens"),
        }
    }

    /// The usage seen so far; `None` when no usage was reported at all.
    pub fn usage(&self) -> Option<Usage> {
        if !self.seen {
            return None;
        }
        Some(match self.shape {
            Shape::Anthropic => {
                Usage::anthropic(self.input, self.output, self.cache_read, self.cache_write)
            }
            // Responses' input_tokens already include the cached ones.
            Shape::Responses => Usage {
                prompt: self.input,
                completion: self.output,
                cached_read: self.cache_read,
                cache_write: 0,
            },
        })
    }
}
