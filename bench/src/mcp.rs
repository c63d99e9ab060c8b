//! The MCP wire bits the benchmark needs: JSON-RPC request bodies, and finding the
//! response to one request in a streamable-HTTP answer, which may be a plain JSON body
//! or an SSE stream (notifications first, then the response, as `data:` lines).

use serde_json::{Value, json};

/// The protocol revision the benchmark negotiates (what current hosts send).
pub const PROTOCOL_VERSION: &str = "2025-06-18";
/// What a streamable-HTTP client must accept on every POST.
pub const ACCEPT: &str = "application/json, text/event-stream";
pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";

/// The MCP methods the benchmark times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    ToolsList,
    ToolsCall,
    /// The same on an aggregated endpoint (`/mcp`), where server-everything is the server
    /// `ev` and its tools are `ev-<tool>`.
    AggregatedToolsList,
    AggregatedToolsCall,
}

impl Method {
    pub fn label(self) -> &'static str {
        match self {
            Method::ToolsList | Method::AggregatedToolsList => "tools/list",
            Method::ToolsCall | Method::AggregatedToolsCall => "tools/call",
        }
    }

    /// The echo tool's name as this endpoint lists it.
    fn echo(self) -> &'static str {
        match self {
            Method::ToolsList | Method::ToolsCall => "echo",
            Method::AggregatedToolsList | Method::AggregatedToolsCall => "ev-echo",
        }
    }

    /// What a user of the answer would check: `tools/list` lists `echo`; `tools/call`
    /// echoes the message back (server-everything answers "Echo: bench").
    fn check_result(self, result: &Value) -> Result<(), RpcFailure> {
        let ok = match self {
            Method::ToolsList | Method::AggregatedToolsList => result
                .get("tools")
                .and_then(Value::as_array)
                .is_some_and(|tools| {
                    tools
                        .iter()
                        .any(|t| t.get("name") == Some(&json!(self.echo())))
                }),
            Method::ToolsCall | Method::AggregatedToolsCall => result
                .pointer("/content/0/text")
                .and_then(Value::as_str)
                .is_some_and(|text| text.contains("bench")),
        };
        if ok {
            Ok(())
        } else {
            Err(RpcFailure::Unexpected(self.label(), short(result)))
        }
    }

    /// The body with `{id}` left out: `(before the id, after the id)`, so a fresh id can
    /// be put in per request without building JSON each time.
    pub fn body_parts(self) -> (&'static str, &'static str) {
        match self {
            Method::ToolsList => (
                r#"{"jsonrpc":"2.0","id":"#,
                r#","method":"tools/list","params":{}}"#,
            ),
            Method::ToolsCall => (
                r#"{"jsonrpc":"2.0","id":"#,
                r#","method":"tools/call","params":{"name":"echo","arguments":{"message":"bench"}}}"#,
            ),
            Method::AggregatedToolsList => (
                r#"{"jsonrpc":"2.0","id":"#,
                r#","method":"tools/list","params":{}}"#,
            ),
            Method::AggregatedToolsCall => (
                r#"{"jsonrpc":"2.0","id":"#,
                r#","method":"tools/call","params":{"name":"ev-echo","arguments":{"message":"bench"}}}"#,
            ),
        }
    }
}

/// The `initialize` request that opens a session.
pub fn initialize_body(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"gatehouse-bench","version":"0.1.0"}}}}}}"#
    )
}

pub const INITIALIZED_BODY: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// Why an answer does not count as a successful response to request `id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcFailure {
    #[error("no JSON-RPC response with id {0} in the body")]
    Missing(u64),
    #[error("JSON-RPC error: {0}")]
    Error(String),
    #[error("the tool reported an error: {0}")]
    ToolError(String),
    #[error("response {0} has neither result nor error")]
    Malformed(u64),
    #[error("{0} result is not what was asked for: {1}")]
    Unexpected(&'static str, String),
}

/// Finds the JSON-RPC response to request `id` in `body` (JSON or SSE) and checks that it
/// carries a `result` (not one flagged `isError`) and, given `method`, the content that
/// method must return.
pub fn check_response(body: &[u8], id: u64, method: Option<Method>) -> Result<(), RpcFailure> {
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    let response = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::from_str::<Value>(trimmed)
            .ok()
            .and_then(|v| matching(v, id))
    } else {
        sse_data(&text)
            .into_iter()
            .filter_map(|data| serde_json::from_str::<Value>(&data).ok())
            .find_map(|v| matching(v, id))
    };
    let response = response.ok_or(RpcFailure::Missing(id))?;
    if let Some(error) = response.get("error") {
        return Err(RpcFailure::Error(short(error)));
    }
    match response.get("result") {
        Some(result) if result.get("isError") == Some(&Value::Bool(true)) => {
            Err(RpcFailure::ToolError(short(result)))
        }
        Some(result @ Value::Object(_)) => match method {
            Some(method) => method.check_result(result),
            None => Ok(()),
        },
        _ => Err(RpcFailure::Malformed(id)),
    }
}

/// The response with this id: the value itself, or the member of a batch.
fn matching(value: Value, id: u64) -> Option<Value> {
    let is_it = |v: &Value| {
        v.get("id").and_then(Value::as_u64) == Some(id)
            && (v.get("result").is_some() || v.get("error").is_some())
    };
    match value {
        Value::Array(items) => items.into_iter().find(is_it),
        v if is_it(&v) => Some(v),
        _ => None,
    }
}

