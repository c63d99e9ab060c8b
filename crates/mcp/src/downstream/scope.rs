//! Which upstream servers one request (or session) sees.

use crate::McpCaller;

use super::backend::Backend;

/// The header MCP hosts (and LiteLLM clients) use to pick servers: comma-separated names
/// or aliases.
pub const SERVERS_HEADER: &str = "x-mcp-servers";

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopedServer {
    /// Configured name.
    pub name: String,
    /// Label in aggregated names.
    pub prefix: String,
}

#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub servers: Vec<ScopedServer>,
    /// `/mcp/{server}`: one server, names unprefixed.
    pub single: bool,
}

impl Scope {
    pub fn by_prefix(&self, prefix: &str) -> Option<&ScopedServer> {
        self.servers.iter().find(|s| s.prefix == prefix)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    #[error("this key may not use MCP server `{0}`")]
    Forbidden(String),
    #[error("unknown MCP server `{name}`; available: {}", available.join(", "))]
    Unknown {
        name: String,
        available: Vec<String>,
    },
}

/// Resolves the servers for `/mcp` (`path_server` = None, `header` = `x-mcp-servers`) or
/// `/mcp/{server}`.
pub fn select(
    backend: &dyn Backend,
    caller: &McpCaller,
    path_server: Option<&str>,
    header: Option<&str>,
) -> Result<Scope, ScopeError> {
    let all = backend.servers();
    let usable: Vec<String> = all
        .iter()
        .filter(|s| backend.may_use(caller, &s.name))
        .map(|s| s.prefix.clone())
        .collect();
    let pick = |wanted: &str| -> Result<ScopedServer, ScopeError> {
        let Some(name) = backend.resolve(wanted) else {
            return Err(ScopeError::Unknown {
                name: wanted.to_owned(),
                available: usable.clone(),
            });
        };
        if !backend.may_use(caller, &name) {
            return Err(ScopeError::Forbidden(wanted.to_owned()));
        }
        let prefix = all
            .iter()
            .find(|s| s.name == name)
            .map_or_else(|| name.clone(), |s| s.prefix.clone());
        Ok(ScopedServer { name, prefix })
    };
    if let Some(one) = path_server {
        return Ok(Scope {
            servers: vec![pick(one)?],
            single: true,
        });
    }
    let wanted: Vec<&str> = header
        .map(|h| {
            h.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if wanted.is_empty() {
        let servers = all
            .iter()
            .filter(|s| backend.may_use(caller, &s.name))
            .map(|s| ScopedServer {
                name: s.name.clone(),
                prefix: s.prefix.clone(),
            })
            .collect();
        return Ok(Scope {
            servers,
            single: false,
        });
    }
    let mut servers: Vec<ScopedServer> = Vec::with_capacity(wanted.len());
    for w in wanted {
        let s = pick(w)?;
        if !servers.contains(&s) {
            servers.push(s);
        }
    }
    Ok(Scope {
        servers,
        single: false,
    })
}
