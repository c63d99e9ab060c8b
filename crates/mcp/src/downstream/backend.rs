//! The seam between the downstream endpoint and whatever holds the upstream servers.
//!
//! The endpoint is built against this trait rather than the hub directly so its session and
//! transport mechanics can be tested without spawning upstreams, and so the hub can evolve
//! its own API without touching the transports. `impl Backend for Hub` lives in
//! `hub_adapter.rs`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::HeaderMap;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::McpCaller;

use super::peer::ClientPeer;

/// A boxed, sendable future: the trait must stay object-safe (`Arc<dyn Backend>`).
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One configured upstream server, as listings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInfo {
    /// The configured name (what `resolve` returns and every other method takes).
    pub name: String,
    /// The label used in aggregated names (`<prefix>-<tool>`): the alias if one is
    /// configured, else the name.
    pub prefix: String,
    pub description: Option<String>,
    /// `stdio`, `http`, `sse`.
    pub transport: String,
    /// Health as the backend sees it (`ready`, `starting`, `stopped`, `failed: …`).
    pub status: String,
    /// Tools offered (after filters) when known without waiting for the server.
    pub tool_count: Option<usize>,
}

/// An upstream failure, in the terms the endpoint needs to answer the client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("unknown MCP server `{0}`")]
    UnknownServer(String),
    /// The upstream is not reachable (not started, crashed, connection refused).
    #[error("MCP server `{server}` is unavailable: {message}")]
    Unavailable { server: String, message: String },
    /// The upstream answered with a JSON-RPC error; relayed to the client as is.
    #[error("upstream error {code}: {message}")]
    Rpc {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    #[error("MCP server `{0}` timed out")]
    Timeout(String),
    #[error("request cancelled")]
    Cancelled,
    #[error("{0}")]
    Other(String),
}

/// A notification an upstream sent that is not tied to one request
/// (`notifications/tools/list_changed`, `notifications/resources/updated`,
/// `notifications/message`, ...).
#[derive(Debug, Clone)]
pub struct UpstreamEvent {
    /// Configured server name.
    pub server: String,
    pub method: String,
    pub params: Value,
}

/// What a forwarded request carries besides its parameters: how to reach the client that
/// caused it (progress, sampling, elicitation, roots) and when to give up.
#[derive(Clone)]
pub struct RequestContext {
    /// The client's `_meta.progressToken`, when it asked for progress.
    pub progress_token: Option<Value>,
    /// The downstream client; `None` for the REST routes (no channel back).
    pub peer: Option<ClientPeer>,
    /// Cancelled when the client sends `notifications/cancelled` for this request or its
    /// session ends. Backends should forward the cancellation upstream.
    pub cancel: CancellationToken,
    /// The client request's `x-mcp-*` headers (see [`crate::client_headers`]). Backends
    /// forward only those named for the server a call goes to
    /// (`x-mcp-<server>-<header>`, prefix stripped), never to other servers.
    pub client_headers: Arc<HeaderMap>,
}

impl RequestContext {
    /// A context with no way back to a client (REST calls, internal use).
    pub fn detached() -> Self {
        Self {
            progress_token: None,
            peer: None,
            cancel: CancellationToken::new(),
            client_headers: Arc::default(),
        }
    }

    /// Keeps the `x-mcp-*` headers of the client's HTTP request for per-server selection.
    pub fn with_client_headers(mut self, headers: &HeaderMap) -> Self {
        self.client_headers = Arc::new(crate::client_headers::prefixed_only(headers));
        self
    }

    /// Relays an upstream progress notification to the client, with the client's own
    /// progress token (the upstream's token is the backend's business). A no-op when the
    /// client did not ask for progress.
    pub fn report_progress(&self, progress: f64, total: Option<f64>, message: Option<String>) {
        let (Some(token), Some(peer)) = (&self.progress_token, &self.peer) else {
            return;
        };
        let mut params = serde_json::Map::new();
        params.insert("progressToken".into(), token.clone());
        params.insert("progress".into(), progress.into());
        if let Some(total) = total {
            params.insert("total".into(), total.into());
        }
        if let Some(message) = message {
            params.insert("message".into(), message.into());
        }
        peer.notify("notifications/progress", Value::Object(params));
    }

