//! Streamable HTTP transport (`/mcp`, `/mcp/`, `/mcp/{server}`): POST for messages, GET for
//! the server-to-client stream (and resumption), DELETE to end a session.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::join_all;
use serde_json::Value;

use crate::{CatalogMode, McpCaller};

use super::backend::RequestContext;
use super::dispatch;
use super::peer::ClientPeer;
use super::protocol::{self, INVALID_REQUEST, Incoming, PARSE_ERROR, RpcError, SERVER_ERROR};
use super::scope::{self, ScopeError, Target};
use super::session::Session;
use super::{Ep, sse};

pub const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// An HTTP error whose body is a JSON-RPC error without an id.
pub fn rpc_error(status: StatusCode, code: i64, message: impl Into<String>) -> Response {
    let body = protocol::error_response(&Value::Null, &RpcError::new(code, message));
    (status, axum::Json(body)).into_response()
}

pub fn json(status: StatusCode, body: &Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

pub fn unauthorized() -> Response {
    rpc_error(
        StatusCode::UNAUTHORIZED,
        SERVER_ERROR,
        "authentication required",
    )
}

pub fn scope_error(e: &ScopeError) -> Response {
    let status = match e {
        ScopeError::Forbidden(_) => StatusCode::FORBIDDEN,
        ScopeError::Unknown { .. } | ScopeError::UnknownToolset(_) => StatusCode::NOT_FOUND,
    };
    rpc_error(status, SERVER_ERROR, e.to_string())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub fn accepts_sse(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT.as_str()).is_some_and(|a| a.contains("text/event-stream"))
}

pub fn to_message(id: &Value, outcome: Result<Value, RpcError>) -> Value {
    match outcome {
        Ok(r) => protocol::response(id, r),
        Err(e) => protocol::error_response(id, &e),
    }
}

// ---- handlers ----

/// What a POST asks for besides its body: the caller, the endpoint, the catalog mode.
pub struct PostCtx {
    caller: Option<McpCaller>,
    target: Target,
    lazy: bool,
}

/// `?catalog=` on the URL, else the caller's mode, else the configured default.
fn lazy(ep: &Ep, query: Option<&str>, mode: Option<CatalogMode>) -> bool {
    let from_url = query.and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "catalog")
            .and_then(|(_, v)| CatalogMode::parse(v))
    });
    from_url.or(mode).unwrap_or(ep.settings.catalog) == CatalogMode::Lazy
}

fn post_ctx(
    ep: &Ep,
    caller: Option<Extension<McpCaller>>,
    mode: Option<Extension<CatalogMode>>,
    query: Option<String>,
    target: Target,
) -> PostCtx {
    PostCtx {
        caller: caller.map(|c| c.0),
        lazy: lazy(ep, query.as_deref(), mode.map(|m| m.0)),
        target,
    }
}

pub async fn post(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    mode: Option<Extension<CatalogMode>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = post_ctx(&ep, caller, mode, query, Target::All);
    post_impl(ep, ctx, headers, body).await
}

pub async fn post_one(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    mode: Option<Extension<CatalogMode>>,
    Path(server): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = post_ctx(&ep, caller, mode, query, Target::Server(server));
    post_impl(ep, ctx, headers, body).await
}

pub async fn post_toolset(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    mode: Option<Extension<CatalogMode>>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = post_ctx(&ep, caller, mode, query, Target::Toolset(name));
    post_impl(ep, ctx, headers, body).await
}

pub async fn get(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    headers: HeaderMap,
) -> Response {
    get_impl(&ep, caller.map(|c| c.0), &Target::All, &headers)
}

pub async fn get_one(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    get_impl(&ep, caller.map(|c| c.0), &Target::Server(server), &headers)
}

pub async fn get_toolset(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    get_impl(&ep, caller.map(|c| c.0), &Target::Toolset(name), &headers)
}

pub async fn delete(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    headers: HeaderMap,
) -> Response {
    delete_impl(&ep, caller.map(|c| c.0), &Target::All, &headers)
}

pub async fn delete_one(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    delete_impl(&ep, caller.map(|c| c.0), &Target::Server(server), &headers)
}

pub async fn delete_toolset(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    delete_impl(&ep, caller.map(|c| c.0), &Target::Toolset(name), &headers)
}