/// The data of each SSE event: its `data:` lines joined by `\n` (one optional space after
/// the colon is not part of the value). Events end at a blank line or the end of the body;
/// `\r\n` and `\n` line ends are both accepted.
pub fn sse_data(text: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut current: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            events.extend(current.take());
            continue;
        }
        let value = if line == "data" {
            Some("")
        } else {
            line.strip_prefix("data:")
                .map(|v| v.strip_prefix(' ').unwrap_or(v))
        };
        if let Some(value) = value {
            match current.as_mut() {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => current = Some(value.to_string()),
            }
        }
    }
    events.extend(current);
    events
}

fn short(v: &Value) -> String {
    v.to_string().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_result_with_the_matching_id_passes() {
        let body = br#"{"jsonrpc":"2.0","id":7,"result":{"tools":[]}}"#;
        assert_eq!(check_response(body, 7, None), Ok(()));
        assert_eq!(check_response(body, 8, None), Err(RpcFailure::Missing(8)));
    }

    #[test]
    fn sse_stream_is_searched_past_notifications_and_other_ids() {
        // What server-everything sends: `event:` and `id:` lines around a `data:` line,
        // here after a progress notification and a response to an older request.
        let body = "event: message\r\nid: a1\r\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\r\n\r\n\
                    event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-1,\"message\":\"old\"}}\n\n\
                    event: message\nid: a3\ndata: {\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"Echo: bench\"}]},\"jsonrpc\":\"2.0\",\"id\":3}\n\n";
        assert_eq!(check_response(body.as_bytes(), 3, None), Ok(()));
        assert!(matches!(
            check_response(body.as_bytes(), 2, None),
            Err(RpcFailure::Error(m)) if m.contains("old")
        ));
        assert_eq!(
            check_response(body.as_bytes(), 4, None),
            Err(RpcFailure::Missing(4))
        );
    }

    #[test]
    fn errors_tool_errors_and_cut_streams_fail() {
        let error =
            br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found"}}"#;
        assert!(matches!(
            check_response(error, 1, None),
            Err(RpcFailure::Error(m)) if m.contains("Method not found")
        ));
        let tool_error = b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"isError\":true,\"content\":[]}}\n\n";
        assert!(matches!(
            check_response(tool_error, 1, None),
            Err(RpcFailure::ToolError(_))
        ));
        // The stream ended in the middle of the JSON: no response, not a success.
        let cut = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"res";
        assert_eq!(check_response(cut, 1, None), Err(RpcFailure::Missing(1)));
        let null_result = br#"{"jsonrpc":"2.0","id":1,"result":null}"#;
        assert_eq!(
            check_response(null_result, 1, None),
            Err(RpcFailure::Malformed(1))
        );
        assert_eq!(check_response(b"", 1, None), Err(RpcFailure::Missing(1)));
    }

    #[test]
    fn multi_line_data_is_joined_and_a_final_event_needs_no_blank_line() {
        assert_eq!(
            sse_data("data: {\"a\":\ndata:1}\n\nevent: x\ndata:2"),
            vec!["{\"a\":\n1}".to_string(), "2".to_string()]
        );
        let split = "data: {\"jsonrpc\":\"2.0\",\ndata: \"id\":5,\"result\":{}}\n";
        assert_eq!(check_response(split.as_bytes(), 5, None), Ok(()));
    }

    #[test]
    fn results_must_carry_what_the_method_returns() {
        let list =
            br#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"get-sum"},{"name":"echo"}]}}"#;
        assert_eq!(check_response(list, 2, Some(Method::ToolsList)), Ok(()));
        let empty = br#"{"jsonrpc":"2.0","id":2,"result":{"tools":[]}}"#;
        assert!(matches!(
            check_response(empty, 2, Some(Method::ToolsList)),
            Err(RpcFailure::Unexpected("tools/list", _))
        ));
        let aggregated = br#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"ev-echo"}]}}"#;
        assert_eq!(
            check_response(aggregated, 2, Some(Method::AggregatedToolsList)),
            Ok(())
        );
        assert!(check_response(aggregated, 2, Some(Method::ToolsList)).is_err());
        let (before, after) = Method::AggregatedToolsCall.body_parts();
        let v: Value = serde_json::from_str(&format!("{before}9{after}")).unwrap();
        assert_eq!(v["params"]["name"], "ev-echo");
        let echo = b"event: message\ndata: {\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"Echo: bench\"}]},\"jsonrpc\":\"2.0\",\"id\":3}\n\n";
        assert_eq!(check_response(echo, 3, Some(Method::ToolsCall)), Ok(()));
        let other =
            br#"{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"Echo: x"}]}}"#;
        assert!(matches!(
            check_response(other, 3, Some(Method::ToolsCall)),
            Err(RpcFailure::Unexpected("tools/call", _))
        ));
    }

    #[test]
    fn bodies_carry_the_id_and_the_method() {
        let (before, after) = Method::ToolsCall.body_parts();
        let body = format!("{before}42{after}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], 42);
        assert_eq!(v["method"], "tools/call");
        assert_eq!(v["params"]["name"], "echo");
        assert_eq!(v["params"]["arguments"]["message"], "bench");
        let (before, after) = Method::ToolsList.body_parts();
        let v: Value = serde_json::from_str(&format!("{before}1{after}")).unwrap();
        assert_eq!(v["method"], "tools/list");
        let v: Value = serde_json::from_str(&initialize_body(1)).unwrap();
        assert_eq!(v["params"]["protocolVersion"], PROTOCOL_VERSION);
        let v: Value = serde_json::from_str(INITIALIZED_BODY).unwrap();
        assert!(v.get("id").is_none(), "a notification has no id");
    }
}
