//! Google Gemini API (`generativelanguage.googleapis.com`, API key): wire types and the
//! mappers from/to OpenAI chat completions.
//!
//! - [`wire`]: typed `generateContent` request/response structs (unknown fields kept).
//! - [`schema`]: JSON Schema -> the OpenAPI 3.0 subset Gemini accepts for functions.
//! - [`ids`]: tool-call ids Gemini does not have (synthesised, with thought signatures).
//! - [`request`]: OpenAI chat request -> `generateContent` request.
//! - [`response`]: `generateContent` response -> OpenAI `chat.completion`.
//! - [`stream`]: stateful `streamGenerateContent?alt=sse` events -> OpenAI chunks.
//! - [`error`]: Google error status + body -> classified, OpenAI-shaped error.
//! - [`embeddings`]: OpenAI embeddings request/response <-> `batchEmbedContents`.

pub mod embeddings;
pub mod error;
pub mod ids;
pub mod request;
pub mod response;
pub mod schema;
pub mod stream;
pub mod wire;

pub use embeddings::{EmbedRequest, embeddings_request, embeddings_response};
pub use error::{MappedError, classify, map_error};
pub use request::{MappedRequest, chat_to_gemini};
pub use response::{finish_reason, gemini_to_chat, usage_to_openai};
pub use schema::reduce_schema;
pub use stream::StreamMapper;

/// Version prefix of the Gemini Developer API paths.
pub const API_VERSION_PATH: &str = "/v1beta";

/// Model id as it goes into a path: `models/gemini-x` and `gemini-x` are both accepted
/// in configs (the API itself names models `models/...`).
fn model_id(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

/// Path (after the API base) of a chat call: `:generateContent`, or
/// `:streamGenerateContent?alt=sse` for a stream (plain JSON-array streaming otherwise).
pub fn generate_path(model: &str, stream: bool) -> String {
    let model = model_id(model);
    if stream {
        format!("{API_VERSION_PATH}/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("{API_VERSION_PATH}/models/{model}:generateContent")
    }
}

/// Path of an embeddings call (always the batch method: one or many inputs).
pub fn embed_path(model: &str) -> String {
    format!(
        "{API_VERSION_PATH}/models/{}:batchEmbedContents",
        model_id(model)
    )
}

/// LiteLLM users write the base with or without the version (`.../v1beta`); paths here
/// carry it, so strip it from the base.
pub fn normalize_base(api_base: &str) -> &str {
    let base = api_base.trim_end_matches('/');
    base.strip_suffix(API_VERSION_PATH)
        .or_else(|| base.strip_suffix("/v1"))
        .unwrap_or(base)
}