/// The key sessions remember their endpoint by: `""` for `/mcp`, the configured server
/// name for `/mcp/{server}` (so `/mcp/<alias>` and `/mcp/<name>` share sessions),
/// `toolset/<name>` for a toolset.
fn route_of(ep: &Ep, target: &Target) -> String {
    match target {
        Target::All => String::new(),
        Target::Server(s) => ep.backend.resolve(s).unwrap_or_else(|| s.clone()),
        Target::Toolset(t) => format!("toolset/{t}"),
    }
}

// ---- POST ----

async fn post_impl(ep: Ep, pc: PostCtx, headers: HeaderMap, body: Bytes) -> Response {
    let PostCtx {
        caller,
        target,
        lazy,
    } = pc;
    let Some(caller) = caller else {
        return unauthorized();
    };
    let msg: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                PARSE_ERROR,
                format!("parse error: {e}"),
            );
        }
    };
    let route = route_of(&ep, &target);
    if super::modern::is_modern(&headers, &msg) {
        // Stateless: the scope comes from the caller's current key on every request.
        let select = || {
            scope::select_target(
                ep.backend.as_ref(),
                &caller,
                &target,
                header_str(&headers, scope::SERVERS_HEADER),
            )
            .map(|s| scope::Scope { lazy, ..s })
            .map_err(|e| Box::new(scope_error(&e)))
        };
        return super::modern::post(ep.clone(), &caller, select, &headers, msg).await;
    }
    if let Value::Array(items) = msg {
        return batch(ep, &caller, &route, &headers, items).await;
    }
    let incoming = match Incoming::parse(msg) {
        Ok(m) => m,
        Err(bad) => {
            return json(
                StatusCode::BAD_REQUEST,
                &protocol::error_response(&bad.0, &bad.1),
            );
        }
    };
    match incoming {
        Incoming::Request { id, method, params } if method == "initialize" => initialize(
            &ep,
            &caller,
            (&target, lazy),
            &route,
            &headers,
            &id,
            &params,
        ),
        other => {
            let session = match session_for(&ep, &caller, &route, &headers) {
                Ok(s) => s,
                Err(resp) => return *resp,
            };
            match other {
                Incoming::Notification { method, params } => {
                    on_notification(&session, &method, &params);
                    accepted()
                }
                Incoming::Response { id, outcome } => {
                    session.complete_client_request(&id, outcome);
                    accepted()
                }
                Incoming::Request { id, method, params } => {
                    request(ep, session, &caller, &headers, id, method, params).await
                }
            }
        }
    }
}

fn initialize(
    ep: &Ep,
    caller: &McpCaller,
    (target, lazy): (&Target, bool),
    route: &str,
    headers: &HeaderMap,
    id: &Value,
    params: &Value,
) -> Response {
    let scope = match scope::select_target(
        ep.backend.as_ref(),
        caller,
        target,
        header_str(headers, scope::SERVERS_HEADER),
    ) {
        Ok(s) => scope::Scope { lazy, ..s },
        Err(e) => return scope_error(&e),
    };
    if let Err(resp) = require_mcp_access(caller, &scope) {
        return *resp;
    }
    let version = protocol::negotiate(params.get("protocolVersion").and_then(Value::as_str));
    let capabilities = params.get("capabilities").cloned().unwrap_or(Value::Null);
    // The id itself carries the session, sealed, so any replica can resume it.
    let id_sealed = ep
        .sealer
        .seal(caller.owner(), route, &scope, version, &capabilities);
    let session = Session::new(
        caller,
        route.to_owned(),
        scope,
        version,
        false,
        ep.settings.replay_events,
    )
    .with_id(id_sealed);
    session.set_client_capabilities(capabilities);
    let session = match ep.sessions.insert(session) {
        Ok(s) => s,
        Err(e) => return rpc_error(StatusCode::SERVICE_UNAVAILABLE, SERVER_ERROR, e.to_string()),
    };
    let result = dispatch::initialize_result(version, &session.scope, &ep.identity);
    let mut resp = json(StatusCode::OK, &protocol::response(id, result));
    if let Ok(v) = HeaderValue::from_str(&session.id) {
        resp.headers_mut().insert(SESSION_HEADER, v);
    }
    resp
}

