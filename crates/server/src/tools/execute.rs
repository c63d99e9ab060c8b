//! Running one round's MCP tool calls through the hub, in parallel, and turning each
//! outcome into the `tool` message the model sees next. A failing tool never fails the
//! request: the model gets an error result and can react to it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use gatehouse_mcp::{CallOptions, Hub};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::catalog::{McpTool, check_arguments};

/// One tool call the model made, as it came in its `tool_calls`.
#[derive(Debug, Clone)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl ToolCall {
    pub fn from_value(v: &Value) -> Option<ToolCall> {
        Some(ToolCall {
            id: v.get("id")?.as_str()?.to_string(),
            name: v.get("function")?.get("name")?.as_str()?.to_string(),
            arguments: v
                .get("function")
                .and_then(|f| f.get("arguments"))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
    }
}

/// What happened in one executed call: returned to the client in `mcp_calls`.
#[derive(Debug, Clone, Serialize)]
pub struct McpCallRecord {
    pub id: String,
    pub server: String,
    pub tool: String,
    pub arguments: Value,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the model was given as the result (Responses' `mcp_call.output`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    pub duration_ms: f64,
}

impl McpCallRecord {
    /// The audit view kept in spend logs: sizes, never arguments or results.
    pub fn sized(&self) -> Value {
        json!({
            "id": self.id,
            "server": self.server,
            "tool": self.tool,
            "ok": self.ok,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "arguments_bytes": self.arguments.to_string().len(),
            "output_bytes": self.output.as_ref().map_or(0, String::len),
        })
    }
}

/// Live news of the calls, for streaming clients.
#[derive(Debug, Clone)]
pub enum CallEvent {
    Started {
        id: String,
        server: String,
        tool: String,
    },
    Progress {
        id: String,
        progress: Value,
    },
    Finished(McpCallRecord),
}

pub struct Outcome {
    /// The `{"role": "tool", ...}` message for the next round.
    pub message: Value,
    pub record: McpCallRecord,
}

/// Per configured server name, the client's headers for that server's calls (see
/// `AttachedServer::headers`).
pub type ServerHeaders = HashMap<String, Vec<(String, String)>>;

/// Runs every call at once; results come back in the calls' order.
pub async fn execute_all(
    hub: &Arc<Hub>,
    calls: &[(ToolCall, McpTool)],
    key_id: &str,
    cancel: &CancellationToken,
    events: Option<&mpsc::UnboundedSender<CallEvent>>,
) -> Vec<Outcome> {
    execute_all_with(hub, calls, key_id, cancel, events, &ServerHeaders::new()).await
}

/// [`execute_all`], each call carrying its own server's client headers only.
pub async fn execute_all_with(
    hub: &Arc<Hub>,
    calls: &[(ToolCall, McpTool)],
    key_id: &str,
    cancel: &CancellationToken,
    events: Option<&mpsc::UnboundedSender<CallEvent>>,
    headers: &ServerHeaders,
) -> Vec<Outcome> {
    futures_util::future::join_all(calls.iter().map(|(call, tool)| {
        let headers = headers.get(&tool.server).cloned().unwrap_or_default();
        execute_one(hub, call, tool, key_id, cancel, events, headers)
    }))
    .await
}

/// The span of one tool execution (tracing on), under the request's.
fn tool_span(call: &ToolCall, tool: &McpTool) -> Option<crate::otel::Span> {
    let record = crate::spend::current()?;
    let mut span = record.child_span(
        format!("execute_tool {}", tool.tool),
        crate::otel::Kind::Internal,
    )?;
    span.set("gen_ai.operation.name", "execute_tool");
    span.set("gen_ai.tool.name", tool.tool.clone());
    span.set("gen_ai.tool.call.id", call.id.clone());
    span.set("gatehouse.mcp.server", tool.server.clone());
    Some(span)
}

async fn execute_one(
    hub: &Arc<Hub>,
    call: &ToolCall,
    tool: &McpTool,
    key_id: &str,
    cancel: &CancellationToken,
    events: Option<&mpsc::UnboundedSender<CallEvent>>,
    headers: Vec<(String, String)>,
) -> Outcome {
    let started = Instant::now();
    if let Some(tx) = events {
        let _ = tx.send(CallEvent::Started {
            id: call.id.clone(),
            server: tool.server.clone(),
            tool: tool.tool.clone(),
        });
    }
    let mut tool_span = tool_span(call, tool);
    let (arguments, result) = match check_arguments(&tool.schema, &call.arguments) {
        Err(reason) => (
            Value::String(call.arguments.clone()),
            Err(format!("invalid arguments for {}: {reason}", tool.tool)),
        ),
        Ok(args) => {
            let on_progress = events.map(|tx| {
                let tx = tx.clone();
                let id = call.id.clone();
                Arc::new(move |progress: Value| {
                    let _ = tx.send(CallEvent::Progress {
                        id: id.clone(),
                        progress,
                    });
                }) as Arc<dyn Fn(Value) + Send + Sync>
            });
            // The MCP request's own span; its context goes in `_meta` (SEP-414).
            let mut mcp_span = tool_span.as_ref().map(|s| {
                let mut span = s.child(
                    format!("tools/call {}", tool.tool),
                    crate::otel::Kind::Client,
                );
                span.set("mcp.method.name", "tools/call");
                span.set("gen_ai.tool.name", tool.tool.clone());
                span.set("gatehouse.mcp.server", tool.server.clone());
                span
            });
            let meta = mcp_span
                .as_ref()
                .and_then(crate::otel::Span::context)
                .map(|c| vec![("traceparent".to_owned(), Value::String(c.header()))])
                .unwrap_or_default();
            let options = CallOptions {
                cancel: Some(cancel.child_token()),
                on_progress,
                headers,
                meta,
                ..CallOptions::default()
            };
            let result = hub
                .call_tool_with(&tool.server, &tool.tool, args.clone(), options)
                .await;
            if let (Some(span), Err(e)) = (mcp_span.as_mut(), &result) {
                span.fail("mcp_error", e.to_string());
            }
            drop(mcp_span);
            let result = match result {
                Ok(r) if r.get("isError").and_then(Value::as_bool) == Some(true) => {
                    Err(result_text(&r))
                }
                Ok(r) => Ok(result_text(&r)),
                Err(e) => Err(e.to_string()),
            };
            (args, result)
        }
    };
    let duration = started.elapsed();
    let (ok, content, error) = match result {
        Ok(text) => (true, text, None),
        Err(text) => (false, format!("Error: {text}"), Some(text)),
    };
    let outcome = if ok { "ok" } else { "error" };
    if let Some(mut span) = tool_span.take() {
        if let Some(error) = &error {
            span.fail("tool_error", error.clone());
        }
        span.end();
    }
    metrics::counter!("gatehouse_mcp_tool_calls_total", "server" => tool.server.clone(), "outcome" => outcome).increment(1);
    metrics::histogram!("gatehouse_mcp_tool_seconds", "server" => tool.server.clone())
        .record(duration.as_secs_f64());
    // The audit trail: who ran what, how long, how it went; sizes, not contents.
    tracing::info!(
        target: "gatehouse::audit",
        key = %key_id,
        server = %tool.server,
        tool = %tool.tool,
        duration_ms = duration.as_secs_f64() * 1e3,
        outcome,
        arguments_bytes = call.arguments.len(),
        result_bytes = content.len(),
        "mcp tool executed"
    );
    crate::spend::with(|r| {
        r.audit(
            &tool.server,
            &tool.tool,
            duration.as_millis() as u64,
            outcome,
            call.arguments.len() as u64,
            content.len() as u64,
        )
    });
    let record = McpCallRecord {
        id: call.id.clone(),
        server: tool.server.clone(),
        tool: tool.tool.clone(),
        arguments,
        ok,
        error,
        output: Some(content.clone()),
        duration_ms: duration.as_secs_f64() * 1e3,
    };
    if let Some(tx) = events {
        let _ = tx.send(CallEvent::Finished(record.clone()));
    }
    Outcome {
        message: json!({"role": "tool", "tool_call_id": call.id, "content": content}),
        record,
    }
}

/// The answer to a call of a tool no attached server has.
pub fn unknown_tool(call: &ToolCall) -> Outcome {
    let error = format!("unknown tool '{}'", call.name);
    Outcome {
        message: json!({"role": "tool", "tool_call_id": call.id, "content": format!("Error: {error}")}),
        record: McpCallRecord {
            id: call.id.clone(),
            server: String::new(),
            tool: call.name.clone(),
            arguments: Value::String(call.arguments.clone()),
            ok: false,
            error: Some(error),
            output: None,
            duration_ms: 0.0,
        },
    }
}

/// The answer to a lazy-catalog search or describe, which the gateway gives itself.
pub fn catalog_answer(call: &ToolCall, result: Result<Value, String>) -> Outcome {
    let (ok, content, error) = match result {
        Ok(value) => (true, value.to_string(), None),
        Err(e) => (false, format!("Error: {e}"), Some(e)),
    };
    Outcome {
        message: json!({"role": "tool", "tool_call_id": call.id, "content": content}),
        record: McpCallRecord {
            id: call.id.clone(),
            // The gateway's own catalog, not a configured server.
            server: String::new(),
            tool: call.name.clone(),
            arguments: serde_json::from_str(&call.arguments)
                .unwrap_or_else(|_| Value::String(call.arguments.clone())),
            ok,
            error,
            output: Some(content),
            duration_ms: 0.0,
        },
    }
}

/// The text a model sees for an MCP `CallToolResult`: text parts as they are, other
/// parts described, structured content as JSON when there is no text.
pub fn result_text(result: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    for item in result
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match item.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(
                item.get("text")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ),
            Some("image") | Some("audio") => parts.push(format!(
                "[{} content, {}]",
                item.get("type").and_then(Value::as_str).unwrap_or("binary"),
                item.get("mimeType")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown type")
            )),
            Some("resource") => {
                let r = item.get("resource");
                let text = r.and_then(|r| r.get("text")).and_then(Value::as_str);
                let uri = r
                    .and_then(|r| r.get("uri"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                parts.push(
                    text.map(str::to_owned)
                        .unwrap_or_else(|| format!("[resource {uri}]")),
                );
            }
            Some("resource_link") => parts.push(format!(
                "[resource link {}]",
                item.get("uri").and_then(Value::as_str).unwrap_or("")
            )),
            _ => parts.push(item.to_string()),
        }
    }
    if parts.is_empty()
        && let Some(structured) = result.get("structuredContent")
    {
        return structured.to_string();
    }
    parts.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_become_text() {
        let r = json!({"content": [{"type": "text", "text": "a"}, {"type": "image", "data": "xx", "mimeType": "image/png"}]});
        assert_eq!(result_text(&r), "a\n[image content, image/png]");
        assert_eq!(
            result_text(&json!({"content": [], "structuredContent": {"x": 1}})),
            r#"{"x":1}"#
        );
    }
}
