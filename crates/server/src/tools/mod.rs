//! Server-side execution of MCP tool calls inside chat requests.
//!
//! - `attach`: which MCP servers a request gets (header, `tools` entries of type `mcp`,
//!   the model's `model_info.mcp_servers`), checked against the key's access.
//! - `catalog`: the attached servers' tools as OpenAI function tools, with a name map.
//! - `execute`: running one round's MCP calls through the hub, in parallel.
//! - `pending`: MCP calls of a turn that also called the client's own tools, kept until
//!   the client comes back with its results.
//! - `run`: the loop itself, and `sse` for streaming its final answer.

pub mod attach;
pub mod catalog;
pub mod execute;
pub mod pending;
pub mod run;
pub mod sse;

pub use attach::{AttachedServer, attachments};
pub use run::{LoopAnswer, complete, run};
