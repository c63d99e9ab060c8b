//! Non-MCP routes over the same servers: JSON REST (`/v1/mcp/*`) and the LiteLLM-style SSE
//! routes (`/mcp/tools`, `/mcp/invoke`).
//!
//! SSE formats (LiteLLM documents the routes but not their frames, so these are ours):
//! - `POST /mcp/tools`: one `event: tools` per server, data
//!   `{"server": "<prefix>", "tools": [<Tool with aggregated name>...]}` or
//!   `{"server": "<prefix>", "error": "<message>"}`; then `event: done`, data
//!   `{"servers": <n>, "tools": <total>}`.
//! - `POST /mcp/invoke`: `event: progress` frames (data: MCP progress params) while the
//!   tool runs, then `event: result` (data: the `CallToolResult`) or `event: error`
//!   (data: `{"error": {"message": ...}}`).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::McpCaller;

use super::backend::RequestContext;
use super::dispatch;
use super::peer::ClientPeer;
use super::protocol::RpcError;
use super::scope::{self, Scope, ScopeError};
use super::{Ep, sse};

fn error(status: StatusCode, kind: &str, message: impl Into<String>) -> Response {
    let body = json!({"error": {"message": message.into(), "type": kind}});
    (status, axum::Json(body)).into_response()
}

fn boxed_error(status: StatusCode, kind: &str, message: impl Into<String>) -> Box<Response> {
    Box::new(error(status, kind, message))
}

fn unauthorized() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "authentication_error",
        "authentication required",
    )
}

fn scope_error(e: &ScopeError) -> Response {
    match e {
        ScopeError::Forbidden(_) => error(StatusCode::FORBIDDEN, "permission_error", e.to_string()),
        ScopeError::Unknown { .. } | ScopeError::UnknownToolset(_) => {
            error(StatusCode::NOT_FOUND, "not_found_error", e.to_string())
        }
    }
}

fn header_scope(ep: &Ep, caller: &McpCaller, headers: &HeaderMap) -> Result<Scope, ScopeError> {
    let wanted = headers
        .get(scope::SERVERS_HEADER)
        .and_then(|v| v.to_str().ok());
    scope::select(ep.backend.as_ref(), caller, None, wanted)
}

/// `GET /v1/mcp/servers`: the servers this caller may use. Never waits for an upstream:
/// `tool_count` is null for a server that is not ready (yet).
pub async fn servers(State(ep): State<Ep>, caller: Option<Extension<McpCaller>>) -> Response {
    let Some(Extension(caller)) = caller else {
        return unauthorized();
    };
    let backend = ep.backend.as_ref();
    let data: Vec<Value> = backend
        .servers()
        .into_iter()
        .filter(|s| backend.may_use(&caller, &s.name))
        .map(|s| {
            json!({
                "name": s.name,
                "prefix": s.prefix,
                "description": s.description,
                "transport": s.transport,
                "status": s.status,
                "tool_count": s.tool_count,
            })
        })
        .collect();
    (StatusCode::OK, axum::Json(json!({ "servers": data }))).into_response()
}

/// `GET /v1/mcp/tools`: aggregated tools of the `x-mcp-servers` selection (or all).
pub async fn tools(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    headers: HeaderMap,
) -> Response {
    let Some(Extension(caller)) = caller else {
        return unauthorized();
    };
    let scope = match header_scope(&ep, &caller, &headers) {
        Ok(s) => s,
        Err(e) => return scope_error(&e),
    };
    let tools = dispatch::list_tools(ep.backend.as_ref(), &scope).await;
    (StatusCode::OK, axum::Json(json!({ "tools": tools }))).into_response()
}

/// `{"name": "<server>-<tool>", "arguments"}` or `{"server", "tool", "arguments"}`.
#[derive(Deserialize)]
struct CallBody {
    name: Option<String>,
    server: Option<String>,
    tool: Option<String>,
    #[serde(default)]
    arguments: Value,
}

