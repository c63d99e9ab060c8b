//! Gatehouse MCP hub.
//!
//! - `hub`: the registry of configured upstream servers and the one API the rest of
//!   Gatehouse uses to list and call their tools (and forward any other MCP request).
//! - `downstream`: the aggregated MCP endpoint (`/mcp`, `/mcp/<server>`, legacy SSE,
//!   `/mcp/tools`, `/mcp/invoke`, `/v1/mcp/*`) served to MCP hosts.

pub mod caller;
pub mod client_headers;
pub mod downstream;
pub mod hub;
pub mod jsonrpc;
pub mod lazy;
pub mod naming;
pub mod upstream;

pub use caller::{CatalogMode, McpCaller};
pub use client_headers::client_headers_for;
pub use hub::{CallOptions, Hub, HubError, HubEvent, HubSettings, ServerState, ServerStatus, Tool};
