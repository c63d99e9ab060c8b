//! Semantic checks on a typed config. Every check runs; all problems are returned.

use std::collections::HashSet;

use crate::error::ConfigError;
use crate::lines::{LineIndex, child_index, child_key};
use crate::provider::{ResolveError, resolve};
use crate::schema::{Config, McpServerConfig};
use crate::transport::McpTransport;

struct Checker<'a> {
    lines: &'a LineIndex,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn err(&mut self, path: String, message: impl Into<String>) {
        self.errors.push(ConfigError {
            line: self.lines.line(&path),
            path,
            message: message.into(),
        });
    }
}

/// Runs every check and returns the problems found, in file order per section.
pub(crate) fn validate(config: &Config, lines: &LineIndex) -> Vec<ConfigError> {
    let mut c = Checker {
        lines,
        errors: Vec::new(),
    };
    models(config, &mut c);
    mcp(config, &mut c);
    toolsets(config, &mut c);
    keys(config, &mut c);
    c.errors
}

fn models(config: &Config, c: &mut Checker<'_>) {
    for (i, m) in config.model_list.iter().enumerate() {
        let path = child_index("model_list", i);
        if m.model_name.trim().is_empty() {
            c.err(
                child_key(&path, "model_name"),
                "model_name must not be empty",
            );
        }
        let params = child_key(&path, "litellm_params");
        let p = &m.litellm_params;
        if p.model.trim().is_empty() {
            c.err(child_key(&params, "model"), "model must not be empty");
        } else if let Err(e) = resolve(&p.model, p.custom_llm_provider.as_deref()) {
            // Point at the key that named the bad provider.
            let key = match (&e, &p.custom_llm_provider) {
                (ResolveError::UnknownProvider { .. }, Some(_)) => "custom_llm_provider",
                _ => "model",
            };
            c.err(child_key(&params, key), e.to_string());
        }
        if let Some(w) = p.weight
            && !(w >= 0.0 && w.is_finite())
        {
            c.err(
                child_key(&params, "weight"),
                format!("weight must be a non-negative number, got {w}"),
            );
        }
        for (key, v) in [("timeout", p.timeout), ("stream_timeout", p.stream_timeout)] {
            if let Some(v) = v
                && !(v > 0.0 && v.is_finite())
            {
                c.err(
                    child_key(&params, key),
                    format!("{key} must be a positive number of seconds, got {v}"),
                );
            }
        }
        if let Some(base) = &p.api_base
            && !is_http_url(base)
        {
            c.err(
                child_key(&params, "api_base"),
                format!("api_base must be an http(s) URL, got {base:?}"),
            );
        }
        let info = child_key(&path, "model_info");
        for (j, name) in m.model_info.mcp_servers.iter().enumerate() {
            if !names_server(config, name) {
                c.err(
                    child_index(&child_key(&info, "mcp_servers"), j),
                    format!(
                        "no MCP server or alias named \"{name}\"{}",
                        hint(config, name)
                    ),
                );
            }
        }
    }
}

fn mcp(config: &Config, c: &mut Checker<'_>) {
    for (name, s) in &config.mcp_servers {
        let path = child_key("mcp_servers", name);
        if let Err(why) = check_server_name(name) {
            c.err(path.clone(), why);
        }
        server(s, &path, c);
    }
    for (alias, target) in &config.litellm_settings.mcp_aliases {
        let path = child_key("litellm_settings.mcp_aliases", alias);
        if config.mcp_servers.contains_key(alias) {
            c.err(
                path.clone(),
                format!("alias \"{alias}\" is also the name of an MCP server"),
            );
        }
        if !config.mcp_servers.contains_key(target) {
            c.err(
                path,
                format!("alias points at \"{target}\", which is not a configured MCP server"),
            );
        }
    }
}

/// Toolset names are URL path segments; their servers must exist; `catalog` is known.
fn toolsets(config: &Config, c: &mut Checker<'_>) {
    for (name, t) in &config.toolsets {
        let path = child_key("toolsets", name);
        if let Err(why) = check_server_name(name) {
            c.err(path.clone(), why.replace("MCP server name", "toolset name"));
        }
        if t.tools.is_empty() {
            c.err(
                child_key(&path, "tools"),
                "a toolset needs at least one `server` entry",
            );
        }
        for (i, e) in t.tools.iter().enumerate() {
            if !names_server(config, &e.server) {
                c.err(
                    child_key(&child_index(&child_key(&path, "tools"), i), "server"),
                    format!(
                        "\"{}\" is not a configured MCP server{}",
                        e.server,
                        hint(config, &e.server)
                    ),
                );
            }
        }
    }
    if let Some(mode) = &config.mcp_settings.catalog
        && !matches!(mode.as_str(), "full" | "lazy")
    {
        c.err(
            "mcp_settings.catalog".into(),
            format!("unknown catalog mode {mode:?}: use full or lazy"),
        );
    }
}

