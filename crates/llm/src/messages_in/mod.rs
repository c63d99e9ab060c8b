//! Anthropic Messages API (what Claude Code and the anthropic SDKs speak) arriving at the
//! gateway for a provider reached through the chat-completions shape. The reverse of
//! [`crate::anthropic`], which maps chat requests *to* Anthropic providers.
//!
//! - [`request`]: Messages request -> chat request plus a [`MessagesContext`] listing
//!   what was dropped or ignored (for logging).
//! - [`response`]: chat completion -> Messages `message` object.
//! - [`stream`]: stateful chat chunks -> Messages SSE events.
//! - [`error`]: Anthropic-shaped error bodies and statuses for the gateway's own errors.
//! - [`tokens`]: the token estimate `count_tokens` answers with when no vendor counts.

pub mod error;
pub mod request;
pub mod response;
pub mod stream;
pub mod tokens;

pub use error::{error_body, error_status, error_type, map_error_response};
pub use request::{MessagesContext, to_chat};
pub use response::{from_chat, message_id, stop_reason, usage_value};
pub use stream::MessagesStreamWriter;
pub use tokens::estimate_tokens;