    /// Sends a server-to-client request (`sampling/createMessage`, `elicitation/create`,
    /// `roots/list`) to the client that caused this call and waits for its answer.
    pub async fn client_request(&self, method: &str, params: Value) -> Result<Value, BackendError> {
        let Some(peer) = &self.peer else {
            return Err(BackendError::Other(
                "this client has no channel for server-to-client requests".into(),
            ));
        };
        tokio::select! {
            r = peer.request(method, params) => r,
            () = self.cancel.cancelled() => Err(BackendError::Cancelled),
        }
    }
}

/// Everything the downstream endpoint needs from the upstream side.
pub trait Backend: Send + Sync + 'static {
    /// Every configured server.
    fn servers(&self) -> Vec<ServerInfo>;

    /// The configured name for a name or alias.
    fn resolve(&self, name_or_alias: &str) -> Option<String>;

    /// Whether this caller may use this (configured) server.
    fn may_use(&self, caller: &McpCaller, server: &str) -> bool;

    /// The aggregated name of `tool` (or prompt) on the server labelled `prefix`. Must be
    /// deterministic; the endpoint maps names back by recomputing it over the catalog.
    fn prefixed(&self, prefix: &str, tool: &str) -> String {
        crate::naming::prefixed(prefix, tool)
    }

    /// Fast exact reverse mapping of an aggregated tool name to `(server, tool)`, if the
    /// backend keeps one; `None` makes the endpoint search the catalogs instead.
    fn split_prefixed(&self, _aggregated: &str) -> Option<(String, String)> {
        None
    }

    /// The server's tools (MCP `Tool` objects, unprefixed, after allow/deny filters).
    fn list_tools<'a>(&'a self, server: &'a str) -> BoxFut<'a, Result<Vec<Value>, BackendError>>;

    /// Calls one tool; returns the MCP `CallToolResult`.
    fn call_tool<'a>(
        &'a self,
        server: &'a str,
        tool: &'a str,
        arguments: Value,
        ctx: RequestContext,
    ) -> BoxFut<'a, Result<Value, BackendError>>;

    /// Forwards any other request (prompts/*, resources/*, completion/complete,
    /// logging/setLevel) and returns the upstream's result.
    fn request<'a>(
        &'a self,
        server: &'a str,
        method: &'a str,
        params: Value,
        ctx: RequestContext,
    ) -> BoxFut<'a, Result<Value, BackendError>>;

    /// A configured toolset: `(server name or alias, its tools or None for all)`.
    fn toolset(&self, _name: &str) -> Option<Vec<(String, Option<Vec<String>>)>> {
        None
    }

    /// The capabilities the server announced, when known (for `server/discover`).
    fn server_capabilities(&self, _server: &str) -> Option<Value> {
        None
    }

    /// The protocol revisions this server can be served at through the gateway.
    fn servable_versions(&self, _server: &str) -> Vec<&'static str> {
        super::protocol::all_versions()
    }

    /// Upstream notifications not tied to a request; `None` if the backend has none.
    fn subscribe(&self) -> Option<EventStream> {
        None
    }
}

/// Upstream notifications as a stream (ends when the backend goes away).
pub type EventStream = Pin<Box<dyn futures_util::Stream<Item = UpstreamEvent> + Send>>;

/// Adapts a broadcast receiver; lagging (a burst the relay could not keep up with) skips
/// the lost events rather than ending the stream.
pub fn broadcast_events<T, F>(rx: broadcast::Receiver<T>, map: F) -> EventStream
where
    T: Clone + Send + 'static,
    F: Fn(T) -> Option<UpstreamEvent> + Send + 'static,
{
    Box::pin(futures_util::stream::unfold(
        (rx, map),
        |(mut rx, map)| async move {
            loop {
                match rx.recv().await {
                    Ok(ev) => {
                        if let Some(ev) = map(ev) {
                            return Some((ev, (rx, map)));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(skipped = n, "MCP notification relay lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    ))
}

/// Lets tests and the server hold the backend as `Arc<dyn Backend>`.
pub type SharedBackend = Arc<dyn Backend>;
