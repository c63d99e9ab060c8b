//! Glue for the inbound dialects other than OpenAI chat (the Responses API, Anthropic
//! Messages): they are served by translating to a chat round on any deployment and back.
//!
//! - [`approvals`]: MCP `require_approval` in the Responses API (approval request and
//!   response items).
//! - [`chunks`]: a chat-chunk stream from any provider (OpenAI-compatible SSE parsed,
//!   Anthropic SSE mapped), opened with peek-before-commit and fall-over.
//! - [`errors`]: [`crate::error::ApiError`] in Anthropic's error shape, and the error
//!   kind a mid-stream failure is reported with.
//! - [`store`]: the bounded in-memory store behind Responses `store: true`,
//!   `previous_response_id` and `GET`/`DELETE /v1/responses/{id}`.
//! - [`sse`]: SSE response heads and the Anthropic relay.
//! - [`usage`]: token usage of passed-through answers, for the spend record.

pub mod approvals;
pub mod chunks;
pub mod errors;
pub mod sse;
pub mod store;
pub mod usage;
