//! The attached servers' tools as OpenAI function tools, and the way back from a
//! function name to (server, tool). In lazy mode (`gatehouse_mcp::lazy`) the model is
//! offered three functions — search, describe, call — in place of the schemas of every
//! tool that runs without approval; tools needing approval stay ordinary functions so
//! their calls still reach the client.

use std::collections::{HashMap, HashSet};

use gatehouse_mcp::lazy::{self, LazyCall, LazyCatalog};
use gatehouse_mcp::{Hub, naming};
use serde_json::{Map, Value, json};

use super::attach::{Approval, AttachedServer};
use super::execute::ToolCall;

#[derive(Debug, Clone)]
pub struct McpTool {
    pub server: String,
    /// The tool's name on its server.
    pub tool: String,
    pub schema: Value,
    pub approval: Approval,
}

/// The function tools offered to the model for one request.
#[derive(Debug, Default)]
pub struct ToolSet {
    /// OpenAI `tools` entries, appended beside the client's own.
    pub functions: Vec<Value>,
    by_name: HashMap<String, McpTool>,
    /// Servers whose tools could not be listed, with why. Their absence does not fail
    /// the request: the other servers' tools still work.
    pub unavailable: Vec<(String, String)>,
    /// Every attached server, for recognising calls to tools they do not have.
    servers: Vec<String>,
    /// Lazy mode: the tools the three meta functions search, describe and call.
    lazy: Option<LazyCatalog>,
}

/// What one of the model's calls to an MCP-side function becomes.
pub enum Resolved {
    /// Run this tool (for `call_tool`, the call rewritten to the named tool).
    Run(ToolCall, McpTool),
    /// Answered by the gateway itself: a lazy search or describe, or why a lazy call
    /// cannot run.
    Answer {
        call: ToolCall,
        result: Result<Value, String>,
    },
    /// A name in an attached server's namespace that no tool has.
    Unknown(ToolCall),
}

impl ToolSet {
    /// `lazy`: offer the three lazy-catalog functions instead of the schemas (ignored,
    /// with a warning, when the client brings a function of the same name).
    pub async fn build(
        hub: &Hub,
        attached: &[AttachedServer],
        client_names: &HashSet<String>,
        lazy: bool,
    ) -> ToolSet {
        let listings =
            futures_util::future::join_all(attached.iter().map(|a| hub.list_tools(&a.server)))
                .await;
        let mut set = ToolSet {
            servers: attached.iter().map(|a| a.server.clone()).collect(),
            ..ToolSet::default()
        };
        let meta = [lazy::SEARCH_TOOL, lazy::DESCRIBE_TOOL, lazy::CALL_TOOL];
        let lazy = lazy
            && {
                let clash = meta.iter().any(|m| client_names.contains(*m));
                if clash {
                    tracing::warn!(
                        "the request brings a function named like a lazy-catalog tool; offering the full MCP catalog"
                    );
                }
                !clash
            };
        let mut folded: Vec<Value> = Vec::new();
        for (server, listing) in attached.iter().zip(listings) {
            let tools = match listing {
                Ok(tools) => tools,
                Err(e) => {
                    tracing::warn!(server = %server.server, error = %e, "MCP server unavailable; its tools are not offered");
                    set.unavailable.push((server.server.clone(), e.to_string()));
                    continue;
                }
            };
            for tool in tools {
                if let Some(allowed) = &server.allowed_tools
                    && !allowed.iter().any(|a| a == &tool.name)
                {
                    continue;
                }
                let name = naming::prefixed(&server.server, &tool.name);
                if client_names.contains(&name) || set.by_name.contains_key(&name) {
                    tracing::warn!(tool = %name, "MCP tool name collides with another tool; skipped");
                    continue;
                }
                let schema = vendor_schema(&tool.input_schema);
                let mut function = Map::new();
                function.insert("name".into(), json!(name));
                if let Some(d) = &tool.description {
                    function.insert("description".into(), json!(d));
                }
                if lazy && server.approval == Approval::Never {
                    // Searched and described by name; the schema as MCP lists it.
                    folded.push(json!({"name": name, "description": tool.description, "inputSchema": schema}));
                } else {
                    function.insert("parameters".into(), schema.clone());
                    set.functions
                        .push(json!({"type": "function", "function": function}));
                }
                set.by_name.insert(
                    name,
                    McpTool {
                        server: server.server.clone(),
                        tool: tool.name.clone(),
                        schema,
                        approval: server.approval,
                    },
                );
            }
        }
        if lazy && !folded.is_empty() {
            for tool in lazy::meta_tools() {
                set.functions.push(json!({"type": "function", "function": {
                    "name": tool["name"],
                    "description": tool["description"],
                    "parameters": tool["inputSchema"],
                }}));
            }
            set.lazy = Some(LazyCatalog::new(folded));
        }
        set
    }

    pub fn get(&self, function_name: &str) -> Option<&McpTool> {
        self.by_name.get(function_name)
    }

    /// Whether the gateway answers a call of this function: an MCP tool that runs
    /// without approval, one of the lazy functions, or a name in a server's namespace.
    pub fn runs_here(&self, function_name: &str) -> bool {
        match self.get(function_name) {
            Some(tool) => tool.approval == Approval::Never,
            None => self.is_meta(function_name) || self.claims(function_name),
        }
    }

