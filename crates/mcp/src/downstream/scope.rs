//! Which upstream servers one request (or session) sees.

use crate::McpCaller;

use super::backend::Backend;

/// The header MCP hosts (and LiteLLM clients) use to pick servers: comma-separated names
/// or aliases.
pub const SERVERS_HEADER: &str = "x-mcp-servers";

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScopedServer {
    /// Configured name.
    pub name: String,
    /// Label in aggregated names.
    pub prefix: String,
    /// A toolset's pick of this server's tools (unprefixed names); `None`: all of them.
    pub tools: Option<Vec<String>>,
}

impl ScopedServer {
    /// Whether the scope offers this (unprefixed) tool of the server.
    pub fn offers(&self, tool: &str) -> bool {
        self.tools
            .as_ref()
            .is_none_or(|t| t.iter().any(|x| x == tool))
    }
}

/// What an endpoint URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/mcp`: the servers in `x-mcp-servers`, or every server the key may use.
    All,
    /// `/mcp/{server}`: one server, names unprefixed.
    Server(String),
    /// `/toolset/{name}/mcp`: a configured bundle of tools.
    Toolset(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Scope {
    pub servers: Vec<ScopedServer>,
    /// `/mcp/{server}`: one server, names unprefixed.
    pub single: bool,
    /// The lazy catalog: `tools/list` shows the three tools of [`crate::lazy`].
    pub lazy: bool,
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
    #[error("unknown toolset `{0}`")]
    UnknownToolset(String),
}

/// The scope of an endpoint URL for this caller (`header`: `x-mcp-servers`, for `/mcp`).
pub fn select_target(
    backend: &dyn Backend,
    caller: &McpCaller,
    target: &Target,
    header: Option<&str>,
) -> Result<Scope, ScopeError> {
    match target {
        Target::All => select(backend, caller, None, header),
        Target::Server(s) => select(backend, caller, Some(s), None),
        Target::Toolset(t) => toolset(backend, caller, t),
    }
}

/// A toolset's servers that this key may use, each narrowed to the toolset's tools. The
/// key's access applies: servers it may not use are left out (not an error), so a toolset
/// shows each key the part of it that key may use.
fn toolset(backend: &dyn Backend, caller: &McpCaller, name: &str) -> Result<Scope, ScopeError> {
    let entries = backend
        .toolset(name)
        .ok_or_else(|| ScopeError::UnknownToolset(name.to_owned()))?;
    let all = backend.servers();
    let mut servers: Vec<ScopedServer> = Vec::new();
    for (wanted, tools) in entries {
        let Some(server) = backend.resolve(&wanted) else {
            continue;
        };
        if !backend.may_use(caller, &server) {
            continue;
        }
        let prefix = all
            .iter()
            .find(|s| s.name == server)
            .map_or_else(|| server.clone(), |s| s.prefix.clone());
        match servers.iter_mut().find(|s| s.name == server) {
            // Two entries for one server: the union of their picks.
            Some(existing) => match (&mut existing.tools, tools) {
                (Some(have), Some(more)) => have.extend(more),
                (have, _) => *have = None,
            },
            None => servers.push(ScopedServer {
                name: server,
                prefix,
                tools,
            }),
        }
    }
    Ok(Scope {
        servers,
        single: false,
        lazy: false,
    })
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
        Ok(ScopedServer {
            name,
            prefix,
            tools: None,
        })
    };
    if let Some(one) = path_server {
        return Ok(Scope {
            servers: vec![pick(one)?],
            single: true,
            lazy: false,
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
                tools: None,
            })
            .collect();
        return Ok(Scope {
            servers,
            single: false,
            lazy: false,
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
        lazy: false,
    })
}
