//! Pure translation between LLM vendor wire formats. No I/O lives here: every function
//! takes bytes or typed values and returns typed values, so the server can test mapping
//! without a network and reuse it for the MCP tool-execution loop.
//!
//! Layout (DESIGN.md principle 2):
//! - [`openai`]: OpenAI chat-completions wire types (the gateway's public dialect).
//! - [`anthropic`]: Anthropic Messages wire types plus the request, response, stream and
//!   error mappers from/to OpenAI chat.
//! - [`gemini`]: Google Gemini `generateContent` (API key): the same mappers, plus the
//!   JSON Schema reduction Gemini needs and embeddings.
//! - [`bedrock`]: Amazon Bedrock Converse/ConverseStream: the same mappers, plus SigV4
//!   signing and the AWS event-stream decoder.
//! - [`responses`]: the OpenAI Responses API (Codex CLI) inbound: request -> chat
//!   request, chat answer -> `response` object, and a stateful chat-chunk -> Responses
//!   SSE writer, for providers reached through the chat shape.
//! - [`messages_in`]: the Anthropic Messages API (Claude Code, anthropic SDKs) inbound,
//!   the same three mappers plus Anthropic-shaped error bodies.
//! - [`mapper`]: [`ChunkMapper`], the one trait every vendor stream mapper is driven by
//!   (and which says whether the vendor's stream reached its final event), and
//!   [`ChunkWriter`], the same for the inbound dialects' stream writers.
//! - [`usage`]: token usage in one vendor-neutral shape, and its reading from
//!   passed-through Anthropic and Responses answers.
//! - [`sse`]: a vendor-neutral server-sent-events line parser.
//! - [`error`]: the mapping error and the vendor-neutral upstream error classification.
//!
//! For now OpenAI chat (with LiteLLM's `reasoning_content`/`thinking_blocks`) is the pivot:
//! provider adapters map chat <-> vendor, inbound dialects map to and from chat. Typed
//! wire structs keep unknown fields in a `#[serde(flatten)] rest` map.

pub mod anthropic;
pub mod bedrock;
pub mod error;
pub mod gemini;
pub mod mapper;
pub mod messages_in;
pub mod openai;
pub mod responses;
pub mod sse;
pub mod usage;

pub use error::{ErrorKind, MapError, UpstreamError};
pub use mapper::{ChunkMapper, ChunkWriter};

/// Writing into JSON that may have come from outside.
pub mod json {
    use serde_json::Value;

    /// Sets `key` when `value` is an object; anything else is left as it is. Index
    /// assignment (`value["key"] = ...`) panics on a non-object, and JSON from clients,
    /// vendors and MCP servers must never be able to panic the gateway (the CI's
    /// `scripts/check-json-writes` refuses it in source).
    pub fn set(value: &mut Value, key: &str, new: Value) {
        if let Some(object) = value.as_object_mut() {
            object.insert(key.to_owned(), new);
        }
    }
}
