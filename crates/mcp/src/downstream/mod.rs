//! The aggregated MCP endpoint served to MCP hosts.
//!
//! Routes (mounted at the root by the server crate, behind its auth layer, which inserts
//! [`crate::McpCaller`]):
//!
//! | path | what |
//! |---|---|
//! | `POST/GET/DELETE /mcp`, `/mcp/` | streamable HTTP, servers from `x-mcp-servers` or all the caller may use, names `<server>-<tool>` |
//! | `POST/GET/DELETE /mcp/{server}` | streamable HTTP for one server, names unprefixed |
//! | `POST/GET/DELETE /toolset/{name}/mcp` | streamable HTTP for a configured toolset, names `<server>-<tool>` |
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
mod modern;
mod mrtr;
pub mod names;
mod peer;
mod protocol;
mod rest;
mod scope;
mod seal;
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
pub use hub_adapter::CurrentHub;
pub use peer::ClientPeer;
pub use protocol::{LATEST_VERSION, SUPPORTED_VERSIONS};
pub use scope::SERVERS_HEADER;
pub use seal::SessionSecret;

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
    /// Live sessions at most (streamable HTTP and legacy SSE together): the ceiling.
    pub max_sessions: usize,
    /// Live sessions per key (hash) at most, so one key cannot take them all.
    pub max_sessions_per_key: usize,
    /// A session idle this long (and not listening on a GET stream) is ended.
    pub session_idle: Duration,
    /// A session whose GET stream is open but silent (no request, no event) this long is
    /// ended, closing the stream.
    pub stream_idle: Duration,
    /// SSE events kept per session for `Last-Event-ID` resumption.
    pub replay_events: usize,
    /// Seals handshake-era session ids so any replica with the same secret resumes them
    /// (`mcp_settings.session_secret`, by default the master key); `None`: a random key,
    /// ids valid on this process only.
    pub session_secret: Option<SessionSecret>,
    /// The catalog mode when neither the URL (`?catalog=`) nor the caller says.
    pub catalog: crate::CatalogMode,
    /// `serverInfo` in `initialize` results.
    pub server_name: String,
    pub server_version: String,
}

impl EndpointSettings {
    /// Defaults with the config's `mcp_settings:` applied (absent or invalid values keep
    /// the default).
    pub fn from_config(m: &gatehouse_config::McpSettings) -> Self {
        let d = Self::default();
        let secs = |v: Option<f64>, default: Duration| {
            v.filter(|s| s.is_finite() && *s > 0.0)
                .map_or(default, |s| Duration::from_secs_f64(s.min(1e9)))
        };
        Self {
            max_sessions: m.max_sessions.unwrap_or(d.max_sessions),
            max_sessions_per_key: m.max_sessions_per_key.unwrap_or(d.max_sessions_per_key),
            session_idle: secs(m.session_idle_seconds, d.session_idle),
            stream_idle: secs(m.stream_idle_seconds, d.stream_idle),
            catalog: m
                .catalog
                .as_deref()
                .and_then(crate::CatalogMode::parse)
                .unwrap_or(d.catalog),
            session_secret: m.session_secret.clone().map(SessionSecret),
            ..d
        }
    }
}

impl Default for EndpointSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_sessions: 1024,
            max_sessions_per_key: 64,
            session_idle: Duration::from_secs(30 * 60),
            stream_idle: Duration::from_secs(60 * 60),
            replay_events: 256,
            session_secret: None,
            catalog: crate::CatalogMode::Full,
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
    /// 2026-07-28 calls waiting for a client's MRTR retry.
    parked: mrtr::ParkedCalls,
    /// Open 2026-07-28 `subscriptions/listen` streams.
    listeners: modern::Listeners,
    sealer: seal::Sealer,
    identity: ServerIdentity,
    stop: CancellationToken,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        // Stops the notification fan-out task and every session's in-flight work.
        self.stop.cancel();
        self.sessions.end_all();
        self.parked.clear();
        self.listeners.clear();
    }
}

type Ep = Arc<Endpoint>;

/// The endpoint's routes. Expects [`crate::McpCaller`] as a request extension (requests
/// without one get 401). If called inside a Tokio runtime and the backend has upstream
/// notifications, a task relays them to sessions until the router is dropped.
pub fn router(backend: SharedBackend, settings: EndpointSettings) -> Router {
    let ep = Arc::new(Endpoint {
        sessions: SessionStore::new(session::Limits {
            max: settings.max_sessions,
            per_key: settings.max_sessions_per_key,
            idle: settings.session_idle,
            stream_idle: settings.stream_idle,
        }),
        identity: ServerIdentity {
            name: settings.server_name.clone(),
            version: settings.server_version.clone(),
        },
        parked: mrtr::ParkedCalls::default(),
        listeners: modern::Listeners::default(),
        sealer: seal::Sealer::new(settings.session_secret.as_ref().map(|s| s.0.as_str())),
        backend,
        settings,
        stop: CancellationToken::new(),
    });
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        if let Some(rx) = ep.backend.subscribe() {
            rt.spawn(relay_notifications(
                Arc::downgrade(&ep),
                ep.stop.clone(),
                rx,
            ));
        }
        rt.spawn(sweep_sessions(Arc::downgrade(&ep), ep.stop.clone()));
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
        .route(
            "/toolset/{name}/mcp",
            post(streamable::post_toolset)
                .get(streamable::get_toolset)
                .delete(streamable::delete_toolset),
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

/// Ends expired sessions periodically, so a silent open stream is closed even when no
/// request comes to notice it.
async fn sweep_sessions(ep: Weak<Endpoint>, stop: CancellationToken) {
    let every = {
        let Some(ep) = ep.upgrade() else { return };
        let s = &ep.settings;
        (s.session_idle.min(s.stream_idle) / 4)
            .clamp(Duration::from_secs(1), Duration::from_secs(60))
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let Some(ep) = ep.upgrade() else { return };
        ep.sessions.sweep();
    }
}

/// Fans upstream notifications out to the sessions that include the server and whose key
/// may still use it.
async fn relay_notifications(ep: Weak<Endpoint>, stop: CancellationToken, mut rx: EventStream) {
    use futures_util::StreamExt;
    loop {
        let ev = tokio::select! {
            () = stop.cancelled() => return,
            ev = rx.next() => ev,
        };
        let Some(ev) = ev else { return };
        let Some(ep) = ep.upgrade() else { return };
        ep.listeners
            .deliver(&ep, &ev.server, &ev.method, &ev.params);
        for s in ep.sessions.with_server(&ev.server) {
            let scope = s.latest_scope(ep.backend.as_ref());
            if let Some(msg) =
                dispatch::rewrite_notification(&scope, &ev.server, &ev.method, ev.params.clone())
            {
                s.send(None, &msg);
            }
        }
    }
}
