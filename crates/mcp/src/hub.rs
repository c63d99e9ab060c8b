//! The hub: every configured upstream MCP server, supervised, behind one API.
//!
//! CONTRACT (used by the server crate and the tool-execution loop; keep these signatures):
//! - `Hub::from_config(&Config) -> Result<Arc<Hub>, HubError>` builds it (no I/O).
//! - `hub.start()` spawns supervisors (upstreams connect in the background; stdio
//!   servers may start lazily on first use); `hub.shutdown().await` stops them all.
//! - `hub.resolve(name_or_alias) -> Option<String>` → configured server name.
//! - `hub.server_names()`, `hub.status() -> Vec<ServerStatus>` for /health and listings.
//! - `hub.may_use(&McpCaller, server) -> bool`.
//! - `hub.list_tools(server).await -> Result<Vec<Tool>, HubError>`: the server's tools after
//!   `allowed_tools` / `disallowed_tools`, unprefixed.
//! - `hub.call_tool(server, tool, arguments, timeout).await -> Result<Value, HubError>`:
//!   the MCP `CallToolResult` JSON (`content`, `isError`, `structuredContent`, ...).
//! - `hub.request(server, method, params).await -> Result<Value, HubError>`: any other
//!   MCP request forwarded as is (prompts/*, resources/*, completion/complete, ...).
//! - `naming::prefixed(server_or_alias, tool)` / `hub.split_prefixed(name)` map
//!   aggregated tool names `<server>-<tool>` both ways.