/// The scope and `tools/call` params a call body designates.
fn call_target(
    ep: &Ep,
    caller: &McpCaller,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Scope, Value), Box<Response>> {
    let body: CallBody = serde_json::from_slice(body).map_err(|e| {
        boxed_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            format!("invalid body: {e}"),
        )
    })?;
    let arguments = if body.arguments.is_null() {
        json!({})
    } else {
        body.arguments
    };
    match (body.server, body.tool, body.name) {
        (Some(server), Some(tool), _) => {
            let scope = scope::select(ep.backend.as_ref(), caller, Some(&server), None)
                .map_err(|e| Box::new(scope_error(&e)))?;
            Ok((scope, json!({"name": tool, "arguments": arguments})))
        }
        (None, None, Some(name)) => {
            let scope = header_scope(ep, caller, headers).map_err(|e| Box::new(scope_error(&e)))?;
            Ok((scope, json!({"name": name, "arguments": arguments})))
        }
        _ => Err(boxed_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "give `name` (`<server>-<tool>`) or `server` and `tool`",
        )),
    }
}

fn rpc_failure(e: &RpcError) -> Response {
    error(
        StatusCode::BAD_GATEWAY,
        "upstream_error",
        format!("{} ({})", e.message, e.code),
    )
}

/// `POST /v1/mcp/tools/call` → the `CallToolResult` as JSON.
pub async fn call(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(Extension(caller)) = caller else {
        return unauthorized();
    };
    let (scope, params) = match call_target(&ep, &caller, &headers, &body) {
        Ok(t) => t,
        Err(resp) => return *resp,
    };
    match dispatch::call_tool(
        ep.backend.as_ref(),
        &scope,
        params,
        RequestContext::detached().with_client_headers(&headers),
    )
    .await
    {
        Ok(result) => (StatusCode::OK, axum::Json(result)).into_response(),
        Err(e) => rpc_failure(&e),
    }
}

/// `POST /mcp/tools`: tool catalogs of the selected servers as SSE.
pub async fn catalog_stream(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    headers: HeaderMap,
) -> Response {
    let Some(Extension(caller)) = caller else {
        return unauthorized();
    };
    let scope = match header_scope(&ep, &caller, &headers) {
        Ok(s) => s,
        Err(e) => return scope_error(&e),
    };
    let catalogs = dispatch::tool_catalogs(ep.backend.as_ref(), &scope).await;
    let (tx, rx) = mpsc::channel(catalogs.len() + 1);
    let mut total = 0;
    for (server, result) in &catalogs {
        let data = match result {
            Ok(tools) => {
                total += tools.len();
                json!({"server": server.prefix, "tools": tools})
            }
            Err(e) => json!({"server": server.prefix, "error": e.to_string()}),
        };
        let _ = tx.try_send(sse::event(None, Some("tools"), &data.to_string()));
    }
    let done = json!({"servers": catalogs.len(), "tools": total});
    let _ = tx.try_send(sse::event(None, Some("done"), &done.to_string()));
    sse::response(rx)
}

/// `POST /mcp/invoke`: progress events, then the result, as SSE.
pub async fn invoke_stream(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(Extension(caller)) = caller else {
        return unauthorized();
    };
    let (scope, params) = match call_target(&ep, &caller, &headers, &body) {
        Ok(t) => t,
        Err(resp) => return *resp,
    };
    let (tx, rx) = mpsc::channel(256);
    let ctx = RequestContext {
        progress_token: Some(Value::String("invoke".into())),
        peer: Some(ClientPeer::events(tx.clone())),
        cancel: ep.stop.child_token(),
        client_headers: std::sync::Arc::new(crate::client_headers::prefixed_only(&headers)),
    };
    // Owned by the response body: when the client goes away the guard cancels the call.
    let guard = ctx.cancel.clone().drop_guard();
    tokio::spawn(async move {
        let frame = match dispatch::call_tool(ep.backend.as_ref(), &scope, params, ctx).await {
            Ok(result) => sse::event(None, Some("result"), &result.to_string()),
            Err(e) => {
                let data = json!({"error": {"message": e.message, "code": e.code}});
                sse::event(None, Some("error"), &data.to_string())
            }
        };
        let _ = tx.send(frame).await;
    });
    sse::response_with_guard(rx, guard)
}
