//! Legacy HTTP+SSE transport (protocol 2024-11-05): `GET /mcp/sse` opens the stream whose
//! first event, `endpoint`, names `/mcp/message?sessionId=…`; messages POSTed there are
//! answered `202 Accepted` and their responses travel on the stream.

use std::sync::{Arc, Weak};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::McpCaller;

use super::backend::RequestContext;
use super::peer::ClientPeer;
use super::protocol::{self, Incoming, PARSE_ERROR};
use super::scope;
use super::session::Session;
use super::streamable::{on_notification, rpc_error, scope_error, to_message, unauthorized};
use super::{Endpoint, Ep, dispatch, sse};

/// Ends the session when its stream's response body is dropped (client gone).
struct EndOnDrop {
    ep: Weak<Endpoint>,
    id: String,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        if let Some(ep) = self.ep.upgrade() {
            ep.sessions.remove(&self.id);
        }
    }
}

pub async fn open(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    headers: HeaderMap,
) -> Response {
    let Some(Extension(caller)) = caller else {
        return unauthorized();
    };
    let wanted = headers
        .get(scope::SERVERS_HEADER)
        .and_then(|v| v.to_str().ok());
    let scope = match scope::select(ep.backend.as_ref(), &caller, None, wanted) {
        Ok(s) => s,
        Err(e) => return scope_error(&e),
    };
    if let Err(resp) = super::streamable::require_mcp_access(&caller, &scope) {
        return *resp;
    }
    let session = Session::new(
        &caller,
        "legacy".into(),
        scope,
        "2024-11-05",
        true,
        ep.settings.replay_events,
    );
    let session = match ep.sessions.insert(session) {
        Ok(s) => s,
        Err(e) => {
            return rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                protocol::SERVER_ERROR,
                e.to_string(),
            );
        }
    };
    let (stream, rx) = session.open_standalone();
    let endpoint = format!("/mcp/message?sessionId={}", session.id);
    session.send_raw(stream, sse::event(None, Some("endpoint"), &endpoint));
    let guard = EndOnDrop {
        ep: Arc::downgrade(&ep),
        id: session.id.clone(),
    };
    sse::response_with_guard(rx, guard)
}

#[derive(Deserialize)]
pub struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id: String,
}

pub async fn message(
    State(ep): State<Ep>,
    caller: Option<Extension<McpCaller>>,
    Query(q): Query<MessageQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(Extension(caller)) = caller else {
        return unauthorized();
    };
    let Some(session) = ep
        .sessions
        .get(&q.session_id)
        .filter(|s| s.legacy && s.owned_by(&caller))
    else {
        return rpc_error(
            StatusCode::NOT_FOUND,
            protocol::SERVER_ERROR,
            "session not found",
        );
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
    match Incoming::parse(msg) {
        Err(bad) => {
            session.send(None, &protocol::error_response(&bad.0, &bad.1));
        }
        Ok(Incoming::Notification { method, params }) => {
            on_notification(&session, &method, &params)
        }
        Ok(Incoming::Response { id, outcome }) => {
            session.complete_client_request(&id, outcome);
        }
        Ok(Incoming::Request { id, method, params }) if method == "initialize" => {
            let version =
                protocol::negotiate(params.get("protocolVersion").and_then(Value::as_str));
            session.set_version(version);
            session.set_client_capabilities(
                params.get("capabilities").cloned().unwrap_or(Value::Null),
            );
            let result = dispatch::initialize_result(version, &session.scope, &ep.identity);
            session.send(None, &protocol::response(&id, result));
        }
        Ok(Incoming::Request { id, method, params }) => {
            let cancel = session.begin_request(&id);
            let ctx = RequestContext {
                progress_token: protocol::progress_token(&params),
                peer: Some(ClientPeer::session(session.clone(), None)),
                cancel,
                // Those of this POST: legacy clients send per-message headers here.
                client_headers: Arc::new(crate::client_headers::prefixed_only(&headers)),
            };
            let scope = session.current_scope(ep.backend.as_ref(), &caller);
            // Owned by the session through `ctx.cancel` (a child of its token).
            tokio::spawn(async move {
                let out = dispatch::handle(ep.backend.as_ref(), &scope, &method, params, ctx).await;
                session.end_request(&id);
                session.send(None, &to_message(&id, out));
            });
        }
    }
    (StatusCode::ACCEPTED, "Accepted").into_response()
}
