//! Who is calling, as the server's auth layer established it.

/// Inserted as a request extension by the server's auth middleware before any MCP route
/// runs. MCP handlers read it to decide which upstream servers the caller may use.
#[derive(Debug, Clone)]
pub struct McpCaller {
    /// A stable, non-secret identifier of the key (alias or hash prefix), for logs and audit.
    pub key_id: String,
    /// The SHA-256 hex of the presented key, matched against servers' `api_keys`; `None`
    /// in local mode (auth off) and for the master key.
    pub key_hash: Option<String>,
    /// Servers this key may use, by configured name. `None` means every server
    /// (master key, local mode, or a key without an `mcp_servers` restriction); a server's
    /// own `api_keys` list still applies on top via [`crate::Hub::may_use`].
    pub allowed_servers: Option<Vec<String>>,
    /// Master key or local mode: bypasses per-server `api_keys`.
    pub is_admin: bool,
}

impl McpCaller {
    /// Who owns what this caller creates (sessions, parked calls, subscriptions): the
    /// key's hash, never its alias (aliases are not unique); `key_id` (`master`, `local`)
    /// only for the callers that have no hash.
    pub fn owner(&self) -> &str {
        self.key_hash.as_deref().unwrap_or(&self.key_id)
    }
}

/// How an MCP endpoint presents tools to this caller. The server may insert it as a
/// request extension (e.g. from a key's `metadata.mcp_catalog`); a `?catalog=` on the
/// URL wins over it, and it wins over `mcp_settings.catalog`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatalogMode {
    /// Every tool with its schema (MCP's usual `tools/list`).
    Full,
    /// Three tools (search, describe, call) instead of the catalog: see [`crate::lazy`].
    Lazy,
}

impl CatalogMode {
    /// `full` / `lazy`, as config and URLs spell them.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(Self::Full),
            "lazy" => Some(Self::Lazy),
            _ => None,
        }
    }
}
