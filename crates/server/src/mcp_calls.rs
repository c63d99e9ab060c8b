//! MCP tool calls made by clients on the MCP endpoint (`/mcp*`, `/toolset/*`, the REST
//! `/mcp/invoke` and `/v1/mcp/tools/call`) count against the key's rate limit and are
//! written to the audit table, like the calls the tool loop makes.
//!
//! A middleware in front of the MCP router: it reads the (size-limited) body once, finds
//! the `tools/call`s in it (a JSON-RPC message, a batch, or a REST call body), admits
//! each under the key's rpm/parallel limit — refusing with 429 and LiteLLM's headers —
//! lets the endpoint answer, then writes one audit row per call (sizes, never contents).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::state::AppState;

/// One tool call found in a request body.
struct Call {
    server: String,
    tool: String,
    args_size: u64,
    /// The JSON-RPC id, for an error answered in JSON-RPC.
    id: Value,
}

pub async fn account_mcp_calls(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, state.settings.max_request_bytes).await else {
        return crate::error::ApiError::PayloadTooLarge {
            limit_mb: state.settings.max_request_size_mb,
        }
        .into_response();
    };
    let calls = tool_calls(parts.uri.path(), &bytes);
    let caller = parts.extensions.get::<Caller>().cloned();
    let req = Request::from_parts(parts, Body::from(bytes));
    let (Some(caller), false) = (caller, calls.is_empty()) else {
        return next.run(req).await;
    };
    let key_hash = caller.owner().to_owned();
    let limits = caller
        .key
        .as_ref()
        .map(|k| crate::limits::KeyLimits {
            rpm: k.rpm_limit,
            tpm: k.tpm_limit,
            max_parallel: k.max_parallel_requests,
        })
        .unwrap_or_default();
    let mut permits = Vec::new();
    if !limits.is_unlimited() {
        for call in &calls {
            match state.limiter.admit(&key_hash, &limits).await {
                Ok(permit) => permits.push(permit),
                Err(refusal) => return refused(&refusal, &call.id, is_jsonrpc(req.uri().path())),
            }
        }
    }
    let request_id = req
        .extensions()
        .get::<crate::request::RequestId>()
        .map(|r| r.0.clone());
    let started = Instant::now();
    let response = next.run(req).await;
    let outcome = if response.status().is_success() {
        "ok"
    } else {
        "error"
    };
    let result_size = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    for call in calls {
        crate::spend::write_audit(
            &state,
            gatehouse_store::AuditRow {
                key_hash: key_hash.clone(),
                request_id: request_id.clone(),
                server: call.server,
                tool: call.tool,
                duration_ms: started.elapsed().as_millis() as u64,
                outcome: outcome.to_owned(),
                args_size: call.args_size,
                result_size,
                created_at: chrono::Utc::now(),
            },
        );
    }
    drop(permits);
    response
}

fn is_jsonrpc(path: &str) -> bool {
    !(path == "/mcp/invoke" || path.starts_with("/v1/mcp/"))
}

/// The tool calls a body makes: REST bodies name `server` + `tool` or `name`
/// (`<server>-<tool>`); JSON-RPC messages (and batches) with `method: tools/call` name the
/// tool in `params.name` (aggregated `<server>-<tool>`, or plain on `/mcp/<server>`).
fn tool_calls(path: &str, body: &[u8]) -> Vec<Call> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let path_server = path
        .strip_prefix("/mcp/")
        .filter(|s| !s.is_empty() && !s.contains('/'))
        .filter(|s| !matches!(*s, "sse" | "message" | "tools" | "invoke"));
    if !is_jsonrpc(path) {
        let args_size = value
            .get("arguments")
            .map_or(0, |a| a.to_string().len() as u64);
        let (server, tool) = match (
            value.get("server").and_then(Value::as_str),
            value.get("tool").and_then(Value::as_str),
            value.get("name").and_then(Value::as_str),
        ) {
            (Some(server), Some(tool), _) => (server.to_owned(), tool.to_owned()),
            (_, _, Some(name)) => split(name, None),
            _ => return Vec::new(),
        };
        return vec![Call {
            server,
            tool,
            args_size,
            id: Value::Null,
        }];
    }
    let messages = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    messages
        .iter()
        .filter(|m| m.get("method").and_then(Value::as_str) == Some("tools/call"))
        .filter_map(|m| {
            let params = m.get("params")?;
            let name = params.get("name")?.as_str()?;
            let (server, tool) = split(name, path_server);
            Some(Call {
                server,
                tool,
                args_size: params
                    .get("arguments")
                    .map_or(0, |a| a.to_string().len() as u64),
                id: m.get("id").cloned().unwrap_or(Value::Null),
            })
        })
        .take(64)
        .collect()
}

/// `<server>-<tool>` → (server, tool); on a single-server route the name is the tool.
fn split(name: &str, path_server: Option<&str>) -> (String, String) {
    match path_server {
        Some(server) => (server.to_owned(), name.to_owned()),
        None => match name.split_once('-') {
            Some((server, tool)) => (server.to_owned(), tool.to_owned()),
            None => (String::new(), name.to_owned()),
        },
    }
}

fn refused(refusal: &crate::limits::Refusal, id: &Value, jsonrpc: bool) -> Response {
    let mut headers = axum::http::HeaderMap::new();
    crate::limits::refusal_headers(&mut headers, refusal);
    let mut response = if jsonrpc {
        let body = json!({"jsonrpc": "2.0", "id": id,
            "error": {"code": -32000, "message": refusal.to_string()}});
        (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
    } else {
        crate::error::ApiError::RateLimited(refusal.to_string()).into_response()
    };
    response.headers_mut().extend(headers);
    response
}
