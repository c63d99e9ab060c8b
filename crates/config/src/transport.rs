//! The normalised transport of an MCP server entry.

use crate::schema::McpServerConfig;

/// How Gatehouse talks to an upstream MCP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum McpTransport {
    /// Spawn `command` and speak JSON-RPC over its stdin/stdout.
    Stdio,
    /// Streamable HTTP (config spellings: `http`, `streamable_http`, `streamable-http`).
    Http,
    /// The legacy HTTP+SSE transport.
    Sse,
}

impl McpTransport {
    /// Parses a config spelling; `None` for anything unknown.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stdio" => Some(Self::Stdio),
            "http" | "streamable_http" | "streamable-http" => Some(Self::Http),
            "sse" => Some(Self::Sse),
            _ => None,
        }
    }

    /// Canonical name: `stdio`, `http` or `sse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stdio => "stdio",
            Self::Http => "http",
            Self::Sse => "sse",
        }
    }
}

impl McpServerConfig {
    /// The transport this entry uses: the `transport` key when given, else `stdio` when
    /// `command` is set and `http` otherwise. `None` for an unknown spelling (a loaded
    /// config never has one: validation rejects it).
    pub fn transport_kind(&self) -> Option<McpTransport> {
        match &self.transport {
            Some(t) => McpTransport::parse(t),
            None if self.command.is_some() => Some(McpTransport::Stdio),
            None => Some(McpTransport::Http),
        }
    }
}
