//! MCP approvals in the Responses API. A server attached with `require_approval` other
//! than `never` does not run its tools at once: the model's call comes back to the client
//! as an `mcp_approval_request` item, and the client answers in its next input with an
//! `mcp_approval_response` (`approve: true|false`), either in the input itself or after
//! `previous_response_id`. Approved calls run here, through the hub, before the model is
//! asked again; the pair becomes a chat tool call and its result.

use std::collections::HashSet;
use std::sync::Arc;

use gatehouse_mcp::naming;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::tools::AttachedServer;
use crate::tools::catalog::ToolSet;
use crate::tools::execute::{ServerHeaders, ToolCall, execute_all_with};

/// Whether `items` answer any approval request.
pub fn has_responses(items: &[Value]) -> bool {
    items.iter().any(|i| kind(i) == "mcp_approval_response")
}

fn kind(item: &Value) -> &str {
    item.get("type").and_then(Value::as_str).unwrap_or("")
}

fn str_of<'a>(item: &'a Value, key: &str) -> &'a str {
    item.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Runs the approved calls answered in `items` and rewrites each request/response pair
/// into a `function_call` and its `function_call_output` the chat mapping understands.
/// Returns the `mcp_call` items for the calls (run or denied), for the response output.
pub async fn resolve(
    hub: &Arc<gatehouse_mcp::Hub>,
    key_id: &str,
    attached: &[AttachedServer],
    items: &mut Vec<Value>,
) -> Vec<Value> {
    let tools = ToolSet::build(hub, attached, &HashSet::new(), false).await;
    let answers: Vec<(String, bool)> = items
        .iter()
        .filter(|i| kind(i) == "mcp_approval_response")
        .map(|i| {
            (
                str_of(i, "approval_request_id").to_owned(),
                i.get("approve").and_then(Value::as_bool).unwrap_or(false),
            )
        })
        .collect();
    // The requests being answered, with their flat chat function names.
    let mut approved = Vec::new();
    let mut reports = Vec::new();
    for item in items.iter() {
        if kind(item) != "mcp_approval_request" {
            continue;
        }
        let id = str_of(item, "id");
        let Some((_, approve)) = answers.iter().find(|(a, _)| a == id) else {
            continue;
        };
        let flat = naming::prefixed(str_of(item, "server_label"), str_of(item, "name"));
        let call = ToolCall {
            id: id.to_owned(),
            name: flat,
            arguments: str_of(item, "arguments").to_owned(),
        };
        match tools.get(&call.name) {
            Some(tool) if *approve => approved.push((call, tool.clone())),
            _ => reports.push((call, item.clone(), None)),
        }
    }
    // Approved calls carry the per-server client headers of the request that approved them.
    let headers: ServerHeaders = attached
        .iter()
        .map(|a| (a.server.clone(), a.headers.clone()))
        .collect();
    let outcomes = execute_all_with(
        hub,
        &approved,
        key_id,
        &CancellationToken::new(),
        None,
        &headers,
    )
    .await;
    for ((call, _), outcome) in approved.into_iter().zip(outcomes) {
        let request = items
            .iter()
            .find(|i| kind(i) == "mcp_approval_request" && str_of(i, "id") == call.id)
            .cloned()
            .unwrap_or(Value::Null);
        reports.push((call, request, Some(outcome)));
    }
    let mut mcp_calls = Vec::new();
    let mut results = Vec::new();
    for (call, request, outcome) in reports {
        let (output, error) = match &outcome {
            Some(o) if o.record.ok => (o.message.get("content").cloned(), None),
            Some(o) => (None, o.record.error.clone()),
            None => (None, Some("the call was not approved".to_owned())),
        };
        let text = match (&output, &error) {
            (Some(Value::String(s)), _) => s.clone(),
            (Some(other), _) => other.to_string(),
            (None, Some(e)) => format!("Error: {e}"),
            (None, None) => String::new(),
        };
        mcp_calls.push(json!({"id": format!("mcp_{}", call.id), "type": "mcp_call",
            "approval_request_id": call.id, "server_label": request.get("server_label"),
            "name": request.get("name"), "arguments": call.arguments,
            "output": output, "error": error,
            "status": if error.is_none() { "completed" } else { "failed" }}));
        results.push((call, text));
    }
    // Rewrite in place: request -> function_call, response -> its output.
    for item in items.iter_mut() {
        let id = match kind(item) {
            "mcp_approval_request" => str_of(item, "id").to_owned(),
            "mcp_approval_response" => str_of(item, "approval_request_id").to_owned(),
            _ => continue,
        };
        let Some((call, text)) = results.iter().find(|(c, _)| c.id == id) else {
            continue;
        };
        *item = if kind(item) == "mcp_approval_request" {
            json!({"type": "function_call", "call_id": call.id, "name": call.name,
                   "arguments": call.arguments})
        } else {
            json!({"type": "function_call_output", "call_id": call.id, "output": text})
        };
    }
    // Unanswered requests and stray responses have no chat equivalent.
    items.retain(|i| !matches!(kind(i), "mcp_approval_request" | "mcp_approval_response"));
    mcp_calls
}

/// Turns the loop's returned calls to approval-required MCP tools (plain
/// `function_call` items named `<server>-<tool>`) into `mcp_approval_request` items.
pub async fn requests(hub: &gatehouse_mcp::Hub, attached: &[AttachedServer], output: &mut [Value]) {
    if !output.iter().any(|i| kind(i) == "function_call") {
        return;
    }
    let tools = ToolSet::build(hub, attached, &HashSet::new(), false).await;
    for item in output.iter_mut() {
        if kind(item) != "function_call" || item.get("namespace").is_some() {
            continue;
        }
        let Some(tool) = tools.get(str_of(item, "name")) else {
            continue;
        };
        *item = json!({"id": format!("mcpr_{}", str_of(item, "call_id")),
            "type": "mcp_approval_request", "server_label": tool.server, "name": tool.tool,
            "arguments": str_of(item, "arguments")});
    }
}