/// A key that may use no MCP server gets no session (it could only fill the table).
pub fn require_mcp_access(
    caller: &McpCaller,
    scope: &super::scope::Scope,
) -> Result<(), Box<Response>> {
    if scope.servers.is_empty() && !caller.is_admin {
        return Err(Box::new(rpc_error(
            StatusCode::FORBIDDEN,
            SERVER_ERROR,
            "this key may not use any MCP server",
        )));
    }
    Ok(())
}

/// The session named by `Mcp-Session-Id`, usable by this caller on this route.
fn session_for(
    ep: &Ep,
    caller: &McpCaller,
    route: &str,
    headers: &HeaderMap,
) -> Result<Arc<Session>, Box<Response>> {
    let Some(id) = header_str(headers, SESSION_HEADER) else {
        return Err(Box::new(rpc_error(
            StatusCode::BAD_REQUEST,
            SERVER_ERROR,
            "missing Mcp-Session-Id header; send initialize first",
        )));
    };
    let session = ep
        .sessions
        .get(id)
        .or_else(|| resume(ep, caller, route, id))
        .filter(|s| !s.legacy && s.owned_by(caller) && s.route == route)
        .ok_or_else(|| {
            Box::new(rpc_error(
                StatusCode::NOT_FOUND,
                SERVER_ERROR,
                "session not found",
            ))
        })?;
    if let Some(v) = header_str(headers, VERSION_HEADER)
        && !protocol::SUPPORTED_VERSIONS.contains(&v)
    {
        return Err(Box::new(rpc_error(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            format!("unsupported MCP-Protocol-Version `{v}`"),
        )));
    }
    Ok(session)
}

/// A session this replica does not hold (opened on another replica, or before a restart),
/// rebuilt from its sealed id when the seal is authentic and fresh, the caller owns it, the
/// route matches, and this replica did not end it.
fn resume(ep: &Ep, caller: &McpCaller, route: &str, id: &str) -> Option<Arc<Session>> {
    if ep.sessions.is_ended(id) {
        return None;
    }
    let sealed = ep.sealer.open(id)?;
    if sealed.owner != ep.sealer.owner_tag(caller.owner()) || sealed.route != route {
        return None;
    }
    let session = Session::new(
        caller,
        sealed.route,
        sealed.scope,
        &sealed.version,
        false,
        ep.settings.replay_events,
    )
    .with_id(id.to_owned());
    session.set_client_capabilities(sealed.capabilities);
    match ep.sessions.insert(session) {
        Ok(s) => {
            tracing::debug!(route, "MCP session resumed from its sealed id");
            Some(s)
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not resume an MCP session");
            None
        }
    }
}

pub fn on_notification(session: &Session, method: &str, params: &Value) {
    if method == "notifications/cancelled"
        && let Some(id) = params.get("requestId")
    {
        session.cancel_request(id);
    }
    // notifications/initialized, roots/list_changed and others need no action.
}

/// Whether to answer a request as an SSE stream: when something may have to reach the
/// client before the result (progress, or sampling/elicitation during a tool call).
fn wants_stream(session: &Session, headers: &HeaderMap, method: &str, params: &Value) -> bool {
    accepts_sse(headers)
        && (protocol::progress_token(params).is_some()
            || (method == "tools/call" && session.client_takes_requests()))
}

async fn request(
    ep: Ep,
    session: Arc<Session>,
    caller: &McpCaller,
    headers: &HeaderMap,
    id: Value,
    method: String,
    params: Value,
) -> Response {
    let scope = session.current_scope(ep.backend.as_ref(), caller);
    let stream_it = wants_stream(&session, headers, &method, &params);
    let cancel = session.begin_request(&id);
    let client_headers = Arc::new(crate::client_headers::prefixed_only(headers));
    if !stream_it {
        let ctx = RequestContext {
            progress_token: protocol::progress_token(&params),
            peer: Some(ClientPeer::session(session.clone(), None)),
            cancel,
            client_headers,
        };
        let out = dispatch::handle(ep.backend.as_ref(), &scope, &method, params, ctx).await;
        session.end_request(&id);
        return json(StatusCode::OK, &to_message(&id, out));
    }
    let (stream, rx) = session.open_stream();
    let ctx = RequestContext {
        progress_token: protocol::progress_token(&params),
        peer: Some(ClientPeer::session(session.clone(), Some(stream))),
        cancel,
        client_headers,
    };
    // Owned by the session: `ctx.cancel` is a child of the session's token, so ending the
    // session ends this task. A client disconnect does not: it may resume the stream.
    tokio::spawn(async move {
        let out = dispatch::handle(ep.backend.as_ref(), &scope, &method, params, ctx).await;
        session.end_request(&id);
        session.send(Some(stream), &to_message(&id, out));
        session.finish(stream);
    });
    sse::response(rx)
}

