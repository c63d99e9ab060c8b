//! Responses tools, `tool_choice` and `text.format` -> their chat forms.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::names::{flat_name, hashed_name};
use super::request::{NamespacedTool, ResponsesContext, invalid};
use crate::MapError;
use crate::openai::{FunctionDef, NamedFunction, NamedToolChoice, Tool, ToolChoice};

pub(super) fn map_tools(
    tools: Option<&Value>,
    ctx: &mut ResponsesContext,
) -> Result<Option<Vec<Tool>>, MapError> {
    let Some(list) = tools.and_then(Value::as_array) else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(list.len());
    let mut used: BTreeSet<String> = BTreeSet::new();
    // Plain names first, so a namespaced function never takes a name a plain one has.
    for tool in list {
        if matches!(tool_type(tool), "function" | "custom") {
            used.insert(required_name(tool)?.to_owned());
        }
    }
    for tool in list {
        match tool_type(tool) {
            "function" => out.push(function_tool(tool, required_name(tool)?.to_owned())),
            "custom" => {
                let name = required_name(tool)?.to_owned();
                ctx.custom_tools.insert(name.clone());
                out.push(custom_tool(tool, name));
            }
            "namespace" => {
                let namespace = required_name(tool)?;
                for inner in tool
                    .get("tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let name = required_name(inner)?;
                    let mut flat = flat_name(namespace, name);
                    let mut salt = 1;
                    while used.contains(&flat) {
                        flat = hashed_name(&format!("{namespace}__{name}"), salt);
                        salt += 1;
                    }
                    used.insert(flat.clone());
                    ctx.namespaced.insert(
                        flat.clone(),
                        NamespacedTool {
                            namespace: namespace.to_owned(),
                            name: name.to_owned(),
                        },
                    );
                    match tool_type(inner) {
                        "custom" => {
                            ctx.custom_tools.insert(flat.clone());
                            out.push(custom_tool(inner, flat));
                        }
                        _ => out.push(function_tool(inner, flat)),
                    }
                }
            }
            "mcp" => ctx.mcp_tools.push(tool.clone()),
            // Hosted tools, and tool types newer than this mapper: Codex adds some with
            // each release, and failing its whole request over one would be worse
            // than running without it. The gateway logs the list.
            other => ctx.dropped_tools.push(other.to_owned()),
        }
    }
    Ok((!out.is_empty()).then_some(out))
}

fn tool_type(tool: &Value) -> &str {
    tool.get("type")
        .and_then(Value::as_str)
        .unwrap_or("function")
}

fn required_name(tool: &Value) -> Result<&str, MapError> {
    tool.get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            MapError::InvalidRequest(format!("{} tool without a `name`", tool_type(tool)))
        })
}

fn chat_tool(function: FunctionDef) -> Tool {
    Tool {
        kind: "function".to_owned(),
        function: Some(function),
        cache_control: None,
        rest: Map::new(),
    }
}

/// Responses' flat `{type, name, description, parameters, strict}` -> chat's nested one.
fn function_tool(tool: &Value, name: String) -> Tool {
    chat_tool(FunctionDef {
        name,
        description: tool
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        parameters: tool.get("parameters").filter(|p| !p.is_null()).cloned(),
        strict: tool.get("strict").and_then(Value::as_bool),
        rest: Map::new(),
    })
}

/// A custom tool takes free text; as a chat function it takes one string `input`. A
/// grammar the text must follow goes into the description, where the model can see it.
fn custom_tool(tool: &Value, name: String) -> Tool {
    let mut description = tool
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if let Some(format) = tool
        .get("format")
        .filter(|f| f.get("type").and_then(Value::as_str) == Some("grammar"))
    {
        let syntax = format
            .get("syntax")
            .and_then(Value::as_str)
            .unwrap_or("grammar");
        if let Some(definition) = format.get("definition").and_then(Value::as_str) {
            if !description.is_empty() {
                description.push_str("\n\n");
            }
            description.push_str(&format!(
                "The `input` must follow this {syntax} grammar:\n{definition}"
            ));
        }
    }
    chat_tool(FunctionDef {
        name,
        description: (!description.is_empty()).then_some(description),
        parameters: Some(json!({
            "type": "object",
            "properties": {"input": {"type": "string", "description": "The raw tool input."}},
            "required": ["input"],
            "additionalProperties": false,
        })),
        strict: None,
        rest: Map::new(),
    })
}

pub(super) fn map_tool_choice(
    choice: &Value,
    ctx: &mut ResponsesContext,
) -> Result<Option<ToolChoice>, MapError> {
    let named = |name: String| {
        Some(ToolChoice::Named(NamedToolChoice {
            kind: "function".to_owned(),
            function: NamedFunction { name },
        }))
    };
    match choice {
        Value::Null => Ok(None),
        Value::String(mode) => match mode.as_str() {
            "auto" | "none" | "required" => Ok(Some(ToolChoice::Mode(mode.clone()))),
            other => Err(MapError::InvalidRequest(format!(
                "tool_choice must be auto, none, required or an object; got {other:?}"
            ))),
        },
        Value::Object(obj) => match obj.get("type").and_then(Value::as_str) {
            Some("function" | "custom") => {
                let name = obj
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("tool_choice function without a `name`"))?;
                let flat = match obj.get("namespace").and_then(Value::as_str) {
                    Some(ns) => lookup_flat(ctx, ns, name),
                    None => name.to_owned(),
                };
                Ok(named(flat))
            }
            // The allowed subset is not enforced; the mode is.
            Some("allowed_tools") => {
                ctx.ignored.push("tool_choice.tools".to_owned());
                let mode = obj.get("mode").and_then(Value::as_str).unwrap_or("auto");
                Ok(Some(ToolChoice::Mode(mode.to_owned())))
            }
            _ => {
                // Forcing a hosted or MCP tool: not expressible; let the model choose.
                ctx.ignored.push("tool_choice".to_owned());
                Ok(None)
            }
        },
        _ => Err(invalid("tool_choice must be a string or an object")),
    }
}

/// The flat name a `(namespace, name)` pair got in this request, or the one it would get.
fn lookup_flat(ctx: &ResponsesContext, namespace: &str, name: &str) -> String {
    ctx.namespaced
        .iter()
        .find(|(_, ns)| ns.namespace == namespace && ns.name == name)
        .map_or_else(|| flat_name(namespace, name), |(flat, _)| flat.clone())
}

/// `text.format` -> chat `response_format`.
pub(super) fn map_text_format(format: &Value) -> Option<Value> {
    match format.get("type").and_then(Value::as_str)? {
        "json_schema" => {
            let mut schema = Map::new();
            for key in ["name", "description", "schema", "strict"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.to_owned(), v.clone());
                }
            }
            Some(json!({"type": "json_schema", "json_schema": schema}))
        }
        "json_object" => Some(json!({"type": "json_object"})),
        _ => None,
    }
}
