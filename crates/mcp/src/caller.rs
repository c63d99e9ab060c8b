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
