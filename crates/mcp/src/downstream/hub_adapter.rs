//! `impl Backend for Hub`: the endpoint's seam filled by the real hub.
//!
//! A call's [`RequestContext`] becomes the hub's [`CallOptions`]: upstream progress is
//! relayed with the client's own token, cancellation goes upstream, and server-to-client
//! requests (sampling, elicitation, roots) are relayed to the client that caused the call
//! — upstreams only send those when `HubSettings::client_capabilities` announces them —
//! and the client's `x-mcp-<server>-<header>` headers go on that server's request only.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::McpCaller;
use crate::hub::{CallOptions, Hub, HubError, ServerState};
use crate::jsonrpc::RpcError;
use crate::upstream::ServerRequest;

use super::backend::{
    Backend, BackendError, BoxFut, EventStream, RequestContext, ServerInfo, UpstreamEvent,
    broadcast_events,
};

impl From<HubError> for BackendError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::UnknownServer { name, .. } => Self::UnknownServer(name),
            HubError::Unavailable { server, reason } => Self::Unavailable {
                server,
                message: reason,
            },
            HubError::Timeout { server, .. } => Self::Timeout(server),
            HubError::Cancelled => Self::Cancelled,
            HubError::Upstream {
                code,
                message,
                data,
            } => Self::Rpc {
                code,
                message,
                data,
            },
            other => Self::Other(other.to_string()),
        }
    }
}

/// Builds the hub's options for one call. The returned guard stops the server-to-client
/// request relay when the call is over. `relay_requests` is set for the requests that may
/// ask the client something (`modern::may_require_input`: tools/call, prompts/get,
/// resources/read), in either era: a 2026-07-28 upstream's `InputRequiredResult` and a
/// handshake-era upstream's `elicitation/create` both reach the client through it. Lists
/// never relay: the hub refuses a server request it cannot attribute to one call, and a
/// concurrent list must not make a running call's request ambiguous.
fn options(
    hub: &Hub,
    server: &str,
    ctx: &RequestContext,
    relay_requests: bool,
) -> (CallOptions, tokio_util::sync::DropGuard) {
    let done = CancellationToken::new();
    let on_progress = ctx.progress_token.is_some().then(|| {
        let ctx = ctx.clone();
        Arc::new(move |p: Value| {
            let Some(progress) = p.get("progress").and_then(Value::as_f64) else {
                return;
            };
            let total = p.get("total").and_then(Value::as_f64);
            let message = p.get("message").and_then(Value::as_str).map(str::to_owned);
            ctx.report_progress(progress, total, message);
        }) as crate::hub::ProgressFn
    });
    let client_requests = (relay_requests && ctx.peer.is_some()).then(|| {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(relay_client_requests(ctx.clone(), rx, done.clone()));
        tx
    });
    let opts = CallOptions {
        timeout: None,
        on_progress,
        cancel: Some(ctx.cancel.clone()),
        client_requests,
        // Only this server's `x-mcp-<server>-*` headers: one client's credential for
        // server A must never reach server B.
        headers: hub.client_headers(server, &ctx.client_headers),
        meta: Vec::new(),
    };
    (opts, done.drop_guard())
}

/// Answers upstream sampling/elicitation/roots requests by asking the downstream client.
/// Owned by the call: `done` fires when the call returns.
async fn relay_client_requests(
    ctx: RequestContext,
    mut rx: mpsc::Receiver<ServerRequest>,
    done: CancellationToken,
) {
    loop {
        let req = tokio::select! {
            () = done.cancelled() => return,
            req = rx.recv() => match req {
                Some(r) => r,
                None => return,
            },
        };
        let params = req.request.params.clone().unwrap_or(Value::Null);
        let answer = match ctx.client_request(&req.request.method, params).await {
            Ok(v) => Ok(v),
            Err(BackendError::Rpc {
                code,
                message,
                data,
            }) => Err(RpcError {
                code,
                message,
                data,
            }),
            Err(e) => Err(RpcError {
                code: -32603,
                message: e.to_string(),
                data: None,
            }),
        };
        let _ = req.respond.send(answer);
    }
}

fn state_label(s: &ServerState) -> String {
    match s {
        ServerState::Stopped => "stopped".into(),
        ServerState::Starting => "starting".into(),
        ServerState::Ready => "ready".into(),
        ServerState::Failed { reason } => format!("failed: {reason}"),
    }
}

impl Backend for Hub {
    fn servers(&self) -> Vec<ServerInfo> {
        self.status()
            .into_iter()
            .map(|st| ServerInfo {
                description: self
                    .server_config(&st.name)
                    .and_then(|c| c.description.clone()),
                prefix: st.name.clone(),
                transport: st.transport.to_owned(),
                tool_count: (st.state == ServerState::Ready).then_some(st.tools),
                status: state_label(&st.state),
                name: st.name,
            })
            .collect()
    }

    fn resolve(&self, name_or_alias: &str) -> Option<String> {
        Hub::resolve(self, name_or_alias)
    }

    fn may_use(&self, caller: &McpCaller, server: &str) -> bool {
        Hub::may_use(self, caller, server)
    }

