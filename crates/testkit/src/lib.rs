//! Faithful mocks of LLM vendor APIs (OpenAI chat completions, embeddings and models;
//! Anthropic Messages and token counting) on one local HTTP server, for integration
//! tests and as the benchmark's zero-delay upstream.
//!
//! Default behaviour is deterministic: a conversation ending in tool results answers
//! `"Tool said: <result>"`; a last user text with `CALL <tool> <json-args>` lines naming
//! offered tools answers with those tool calls; anything else answers `"Echo: <text>"`.
//! Tests can script other answers with [`MockServer::push_reply`].

mod anthropic;
mod azure;
mod b64;
mod bedrock;
mod gemini;
mod openai;
mod options;
mod plan;
mod reply;
mod respond;
mod server;
mod sse;
mod state;
pub mod tls;

pub use azure::content_filter_error as azure_content_filter_error;
pub use bedrock::{AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY};
pub use options::MockOptions;
pub use reply::Reply;
pub use server::MockServer;
pub use state::RecordedRequest;

/// The deterministic embedding the mock returns for `text` with `dims` dimensions
/// (unit length), so tests can compare vectors end to end.
pub fn embedding_for(text: &str, dims: usize) -> Vec<f32> {
    openai::embeddings::vector(text, dims)
}
