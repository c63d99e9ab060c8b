//! The aggregated MCP endpoint served to MCP hosts.
//!
//! Routes (mounted at the root by the server crate, behind its auth layer, which inserts
//! [`crate::McpCaller`]):
//!
//! | path | what |
//! |---|---|
//! | `POST/GET/DELETE /mcp`, `/mcp/` | streamable HTTP, servers from `x-mcp-servers` or all the caller may use, names `<server>-<tool>` |
//! | `POST/GET/DELETE /mcp/{server}` | streamable HTTP for one server, names unprefixed |
//! | `GET /mcp/sse` + `POST /mcp/message?sessionId=` | legacy HTTP+SSE (2024-11-05) |
//! | `POST /mcp/tools`, `POST /mcp/invoke` | LiteLLM-compatible SSE catalog / invocation |
//! | `GET /v1/mcp/servers`, `GET /v1/mcp/tools`, `POST /v1/mcp/tools/call` | JSON REST |
//!
//! Module map: `backend` (the seam to the hub), `scope` (which servers a request sees),
//! `names` (aggregated names and URIs), `protocol` (JSON-RPC + revisions), `dispatch`
//! (MCP methods over a scope), `session` (sessions, streams, replay), `peer` (the way back
//! to a client), `sse` (framing), `guard` (Host/Origin), and one module per route family.

pub mod backend;
mod dispatch;
pub mod guard;
mod hub_adapter;
mod legacy;
pub mod names;
mod peer;
mod protocol;
mod rest;
mod scope;
mod session;
mod sse;
mod streamable;

use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

pub use backend::{
    Backend, BackendError, BoxFut, EventStream, RequestContext, ServerInfo, SharedBackend,
    UpstreamEvent, broadcast_events,
};
pub use peer::ClientPeer;
pub use protocol::{LATEST_VERSION, SUPPORTED_VERSIONS};
pub use scope::SERVERS_HEADER;

use dispatch::ServerIdentity;
use session::SessionStore;

/// Knobs of the endpoint; `Default` is right for a loopback-only gateway.
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    /// Extra `Host` names accepted besides loopback (`litellm.linuxserver.lan`,
    /// `gw:4000`); an entry without a port matches any port; `"*"` accepts any host.
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted besides loopback, same-origin and `allowed_hosts`
    /// (`https://chat.example.lan`; `"*"` accepts any).
    pub allowed_origins: Vec<String>,
    /// Live sessions at most (streamable HTTP and legacy SSE together).
    pub max_sessions: usize,
    /// A session idle this long (and not listening on a GET stream) is ended.
    pub session_idle: Duration,
    /// SSE events kept per session for `Last-Event-ID` resumption.
    pub replay_events: usize,
    /// `serverInfo` in `initialize` results.
    pub server_name: String,
    pub server_version: String,
}

impl Default for EndpointSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_sessions: 1024,
            session_idle: Duration::from_secs(30 * 60),
            replay_events: 256,
            server_name: "gatehouse".into(),
            server_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

/// Shared state of all routes.
pub(crate) struct Endpoint {
    backend: SharedBackend,
    settings: EndpointSettings,
    sessions: SessionStore,
    identity: ServerIdentity,
    stop: CancellationToken,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // Stops the notification fan-out task and every session's in-flight work.
        self.stop.cancel();
        self.sessions.end_all();
    }
}

type Ep = Arc<Endpoint>;

/// The endpoint's routes. Expects [`crate::McpCaller`] as a request extension (requests
/// without one get 401). If called inside a Tokio runtime and the backend has upstream
/// notifications, a task relays them to sessions until the router is dropped.
pub fn router(backend: SharedBackend, settings: EndpointSettings) -> Router {
    let ep = Arc::new(Endpoint {
        sessions: SessionStore::new(settings.max_sessions, settings.session_idle),
        identity: ServerIdentity {
            name: settings.server_name.clone(),
            version: settings.server_version.clone(),
        },
        backend,
        settings,
        stop: CancellationToken::new(),
    });
    if let (Some(rx), Ok(rt)) = (
        ep.backend.subscribe(),
        tokio::runtime::Handle::try_current(),
    ) {
        rt.spawn(relay_notifications(
            Arc::downgrade(&ep),
            ep.stop.clone(),
            rx,
        ));
    }
    let streamable = || {
        post(streamable::post)
            .get(streamable::get)
            .delete(streamable::delete)
    };
    Router::new()
        .route("/mcp", streamable())
        .route("/mcp/", streamable())
        .route(
            "/mcp/{server}",
            post(streamable::post_one)
                .get(streamable::get_one)
                .delete(streamable::delete_one),
        )
        .route("/mcp/sse", get(legacy::open))
        .route("/mcp/message", post(legacy::message))
        .route("/mcp/tools", post(rest::catalog_stream))
        .route("/mcp/invoke", post(rest::invoke_stream))
        .route("/v1/mcp/servers", get(rest::servers))
        .route("/v1/mcp/tools", get(rest::tools))
        .route("/v1/mcp/tools/call", post(rest::call))
        .layer(middleware::from_fn_with_state(ep.clone(), host_guard))
        .with_state(ep)
}

async fn host_guard(State(ep): State<Ep>, req: Request, next: Next) -> Response {
    let s = &ep.settings;
    match guard::check(
        &s.allowed_hosts,
        &s.allowed_origins,
        req.uri(),
        req.headers(),
    ) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::warn!(error = %e, "MCP request refused");
            guard::refusal(StatusCode::FORBIDDEN, e.to_string())
        }
    }
}

/// Fans upstream notifications out to the sessions that include the server.
async fn relay_notifications(ep: Weak<Endpoint>, stop: CancellationToken, mut rx: EventStream) {
    use futures_util::StreamExt;
    loop {
        let ev = tokio::select! {
            () = stop.cancelled() => return,
            ev = rx.next() => ev,
        };
        let Some(ev) = ev else { return };
        let Some(ep) = ep.upgrade() else { return };
        for s in ep.sessions.with_server(&ev.server) {
            if let Some(msg) =
                dispatch::rewrite_notification(&s.scope, &ev.server, &ev.method, ev.params.clone())
            {
                s.send(None, &msg);
            }
        }
    }
}
