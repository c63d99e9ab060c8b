//! Amazon Bedrock runtime, Converse API: wire types, the mappers from/to OpenAI chat
//! completions, and what reaching it takes (SigV4, event-stream framing).
//!
//! - [`wire`]: typed Converse request/response/stream-event structs.
//! - [`request`]: OpenAI chat request -> Converse request.
//! - [`response`]: Converse response -> OpenAI `chat.completion`.
//! - [`stream`]: stateful ConverseStream events -> OpenAI chunks.
//! - [`error`]: Bedrock error type/status/body -> classified, OpenAI-shaped error.
//! - [`eventstream`]: the AWS event-stream binary framing decoder (with CRC checks).
//! - [`sigv4`]: AWS Signature Version 4.
//! - [`embeddings`]: OpenAI embeddings <-> Titan / Cohere `InvokeModel` bodies.

pub mod embeddings;
pub mod error;
pub mod eventstream;
pub mod request;
pub mod response;
pub mod sigv4;
pub mod stream;
pub mod wire;

pub use error::{MappedError, classify, map_error};
pub use request::{MappedRequest, chat_to_converse};
pub use response::{converse_to_chat, finish_reason, usage_to_openai};
pub use stream::StreamMapper;

/// Signing name of the Bedrock runtime service.
pub const SERVICE: &str = "bedrock";

/// Default endpoint for a region (LiteLLM's default when no `api_base` is configured).
pub fn default_endpoint(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// The model id LiteLLM configs name, as Converse wants it: LiteLLM's route prefixes
/// (`converse/`, `invoke/`) removed.
pub fn model_id(model: &str) -> &str {
    model
        .strip_prefix("converse/")
        .or_else(|| model.strip_prefix("invoke/"))
        .unwrap_or(model)
}

/// Path of a Converse call: `/model/{modelId}/converse` or `/converse-stream`. The id is
/// percent-encoded (`:` in versioned ids, `/` in ARNs), as the AWS SDKs send it.
pub fn converse_path(model: &str, stream: bool) -> String {
    let action = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    format!("/model/{}/{action}", encode_segment(model_id(model)))
}

/// Path of an `InvokeModel` call (embeddings).
pub fn invoke_path(model: &str) -> String {
    format!("/model/{}/invoke", encode_segment(model_id(model)))
}

fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