fn server(s: &McpServerConfig, path: &str, c: &mut Checker<'_>) {
    match s.transport_kind() {
        None => c.err(
            child_key(path, "transport"),
            format!(
                "unknown transport {:?}: use stdio, http (streamable_http) or sse",
                s.transport.as_deref().unwrap_or_default()
            ),
        ),
        Some(McpTransport::Stdio) => {
            if s.command.as_deref().is_none_or(|cmd| cmd.trim().is_empty()) {
                c.err(path.to_string(), "a stdio server needs a `command`");
            }
        }
        Some(t @ (McpTransport::Http | McpTransport::Sse)) => match &s.url {
            None => c.err(
                path.to_string(),
                format!("an {} server needs a `url`", t.as_str()),
            ),
            Some(url) if !is_http_url(url) => c.err(
                child_key(path, "url"),
                format!("url must be an http:// or https:// URL, got {url:?}"),
            ),
            Some(_) => {}
        },
    }
    if s.allowed_tools.is_some() && s.disallowed_tools.is_some() {
        c.err(
            path.to_string(),
            "set allowed_tools or disallowed_tools, not both",
        );
    }
    if let Some(a) = &s.require_approval
        && a != "never"
        && a != "always"
    {
        c.err(
            child_key(path, "require_approval"),
            format!("require_approval must be \"never\" or \"always\", got {a:?}"),
        );
    }
    if let Some(t) = s.timeout
        && !(t > 0.0 && t.is_finite())
    {
        c.err(
            child_key(path, "timeout"),
            format!("timeout must be a positive number of seconds, got {t}"),
        );
    }
}

fn keys(config: &Config, c: &mut Checker<'_>) {
    let mut seen: HashSet<&str> = HashSet::new();
    let master = [
        &config.general_settings.master_key,
        &config.litellm_settings.master_key,
    ];
    for (i, k) in config.virtual_keys.iter().enumerate() {
        let path = child_index("virtual_keys", i);
        if k.api_key.trim().is_empty() {
            c.err(child_key(&path, "api_key"), "api_key must not be empty");
        } else if !seen.insert(k.api_key.as_str()) {
            // Never echo the key itself: error output ends up in logs.
            c.err(
                child_key(&path, "api_key"),
                "the same api_key is declared by another virtual key",
            );
        }
        if !k.api_key.is_empty()
            && master
                .iter()
                .any(|m| m.as_deref() == Some(k.api_key.as_str()))
        {
            c.err(
                child_key(&path, "api_key"),
                "a virtual key must not equal the master key",
            );
        }
        for (j, name) in k.mcp_servers.iter().flatten().enumerate() {
            if !names_server(config, name) {
                c.err(
                    child_index(&child_key(&path, "mcp_servers"), j),
                    format!(
                        "no MCP server or alias named \"{name}\"{}",
                        hint(config, name)
                    ),
                );
            }
        }
    }
}

fn names_server(config: &Config, name: &str) -> bool {
    config.mcp_servers.contains_key(name) || config.litellm_settings.mcp_aliases.contains_key(name)
}

fn hint(config: &Config, name: &str) -> String {
    config
        .mcp_servers
        .keys()
        .chain(config.litellm_settings.mcp_aliases.keys())
        .map(|n| (n, strsim::damerau_levenshtein(name, n)))
        .filter(|(_, d)| *d <= 2)
        .min_by_key(|(_, d)| *d)
        .map(|(n, _)| format!(" (did you mean \"{n}\"?)"))
        .unwrap_or_default()
}

/// Server names become tool-name prefixes (`<server>-<tool>`), so they are limited to
/// letters, digits and `_`; `-` is the separator and would make routing ambiguous.
fn check_server_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("MCP server name must not be empty".into());
    }
    if name.contains('-') {
        return Err(format!(
            "MCP server name \"{name}\" contains '-', which separates server and tool in tool names; use '_' (\"{}\")",
            name.replace('-', "_")
        ));
    }
    if !name
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
    {
        return Err(format!(
            "MCP server name \"{name}\" may contain only letters, digits and '_'"
        ));
    }
    Ok(())
}

/// A cheap structural check: `http(s)://` followed by a non-empty host. Enough to catch
/// a missing scheme or a stray space without a URL parser dependency.
pub(crate) fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    match rest {
        Some(rest) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
            let host = authority.rsplit('@').next().unwrap_or_default();
            !host.is_empty() && !host.starts_with(':') && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_http_url("http://mcp-postgres:8080/sse"));
        assert!(is_http_url("https://x.example/v1"));
        assert!(!is_http_url("mcp-postgres:8080/sse"));
        assert!(!is_http_url("ftp://x"));
        assert!(!is_http_url("http://"));
        assert!(!is_http_url("http://:80/x"));
        assert!(!is_http_url("http://a b"));
    }

    #[test]
    fn server_names() {
        assert!(check_server_name("db_main").is_ok());
        let e = check_server_name("db-main").unwrap_err();
        assert!(e.contains("'-'") && e.contains("db_main"), "{e}");
        assert!(check_server_name("db.main").is_err());
    }
}
