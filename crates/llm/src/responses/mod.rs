//! OpenAI Responses API (what Codex CLI speaks) arriving at the gateway for a provider
//! reached through the chat-completions shape.
//!
//! - [`request`]: Responses request -> chat request plus a [`ResponsesContext`] holding
//!   what the answer needs (namespace split-back table, custom tools, echoed params) and
//!   what the gateway must handle itself (dropped hosted tools, `mcp` tools,
//!   `previous_response_id`).
//! - [`response`]: chat completion -> Responses `response` object.
//! - [`stream`]: stateful chat chunks -> Responses SSE events.
//! - [`replay`]: a finished `response` object told as the Responses event stream (for
//!   answers that exist only whole, such as the MCP tool loop's).
//! - `input` / `tools`: the request mapper's halves for input items and tools.
//! - [`names`]: the reversible flattening of namespace tools into chat function names.
//!
//! Reasoning round trip: a chat answer's `thinking_blocks` (signed vendor reasoning) are
//! returned inside the reasoning item's `encrypted_content` (see [`ENCRYPTED_PREFIX`]), the
//! field Codex replays verbatim with `store: false`; on the next request they are put
//! back on the assistant message, so a signed-thinking provider can continue the turn.

mod input;
mod items;
pub mod names;
pub mod replay;
pub mod request;
pub mod response;
pub mod stream;
mod tools;

pub use items::ENCRYPTED_PREFIX;
pub use names::flat_name;
pub use request::{NamespacedTool, ResponsesContext, to_chat};
pub use response::from_chat;
pub use stream::ResponsesStreamWriter;