    fn is_meta(&self, function_name: &str) -> bool {
        self.lazy.is_some()
            && matches!(
                function_name,
                lazy::SEARCH_TOOL | lazy::DESCRIBE_TOOL | lazy::CALL_TOOL
            )
    }

    /// What a call the gateway answers (see [`Self::runs_here`]) does.
    pub fn resolve(&self, call: &ToolCall) -> Resolved {
        if let Some(tool) = self.get(&call.name) {
            return Resolved::Run(call.clone(), tool.clone());
        }
        let Some(catalog) = self.lazy.as_ref().filter(|_| self.is_meta(&call.name)) else {
            return Resolved::Unknown(call.clone());
        };
        let answer = |result| Resolved::Answer {
            call: call.clone(),
            result,
        };
        let arguments = match serde_json::from_str::<Value>(if call.arguments.trim().is_empty() {
            "{}"
        } else {
            &call.arguments
        }) {
            Ok(v) => v,
            Err(e) => return answer(Err(format!("arguments are not valid JSON: {e}"))),
        };
        match lazy::parse_call(&call.name, &arguments) {
            Err(reason) => answer(Err(reason)),
            Ok(None) => Resolved::Unknown(call.clone()),
            Ok(Some(LazyCall::Search { query, limit })) => {
                answer(Ok(json!({"tools": catalog.search(&query, limit)})))
            }
            Ok(Some(LazyCall::Describe { name })) => answer(
                catalog
                    .describe(&name)
                    .cloned()
                    .ok_or_else(|| format!("unknown tool '{name}'; search_tools lists the tools")),
            ),
            Ok(Some(LazyCall::Call { name, arguments })) => {
                // Only folded tools: one needing approval is called by its own name,
                // so that the call reaches the client.
                match self
                    .get(&name)
                    .filter(|_| catalog.describe(&name).is_some())
                {
                    Some(tool) => Resolved::Run(
                        ToolCall {
                            id: call.id.clone(),
                            name,
                            arguments: arguments.to_string(),
                        },
                        tool.clone(),
                    ),
                    None => answer(Err(format!(
                        "unknown tool '{name}'; search_tools lists the tools"
                    ))),
                }
            }
        }
    }

    /// Whether the name is in an attached server's namespace (`<server>-...`) even if no
    /// such tool exists: such a call is answered with an error, never sent to the client.
    pub fn claims(&self, function_name: &str) -> bool {
        self.servers.iter().any(|s| {
            function_name
                .strip_prefix(s.as_str())
                .is_some_and(|rest| rest.starts_with(naming::SEPARATOR))
        })
    }
}

/// An MCP input schema as every vendor accepts a function's parameters: an object
/// schema with `properties`, without the `$schema` marker some vendors reject.
pub fn vendor_schema(schema: &Value) -> Value {
    let mut out = match schema {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    out.remove("$schema");
    out.insert("type".into(), json!("object"));
    out.entry("properties").or_insert_with(|| json!({}));
    Value::Object(out)
}

/// Checks call arguments against the parts of the schema every call must satisfy: a
/// JSON object carrying each `required` property with a value of the declared basic
/// type. Anything else fails closed, before the tool runs.
pub fn check_arguments(schema: &Value, arguments: &str) -> Result<Value, String> {
    let args: Value = if arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(arguments).map_err(|e| format!("arguments are not valid JSON: {e}"))?
    };
    let Value::Object(obj) = &args else {
        return Err("arguments must be a JSON object".into());
    };
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = required.as_str()
            && !obj.contains_key(name)
        {
            return Err(format!("missing required argument '{name}'"));
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    for (name, value) in obj {
        let Some(expected) = props.and_then(|p| p.get(name)).and_then(|p| p.get("type")) else {
            continue;
        };
        let ok = match expected {
            Value::String(t) => type_matches(t, value),
            Value::Array(ts) => ts
                .iter()
                .filter_map(Value::as_str)
                .any(|t| type_matches(t, value)),
            _ => true,
        };
        if !ok {
            return Err(format!("argument '{name}' must be of type {expected}"));
        }
    }
    Ok(args)
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "null" => v.is_null(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_checks_fail_closed() {
        let schema = json!({"type": "object", "properties": {"sql": {"type": "string"}, "n": {"type": "integer"}}, "required": ["sql"]});
        assert!(check_arguments(&schema, r#"{"sql": "select 1"}"#).is_ok());
        assert!(
            check_arguments(&schema, r#"{}"#)
                .unwrap_err()
                .contains("sql")
        );
        assert!(
            check_arguments(&schema, r#"{"sql": 5}"#)
                .unwrap_err()
                .contains("string")
        );
        assert!(check_arguments(&schema, r#"{"sql": "x", "n": 1.5}"#).is_err());
        assert!(check_arguments(&schema, "not json").is_err());
        assert!(check_arguments(&schema, "[1]").is_err());
        assert!(check_arguments(&json!({"type": "object"}), "").is_ok());
    }

    #[test]
    fn schemas_become_object_schemas() {
        assert_eq!(
            vendor_schema(&json!({"$schema": "x", "properties": {"a": {}}})),
            json!({"properties": {"a": {}}, "type": "object"})
        );
        assert_eq!(
            vendor_schema(&Value::Null),
            json!({"type": "object", "properties": {}})
        );
    }
}
