//! Which MCP servers a chat request gets, and may it use them.

use axum::http::HeaderMap;
use gatehouse_mcp::{Hub, McpCaller};
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Whether the model's calls to a server's tools run at once or go back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    Never,
    Always,
}

impl Approval {
    fn parse(value: Option<&Value>) -> Option<Self> {
        match value? {
            Value::String(s) if s.eq_ignore_ascii_case("always") => Some(Self::Always),
            Value::String(s) if s.eq_ignore_ascii_case("never") => Some(Self::Never),
            // OpenAI's object form ({"never": {"tool_names": [...]}}): anything but a
            // blanket "never" keeps the human in the loop.
            Value::Object(_) => Some(Self::Always),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct AttachedServer {
    /// Configured server name.
    pub server: String,
    /// The request narrowed the server's tools to these (original names).
    pub allowed_tools: Option<Vec<String>>,
    pub approval: Approval,
    /// The request's `x-mcp-<server>-<header>` headers for this server, prefix stripped:
    /// sent upstream on this server's tool calls only.
    pub headers: Vec<(String, String)>,
}

/// Collects the servers attached to this request and removes the `mcp` entries from its
/// `tools`. Unknown servers are 404 (naming what exists); servers the key may not use are
/// 403 — checked here, before any tool can run.
pub fn attachments(
    hub: &Hub,
    caller: &McpCaller,
    headers: &HeaderMap,
    body: &mut Map<String, Value>,
    model_servers: &[String],
) -> Result<Vec<AttachedServer>, ApiError> {
    let mut wanted: Vec<(String, Option<Vec<String>>, Option<Approval>)> = Vec::new();
    if let Some(list) = headers.get("x-mcp-servers").and_then(|v| v.to_str().ok()) {
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            wanted.push((name.to_string(), None, None));
        }
    }
    if let Some(Value::Array(tools)) = body.get_mut("tools") {
        let mut kept = Vec::with_capacity(tools.len());
        for tool in tools.drain(..) {
            if tool.get("type").and_then(Value::as_str) != Some("mcp") {
                kept.push(tool);
                continue;
            }
            let name = server_of_tool_entry(&tool).ok_or_else(|| ApiError::InvalidParam {
                message: "an mcp tool needs server_label or a server_url of the form gatehouse/mcp/<server>".into(),
                param: "tools",
            })?;
            wanted.push((
                name,
                allowed_tools(&tool),
                Approval::parse(tool.get("require_approval")),
            ));
        }
        *tools = kept;
    }
    if matches!(body.get("tools"), Some(Value::Array(t)) if t.is_empty()) {
        body.remove("tools");
    }
    for name in model_servers {
        wanted.push((name.clone(), None, None));
    }

    let mut attached: Vec<AttachedServer> = Vec::new();
    for (name, allowed, approval) in wanted {
        let server = hub.resolve(&name).ok_or_else(|| {
            ApiError::NotFound(format!(
                "unknown MCP server '{name}'; configured servers: {}",
                hub.server_names().join(", ")
            ))
        })?;
        if !hub.may_use(caller, &server) {
            return Err(ApiError::Forbidden(format!(
                "this key may not use MCP server '{server}'"
            )));
        }
        let configured = hub
            .server_config(&server)
            .and_then(|c| c.require_approval.as_deref())
            .map(|a| {
                if a.eq_ignore_ascii_case("always") {
                    Approval::Always
                } else {
                    Approval::Never
                }
            })
            .unwrap_or(Approval::Never);
        // The operator's "always" cannot be loosened by a request.
        let approval = match (configured, approval) {
            (Approval::Always, _) | (_, Some(Approval::Always)) => Approval::Always,
            _ => Approval::Never,
        };
        match attached.iter_mut().find(|a| a.server == server) {
            Some(existing) => {
                existing.allowed_tools = match (existing.allowed_tools.take(), allowed) {
                    (Some(mut a), Some(b)) => {
                        a.extend(b);
                        Some(a)
                    }
                    _ => None,
                };
                if approval == Approval::Always {
                    existing.approval = Approval::Always;
                }
            }
            None => attached.push(AttachedServer {
                headers: hub.client_headers(&server, headers),
                server,
                allowed_tools: allowed,
                approval,
            }),
        }
    }
    Ok(attached)
}

fn server_of_tool_entry(tool: &Value) -> Option<String> {
    if let Some(label) = tool
        .get("server_label")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return Some(label.to_string());
    }
    let url = tool.get("server_url").and_then(Value::as_str)?;
    let (_, name) = url.trim_end_matches('/').rsplit_once("/mcp/")?;
    Some(name.to_string()).filter(|n| !n.is_empty() && !n.contains('/'))
}

fn allowed_tools(tool: &Value) -> Option<Vec<String>> {
    let list = match tool.get("allowed_tools")? {
        Value::Array(a) => a,
        Value::Object(o) => o.get("tool_names")?.as_array()?,
        _ => return None,
    };
    Some(
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mcp_tool_entries_name_servers() {
        assert_eq!(
            server_of_tool_entry(&json!({"type": "mcp", "server_label": "db"})).as_deref(),
            Some("db")
        );
        assert_eq!(
            server_of_tool_entry(&json!({"type": "mcp", "server_url": "litellm_proxy/mcp/files"}))
                .as_deref(),
            Some("files")
        );
        assert_eq!(
            server_of_tool_entry(&json!({"type": "mcp", "server_url": "http://gw:4000/mcp/git/"}))
                .as_deref(),
            Some("git")
        );
        assert_eq!(server_of_tool_entry(&json!({"type": "mcp"})), None);
        assert_eq!(
            allowed_tools(&json!({"allowed_tools": {"tool_names": ["q"]}})),
            Some(vec!["q".to_string()])
        );
    }
}
