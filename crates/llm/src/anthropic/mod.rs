//! Anthropic Messages API: wire types and the mappers from/to OpenAI chat completions.
//!
//! - [`wire`]: typed request/response/stream-event structs (unknown fields kept in `rest`).
//! - [`request`]: OpenAI chat request -> Messages request.
//! - [`response`]: Messages response -> OpenAI `chat.completion`.
//! - [`stream`]: stateful Messages SSE events -> OpenAI `chat.completion.chunk`s.
//! - [`error`]: Anthropic error status + body -> classified, OpenAI-shaped error.

/// Path appended to the deployment's `api_base`.
pub const MESSAGES_PATH: &str = "/v1/messages";
/// Value for the required `anthropic-version` header.
pub const API_VERSION: &str = "2023-06-01";

pub mod error;
pub mod request;
pub mod response;
pub mod stream;
pub mod wire;

pub use error::{MappedError, classify, map_error};
pub use request::{AnthropicDefaults, MappedRequest, chat_to_messages, default_max_tokens};
pub use response::{
    chat_id, finish_reason, messages_to_chat, messages_value_to_chat, usage_to_openai,
};
pub use stream::StreamMapper;