/// JSON-RPC batches, only where the negotiated revision has them (2025-03-26).
async fn batch(
    ep: Ep,
    caller: &McpCaller,
    route: &str,
    headers: &HeaderMap,
    items: Vec<Value>,
) -> Response {
    let session = match session_for(&ep, caller, route, headers) {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    let version = session.version();
    if !protocol::allows_batches(&version) || items.is_empty() {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            format!("JSON-RPC batches are not supported in protocol revision {version}"),
        );
    }
    let mut immediate = Vec::new();
    let mut calls = Vec::new();
    let client_headers = Arc::new(crate::client_headers::prefixed_only(headers));
    let scope = Arc::new(session.current_scope(ep.backend.as_ref(), caller));
    for item in items {
        match Incoming::parse(item) {
            Err(bad) => immediate.push(protocol::error_response(&bad.0, &bad.1)),
            Ok(Incoming::Notification { method, params }) => {
                on_notification(&session, &method, &params);
            }
            Ok(Incoming::Response { id, outcome }) => {
                session.complete_client_request(&id, outcome);
            }
            Ok(Incoming::Request { id, method, .. }) if method == "initialize" => {
                let e = RpcError::new(INVALID_REQUEST, "initialize cannot be batched");
                immediate.push(protocol::error_response(&id, &e));
            }
            Ok(Incoming::Request { id, method, params }) => {
                let session = session.clone();
                let ep = ep.clone();
                let client_headers = client_headers.clone();
                let scope = scope.clone();
                calls.push(async move {
                    let cancel = session.begin_request(&id);
                    let ctx = RequestContext {
                        progress_token: protocol::progress_token(&params),
                        peer: Some(ClientPeer::session(session.clone(), None)),
                        cancel,
                        client_headers,
                    };
                    let out =
                        dispatch::handle(ep.backend.as_ref(), &scope, &method, params, ctx).await;
                    session.end_request(&id);
                    to_message(&id, out)
                });
            }
        }
    }
    immediate.extend(join_all(calls).await);
    if immediate.is_empty() {
        accepted()
    } else {
        json(StatusCode::OK, &Value::Array(immediate))
    }
}

// ---- GET / DELETE ----

/// 2026-07-28 has no GET stream and no session to DELETE.
fn modern_get_or_delete(headers: &HeaderMap) -> Option<Response> {
    header_str(headers, VERSION_HEADER)
        .is_some_and(|v| !protocol::SUPPORTED_VERSIONS.contains(&v))
        .then(|| {
            rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                protocol::METHOD_NOT_FOUND,
                "2026-07-28 has no GET stream or sessions: use POST (subscriptions/listen)",
            )
        })
}

fn get_impl(ep: &Ep, caller: Option<McpCaller>, target: &Target, headers: &HeaderMap) -> Response {
    let route = &route_of(ep, target);
    let Some(caller) = caller else {
        return unauthorized();
    };
    if let Some(r) = modern_get_or_delete(headers) {
        return r;
    }
    if !accepts_sse(headers) {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            SERVER_ERROR,
            "GET opens an SSE stream: send Accept: text/event-stream",
        );
    }
    let session = match session_for(ep, &caller, route, headers) {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    if let Some(last) = header_str(headers, "last-event-id")
        && let Some(rx) = session.resume(last)
    {
        return sse::response(rx);
    }
    let (_, rx) = session.open_standalone();
    sse::response(rx)
}

fn delete_impl(
    ep: &Ep,
    caller: Option<McpCaller>,
    target: &Target,
    headers: &HeaderMap,
) -> Response {
    let route = &route_of(ep, target);
    let Some(caller) = caller else {
        return unauthorized();
    };
    if let Some(r) = modern_get_or_delete(headers) {
        return r;
    }
    match session_for(ep, &caller, route, headers) {
        Ok(s) => {
            ep.sessions.remove(&s.id);
            StatusCode::OK.into_response()
        }
        Err(resp) => *resp,
    }
}
