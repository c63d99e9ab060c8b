//! The human-readable overview printed by `gatehouse check`. Secrets never appear:
//! keys are shown by alias, URLs with credentials are not printed with them.

use std::fmt::Write as _;

use crate::load::Loaded;
use crate::transport::McpTransport;

impl Loaded {
    /// A multi-line summary: models, MCP servers, virtual keys (by alias), warnings.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let c = &self.config;
        let _ = writeln!(s, "config: {}", self.origin);
        let _ = writeln!(
            s,
            "master key: {}",
            if c.general_settings.master_key.is_some() {
                "set"
            } else {
                "not set (serving on loopback only)"
            }
        );
        let _ = writeln!(
            s,
            "database: {}",
            if c.general_settings.database_url.is_some() {
                "database_url (shared)"
            } else {
                "embedded SQLite"
            }
        );

        let _ = writeln!(s, "models ({}):", self.deployments.len());
        for d in &self.deployments {
            let _ = writeln!(
                s,
                "  {} -> {}/{} ({})",
                d.model_name,
                d.provider.name,
                d.upstream_model,
                d.api_base()
                    .map(crate::redact::url)
                    .unwrap_or_else(|| "no api_base".into())
            );
        }

        let _ = writeln!(s, "mcp servers ({}):", c.mcp_servers.len());
        for (name, srv) in &c.mcp_servers {
            let kind = srv.transport_kind();
            let target = match kind {
                Some(McpTransport::Stdio) => std::iter::once(srv.command.as_deref().unwrap_or(""))
                    .map(str::to_string)
                    // Args often carry connection strings (`postgresql://user:pw@db/x`).
                    .chain(srv.args.iter().map(|a| crate::redact::url(a)))
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => srv
                    .url
                    .as_deref()
                    .map(crate::redact::url)
                    .unwrap_or_default(),
            };
            let _ = writeln!(
                s,
                "  {name} [{}] {target}",
                kind.map(McpTransport::as_str).unwrap_or("?")
            );
        }

        let _ = writeln!(s, "virtual keys ({}):", c.virtual_keys.len());
        for (i, k) in c.virtual_keys.iter().enumerate() {
            let name = k
                .key_alias
                .clone()
                .unwrap_or_else(|| format!("virtual_keys[{i}] (no alias)"));
            let models = if k.models.is_empty() {
                "all".to_string()
            } else {
                k.models.join(", ")
            };
            let mcp = match &k.mcp_servers {
                None => "all".to_string(),
                Some(v) if v.is_empty() => "none".to_string(),
                Some(v) => v.join(", "),
            };
            let _ = writeln!(s, "  {name}: models {models}; mcp {mcp}");
        }

        let _ = writeln!(s, "warnings ({}):", self.warnings.len());
        for w in &self.warnings {
            let _ = writeln!(s, "  {w}");
        }
        s
    }
}