    fn split_prefixed(&self, aggregated: &str) -> Option<(String, String)> {
        Hub::split_prefixed(self, aggregated)
    }

    fn list_tools<'a>(&'a self, server: &'a str) -> BoxFut<'a, Result<Vec<Value>, BackendError>> {
        Box::pin(async move {
            let tools = Hub::list_tools(self, server).await?;
            Ok(tools
                .into_iter()
                .filter_map(|t| serde_json::to_value(t).ok())
                .collect())
        })
    }

    fn call_tool<'a>(
        &'a self,
        server: &'a str,
        tool: &'a str,
        arguments: Value,
        ctx: RequestContext,
    ) -> BoxFut<'a, Result<Value, BackendError>> {
        Box::pin(async move {
            let (opts, _done) = options(self, server, &ctx, true);
            Ok(Hub::call_tool_with(self, server, tool, arguments, opts).await?)
        })
    }

    fn request<'a>(
        &'a self,
        server: &'a str,
        method: &'a str,
        params: Value,
        ctx: RequestContext,
    ) -> BoxFut<'a, Result<Value, BackendError>> {
        let params = (!params.is_null()).then_some(params);
        Box::pin(async move {
            let relay = crate::upstream::modern::may_require_input(method);
            let (opts, _done) = options(self, server, &ctx, relay);
            Ok(Hub::request_with(self, server, method, params, opts).await?)
        })
    }

    fn toolset(&self, name: &str) -> Option<Vec<(String, Option<Vec<String>>)>> {
        Hub::toolset(self, name)
    }

    fn server_capabilities(&self, server: &str) -> Option<Value> {
        self.server_init(server).map(|i| i.capabilities)
    }

    fn subscribe(&self) -> Option<EventStream> {
        Some(broadcast_events(
            Hub::subscribe(self),
            |ev: crate::HubEvent| {
                Some(UpstreamEvent {
                    server: ev.server,
                    method: ev.notification.method,
                    params: ev.notification.params.unwrap_or(Value::Null),
                })
            },
        ))
    }
}

/// The hub the endpoint serves, replaceable while it runs (config reload): sessions,
/// open streams and parked calls live in the endpoint and survive the swap; each request
/// uses the hub current when it arrives, and a call in flight finishes on the hub it
/// started on. Notifications keep flowing because a reconfigured hub keeps its
/// predecessor's event channel ([`Hub::reconfigured`]).
pub struct CurrentHub(arc_swap::ArcSwap<Hub>);

impl CurrentHub {
    pub fn new(hub: Arc<Hub>) -> Self {
        Self(arc_swap::ArcSwap::new(hub))
    }

    pub fn swap(&self, hub: Arc<Hub>) {
        self.0.store(hub);
    }

    pub fn hub(&self) -> Arc<Hub> {
        self.0.load_full()
    }
}

impl Backend for CurrentHub {
    fn servers(&self) -> Vec<ServerInfo> {
        Backend::servers(&**self.0.load())
    }

    fn resolve(&self, name_or_alias: &str) -> Option<String> {
        Hub::resolve(&self.0.load(), name_or_alias)
    }

    fn may_use(&self, caller: &McpCaller, server: &str) -> bool {
        Hub::may_use(&self.0.load(), caller, server)
    }

    fn prefixed(&self, prefix: &str, tool: &str) -> String {
        Backend::prefixed(&**self.0.load(), prefix, tool)
    }

    fn split_prefixed(&self, aggregated: &str) -> Option<(String, String)> {
        Hub::split_prefixed(&self.0.load(), aggregated)
    }

    fn list_tools<'a>(&'a self, server: &'a str) -> BoxFut<'a, Result<Vec<Value>, BackendError>> {
        let hub = self.hub();
        Box::pin(async move { Backend::list_tools(&*hub, server).await })
    }

    fn call_tool<'a>(
        &'a self,
        server: &'a str,
        tool: &'a str,
        arguments: Value,
        ctx: RequestContext,
    ) -> BoxFut<'a, Result<Value, BackendError>> {
        let hub = self.hub();
        Box::pin(async move { Backend::call_tool(&*hub, server, tool, arguments, ctx).await })
    }

    fn request<'a>(
        &'a self,
        server: &'a str,
        method: &'a str,
        params: Value,
        ctx: RequestContext,
    ) -> BoxFut<'a, Result<Value, BackendError>> {
        let hub = self.hub();
        Box::pin(async move { Backend::request(&*hub, server, method, params, ctx).await })
    }

    fn toolset(&self, name: &str) -> Option<Vec<(String, Option<Vec<String>>)>> {
        Hub::toolset(&self.0.load(), name)
    }

    fn server_capabilities(&self, server: &str) -> Option<Value> {
        Backend::server_capabilities(&**self.0.load(), server)
    }

    fn servable_versions(&self, server: &str) -> Vec<&'static str> {
        Backend::servable_versions(&**self.0.load(), server)
    }

    fn subscribe(&self) -> Option<EventStream> {
        Backend::subscribe(&**self.0.load())
    }
}
