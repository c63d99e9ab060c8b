//! Pure translation between LLM vendor wire formats. No I/O lives here: every function
//! takes bytes or typed values and returns typed values, so the server can test mapping
//! without a network and reuse it for the MCP tool-execution loop.
//!
//! Layout (DESIGN.md principle 2):
//! - [`openai`]: OpenAI chat-completions wire types (the gateway's public dialect).
//! - [`anthropic`]: Anthropic Messages wire types plus the request, response, stream and
//!   error mappers from/to OpenAI chat.
//! - [`sse`]: a vendor-neutral server-sent-events line parser.
//! - [`error`]: the mapping error and the vendor-neutral upstream error classification.
//!
//! For now the mapping is direct (OpenAI <-> Anthropic) over typed wire structs; every
//! struct keeps unknown fields in a `#[serde(flatten)] rest` map. A shared internal
//! representation comes when a third dialect (Responses, Gemini) needs it.

pub mod anthropic;
pub mod error;
pub mod openai;
pub mod sse;

pub use error::{ErrorKind, MapError, UpstreamError};
