//! One connection to one upstream MCP server, whatever its transport.
//!
//! A transport only moves JSON-RPC messages: it writes what we send and pushes what it
//! reads into one inbound channel. Everything protocol-level lives here, once: id
//! correlation of concurrent requests, timeouts and `notifications/cancelled`, the
//! `initialize` handshake, notifications fanned out on a broadcast channel, and
//! server-to-client requests (`ping` answered here, the rest relayed or refused).

pub mod catalog;
pub mod http;
pub mod legacy_sse;
pub mod modern;
pub mod orphan_guard;
pub mod sse;
pub mod stderr;
pub mod stdio;

use crate::jsonrpc::{Id, Message, Notification, Request, Response, RpcError};
use ::http::HeaderMap;
use gatehouse_config::McpServerConfig;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// Reads an HTTP upstream's body whole, keeping at most `max` bytes (an MCP server is
/// untrusted: an endless body must not hold the gateway's memory). `None` when it was
/// longer: the caller treats that as the server's failure.
pub(crate) async fn read_capped(
    resp: reqwest::Response,
    max: usize,
) -> Result<Option<bytes::Bytes>, reqwest::Error> {
    use futures_util::StreamExt;
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Ok(None);
    }
    let mut out = bytes::BytesMut::new();
    let mut chunks = resp.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > max {
            return Ok(None);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Some(out.freeze()))
}

/// Error bodies are read for their JSON-RPC error or a snippet, no further.
pub(crate) const MAX_ERROR_BODY: usize = 64 * 1024;

/// The protocol revision we ask for; the server's answer wins.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// Bound on the `server/discover` probe: a handshake-era server that ignores unknown
/// requests before `initialize` costs this much at connect.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reopening a dropped `subscriptions/listen` stream: delays double from the minimum to
/// the maximum; one that stayed open `LISTEN_STABLE` starts again at the minimum; after
/// `LISTEN_MAX_REFUSALS` attempts in a row that the server never acknowledged, it gives up.
const LISTEN_BACKOFF_MIN: Duration = Duration::from_millis(250);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(30);
const LISTEN_STABLE: Duration = Duration::from_secs(30);
const LISTEN_MAX_REFUSALS: u32 = 8;

/// Resource URIs one 2026-07-28 upstream's listen stream subscribes to, at most.
const MAX_LISTEN_URIS: usize = 256;

/// How a `subscriptions/listen` stream ended.
enum ListenEnd {
    /// The server ended it, refused it, or the stream closed; `acked`: it had been open.
    Ended { acked: bool, why: String },
    /// We closed it to open one with another filter.
    Refilter,
}

/// How many inbound messages may wait for the dispatcher.
const INBOUND_CAPACITY: usize = 256;
/// Notifications buffered per subscriber before the slowest one starts losing them.
const NOTIFY_CAPACITY: usize = 256;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    #[error("invalid server configuration: {0}")]
    Config(String),
    #[error("could not start: {0}")]
    Spawn(String),
    /// The message never reached the server: safe to retry on a new connection.
    #[error("not delivered: {0}")]
    NotDelivered(String),
    #[error("transport error: {0}")]
    Transport(String),
    #[error("connection closed: {0}")]
    Closed(String),
    #[error("timed out")]
    Timeout,
    #[error("upstream error: {0}")]
    Rpc(RpcError),
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Which wire the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Stdio,
    StreamableHttp,
    LegacySse,
}

impl TransportKind {
    /// Reads `transport` (absent: stdio when `command` is set, else HTTP).
    pub fn of(cfg: &McpServerConfig) -> Result<TransportKind, UpstreamError> {
        match cfg
            .transport
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None if cfg.command.is_some() => Ok(TransportKind::Stdio),
            None => Ok(TransportKind::StreamableHttp),
            Some("stdio") => Ok(TransportKind::Stdio),
            Some("http" | "streamable_http" | "streamable-http" | "streamablehttp") => {
                Ok(TransportKind::StreamableHttp)
            }
            Some("sse") => Ok(TransportKind::LegacySse),
            Some(other) => Err(UpstreamError::Config(format!(
                "unknown transport `{other}`"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Stdio => "stdio",
            TransportKind::StreamableHttp => "http",
            TransportKind::LegacySse => "sse",
        }
    }
}

/// Settings for one connection attempt.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Bound on spawning/connecting plus the `initialize` round trip.
    pub init_timeout: Duration,
    /// Client capabilities announced in `initialize`. Only announce `roots`, `sampling`
    /// or `elicitation` when a request handler that can relay them is registered.
    pub capabilities: Value,
    /// Runs stdio servers under this orphan guard executable (see [`orphan_guard`]).
    pub stdio_guard: Option<std::path::PathBuf>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            init_timeout: Duration::from_secs(30),
            capabilities: json!({}),
            stdio_guard: None,
        }
    }
}

/// What the server answered to `initialize`.
#[derive(Debug, Clone, Default)]
pub struct InitializeResult {
    pub protocol_version: String,
    pub capabilities: Value,
    pub server_info: Value,
    pub instructions: Option<String>,
    /// The whole result, unknown fields included.
    pub raw: Value,
}

/// A request the server sent us (sampling, elicitation, roots, ...). Answer through
/// `respond`; dropping it answers an internal error.
#[derive(Debug)]
pub struct ServerRequest {
    pub request: Request,
    pub respond: oneshot::Sender<Result<Value, RpcError>>,
}

/// The transport under a connection.
enum Transport {
    Stdio(stdio::StdioTransport),
    Http(http::HttpTransport),
    Sse(legacy_sse::SseTransport),
}

impl Transport {
    async fn send(&self, msg: &Message) -> Result<(), UpstreamError> {
        self.send_with(msg, None).await
    }

    /// `extra`: headers for this message's HTTP request only (stdio has none).
    async fn send_with(
        &self,
        msg: &Message,
        extra: Option<&HeaderMap>,
    ) -> Result<(), UpstreamError> {
        let value = msg.to_value();
        match self {
            Transport::Stdio(t) => t.send(&value).await,
            Transport::Http(t) => t.send(&value, extra).await,
            Transport::Sse(t) => t.send(&value, extra).await,
        }
    }

    async fn close(&self) {
        match self {
            Transport::Stdio(t) => t.close().await,
            Transport::Http(t) => t.close().await,
            Transport::Sse(t) => t.close().await,
        }
    }
}

type Pending = HashMap<Id, oneshot::Sender<Result<Value, RpcError>>>;

struct Inner {
    name: String,
    kind: TransportKind,
    transport: Transport,
    pending: Mutex<Pending>,
    next_id: AtomicI64,
    notifications: broadcast::Sender<Notification>,
    handler: Mutex<Option<mpsc::Sender<ServerRequest>>>,
    /// Cancelled when the connection is gone (process exit, stream end, session expiry).
    dead: CancellationToken,
    init: OnceLock<InitializeResult>,
    /// Set when the server speaks 2026-07-28: the client capabilities every request's
    /// `_meta` carries.
    modern: OnceLock<Value>,
    /// 2026-07-28: the URIs the listen stream subscribes to (what `resources/subscribe`
    /// asked for in the handshake era), and the wake-up when they change.
    listen_uris: Mutex<Vec<String>>,
    listen_filter: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another task panicked mid-update of a plain map.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Shared "why did the connection die" slot that transports fill before cancelling.
#[derive(Clone)]
pub(crate) struct DeathNote {
    token: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
}

impl DeathNote {
    fn new() -> Self {
        DeathNote {
            token: CancellationToken::new(),
            reason: Arc::new(Mutex::new(None)),
        }
    }

    /// Marks the connection dead; the first reason wins.
    pub(crate) fn die(&self, reason: impl Into<String>) {
        let mut r = lock(&self.reason);
        if r.is_none() {
            *r = Some(reason.into());
        }
        drop(r);
        self.token.cancel();
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }

    fn reason(&self) -> String {
        lock(&self.reason)
            .clone()
            .unwrap_or_else(|| "connection closed".into())
    }
}

/// One live, initialized session with an upstream server. Cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
    death: DeathNote,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("name", &self.inner.name)
            .field("kind", &self.inner.kind)
            .finish()
    }
}

impl Upstream {
    /// Connects (spawns, opens the stream, ...) and runs the `initialize` handshake.
    pub async fn connect(
        name: &str,
        cfg: &McpServerConfig,
        opts: &ConnectOptions,
    ) -> Result<Upstream, UpstreamError> {
        Self::connect_with_handler(name, cfg, opts, None).await
    }

    /// As [`Upstream::connect`], relaying server-to-client requests to `handler`.
    pub async fn connect_with_handler(
        name: &str,
        cfg: &McpServerConfig,
        opts: &ConnectOptions,
        handler: Option<mpsc::Sender<ServerRequest>>,
    ) -> Result<Upstream, UpstreamError> {
        let kind = TransportKind::of(cfg)?;
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        let death = DeathNote::new();
        let connecting = async {
            Ok::<_, UpstreamError>(match kind {
                TransportKind::Stdio => Transport::Stdio(stdio::StdioTransport::spawn(
                    name,
                    cfg,
                    opts.stdio_guard.as_deref(),
                    tx,
                    death.clone(),
                )?),
                TransportKind::StreamableHttp => {
                    Transport::Http(http::HttpTransport::new(name, cfg, tx, death.clone())?)
                }
                TransportKind::LegacySse => Transport::Sse(
                    legacy_sse::SseTransport::connect(name, cfg, tx, death.clone()).await?,
                ),
            })
        };
        let transport = tokio::time::timeout(opts.init_timeout, connecting)
            .await
            .map_err(|_| UpstreamError::Spawn("timed out connecting".into()))??;
        let (notifications, _) = broadcast::channel(NOTIFY_CAPACITY);
        let up = Upstream {
            inner: Arc::new(Inner {
                name: name.to_string(),
                kind,
                transport,
                pending: Mutex::new(HashMap::new()),
                next_id: AtomicI64::new(1),
                notifications,
                handler: Mutex::new(handler),
                dead: death.token().clone(),
                init: OnceLock::new(),
                modern: OnceLock::new(),
                listen_uris: Mutex::new(Vec::new()),
                listen_filter: tokio::sync::Notify::new(),
            }),
            death,
        };
        tokio::spawn(dispatch(up.clone(), rx));
        let connected = match kind {
            // HTTP+SSE is 2024-11-05 only.
            TransportKind::LegacySse => up.initialize(opts).await,
            _ => match up
                .discover(opts, opts.init_timeout.min(PROBE_TIMEOUT))
                .await
            {
                Ok(true) => Ok(()),
                Ok(false) => match up.initialize(opts).await {
                    // Refused as a 2026-07-28 server: it answered the probe after the
                    // probe gave up (a slow start). Ask again with the whole budget.
                    Err(UpstreamError::Rpc(e)) if e.code == modern::UNSUPPORTED_VERSION => {
                        match up.discover(opts, opts.init_timeout).await {
                            Ok(true) => Ok(()),
                            Ok(false) => Err(UpstreamError::Rpc(e)),
                            Err(other) => Err(other),
                        }
                    }
                    other => other,
                },
                Err(e) => Err(e),
            },
        };
        match connected {
            Ok(()) => Ok(up),
            Err(e) => {
                up.close().await;
                Err(e)
            }
        }
    }

    /// Probes `server/discover` at 2026-07-28; `Ok(true)` when the server speaks it (and
    /// is now spoken to that way), `Ok(false)` to fall back to `initialize`. Only a dead
    /// connection is an error: any answer that is not positive evidence is a fallback.
    async fn discover(
        &self,
        opts: &ConnectOptions,
        timeout: Duration,
    ) -> Result<bool, UpstreamError> {
        if let Transport::Http(t) = &self.inner.transport {
            t.set_protocol_version(modern::MODERN_VERSION);
        }
        let params = modern::envelope(None, &opts.capabilities);
        let probe = self
            .call("server/discover", Some(params), timeout, false, None)
            .await;
        let raw = match probe {
            Ok(raw) if modern::speaks_modern(&raw) => raw,
            Ok(_)
            | Err(
                UpstreamError::Rpc(_)
                | UpstreamError::Timeout
                | UpstreamError::Transport(_)
                | UpstreamError::Protocol(_),
            ) => {
                if let Transport::Http(t) = &self.inner.transport {
                    t.clear_protocol_version();
                }
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let _ = self.inner.modern.set(opts.capabilities.clone());
        let _ = self.inner.init.set(modern::init_from_discover(raw));
        self.listen(&opts.capabilities);
        Ok(true)
    }

    /// Keeps the `subscriptions/listen` stream that carries list-changed notifications
    /// (2026-07-28 has no GET stream) open for the connection's lifetime. Its answer
    /// never comes while it is open, so nothing waits on it; when the server ends it (a
    /// final result, an error, or over HTTP the stream closing without either) it alone
    /// is reopened, with backoff: the connection and the calls on it carry on.
    fn listen(&self, capabilities: &Value) {
        let up = self.clone();
        let capabilities = capabilities.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = up.keep_listening(capabilities) => {}
                () = up.inner.dead.cancelled() => {}
            }
        });
    }

    async fn keep_listening(&self, capabilities: Value) {
        let name = &self.inner.name;
        let mut backoff = LISTEN_BACKOFF_MIN;
        let mut refused = 0;
        let mut catch_up = false;
        for n in 1u64.. {
            let uris = lock(&self.inner.listen_uris).clone();
            let params = modern::listen_params(&capabilities, &uris);
            let opened = std::time::Instant::now();
            let (acked, why) = match self.listen_once(n, params, catch_up).await {
                // A new filter: the old stream is closed, the new one opened at once.
                ListenEnd::Refilter => {
                    catch_up = false;
                    continue;
                }
                ListenEnd::Ended { acked, why } => (acked, why),
            };
            catch_up = true;
            if acked {
                refused = 0;
                if opened.elapsed() >= LISTEN_STABLE {
                    backoff = LISTEN_BACKOFF_MIN;
                }
                tracing::info!(server = %name, reason = %why, retry_in_ms = backoff.as_millis() as u64, "subscriptions/listen stream ended; reopening it");
            } else {
                refused += 1;
                if refused >= LISTEN_MAX_REFUSALS {
                    tracing::warn!(server = %name, reason = %why, "subscriptions/listen refused {refused} times in a row; list changes of this server go unnoticed until it reconnects");
                    return;
                }
                tracing::debug!(server = %name, reason = %why, "subscriptions/listen not opened");
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.inner.listen_filter.notified() => {}
            }
            backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
        }
    }

    /// One `subscriptions/listen` stream, from request to end. With `catch_up` (it
    /// replaces one that dropped), its ack is followed by a list_changed of every kind:
    /// changes made while no stream was open are not replayed (spec: subscriptions), so
    /// the hub refetches its catalog and clients relist.
    async fn listen_once(&self, n: u64, params: Value, catch_up: bool) -> ListenEnd {
        let id = Id::String(format!("gatehouse-listen-{n}"));
        let (tx, mut answer) = oneshot::channel();
        lock(&self.inner.pending).insert(id.clone(), tx);
        // Forgets the pending entry however this ends; armed (the stream is closed, or
        // cancelled on stdio) only when a new filter replaces it.
        let mut guard = CancelGuard {
            up: self.clone(),
            id: id.clone(),
            armed: false,
        };
        let mut notes = self.subscribe();
        let msg = Message::Request(Request::new(
            id.clone(),
            "subscriptions/listen",
            Some(params),
        ));
        if let Err(e) = self.inner.transport.send(&msg).await {
            return ListenEnd::Ended {
                acked: false,
                why: e.to_string(),
            };
        }
        let id = id.to_value();
        let mut acked = false;
        loop {
            tokio::select! {
                r = &mut answer => {
                    let why = match r {
                        Ok(Ok(_)) => "the server ended it".to_owned(),
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "connection closed".to_owned(),
                    };
                    return ListenEnd::Ended { acked, why };
                }
                () = self.inner.listen_filter.notified() => {
                    guard.armed = true;
                    return ListenEnd::Refilter;
                }
                note = notes.recv(), if !acked => match note {
                    Ok(note) if modern::acknowledges(&note, &id) => {
                        acked = true;
                        if catch_up {
                            for method in modern::LIST_CHANGED {
                                let _ = self.inner.notifications.send(Notification::new(*method, None));
                            }
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => {
                        return ListenEnd::Ended { acked, why: "connection closed".to_owned() };
                    }
                },
            }
        }
    }

    /// 2026-07-28 has no `resources/subscribe`: `uri` joins (or leaves) the listen
    /// stream's `resourceSubscriptions`, and the stream is reopened with the new filter.
    pub fn listen_resource(&self, uri: &str, subscribe: bool) -> Result<(), UpstreamError> {
        let mut uris = lock(&self.inner.listen_uris);
        match (subscribe, uris.iter().position(|u| u == uri)) {
            (true, None) if uris.len() >= MAX_LISTEN_URIS => {
                return Err(UpstreamError::Rpc(RpcError::new(
                    crate::jsonrpc::codes::INTERNAL_ERROR,
                    format!("at most {MAX_LISTEN_URIS} resource subscriptions per server"),
                )));
            }
            (true, None) => uris.push(uri.to_owned()),
            (false, Some(at)) => {
                uris.remove(at);
            }
            _ => return Ok(()),
        }
        drop(uris);
        self.inner.listen_filter.notify_one();
        Ok(())
    }

    /// Whether this connection speaks 2026-07-28.
    pub fn is_modern(&self) -> bool {
        self.inner.modern.get().is_some()
    }

    async fn initialize(&self, opts: &ConnectOptions) -> Result<(), UpstreamError> {
        let params = json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": opts.capabilities,
            "clientInfo": {"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")},
        });
        let raw = self
            .call("initialize", Some(params), opts.init_timeout, false, None)
            .await?;
        let version = raw
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(PROTOCOL_VERSION)
            .to_string();
        if let Transport::Http(t) = &self.inner.transport {
            t.set_protocol_version(&version);
        }
        let result = InitializeResult {
            protocol_version: version,
            capabilities: raw
                .get("capabilities")
                .cloned()
                .unwrap_or_else(|| json!({})),
            server_info: raw.get("serverInfo").cloned().unwrap_or(Value::Null),
            instructions: raw
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_string),
            raw,
        };
        let _ = self.inner.init.set(result);
        self.notify("notifications/initialized", None).await?;
        if let Transport::Http(t) = &self.inner.transport {
            t.open_get_stream();
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn kind(&self) -> TransportKind {
        self.inner.kind
    }

    /// The `initialize` answer (always set on a connected `Upstream`).
    pub fn init_result(&self) -> Option<&InitializeResult> {
        self.inner.init.get()
    }

    /// The child process id (stdio only).
    pub fn pid(&self) -> Option<u32> {
        match &self.inner.transport {
            Transport::Stdio(t) => t.pid(),
            _ => None,
        }
    }

    /// The `Mcp-Session-Id` of a streamable HTTP session.
    pub fn session_id(&self) -> Option<String> {
        match &self.inner.transport {
            Transport::Http(t) => t.session_id(),
            _ => None,
        }
    }

    /// Notifications from the server (list_changed, progress, logging, ...).
    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.inner.notifications.subscribe()
    }

    /// Relays server-to-client requests other than `ping` to `handler` from now on.
    pub fn set_request_handler(&self, handler: Option<mpsc::Sender<ServerRequest>>) {
        *lock(&self.inner.handler) = handler;
    }

    pub fn is_closed(&self) -> bool {
        self.inner.dead.is_cancelled()
    }

    /// Resolves when the connection is gone; returns why.
    pub async fn closed(&self) -> String {
        self.inner.dead.cancelled().await;
        self.close_reason()
    }

    fn close_reason(&self) -> String {
        self.death.reason()
    }

    /// Sends a request and waits for its answer. A timeout or a dropped future sends
    /// `notifications/cancelled` upstream.
    pub async fn request(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, UpstreamError> {
        self.call(method, params, timeout, true, None).await
    }

    /// As [`Upstream::request`], adding `headers` to the HTTP request that carries this
    /// message (streamable HTTP and legacy SSE; ignored for stdio). They replace
    /// configured headers of the same name for this request only; the session stays
    /// shared, so nothing else sent on it carries them.
    pub async fn request_with_headers(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
        headers: &HeaderMap,
    ) -> Result<Value, UpstreamError> {
        let extra = (!headers.is_empty()).then_some(headers);
        self.call(method, params, timeout, true, extra).await
    }

    async fn call(
        &self,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
        cancellable: bool,
        extra: Option<&HeaderMap>,
    ) -> Result<Value, UpstreamError> {
        if self.is_closed() {
            return Err(UpstreamError::NotDelivered(self.close_reason()));
        }
        let id = Id::Number(self.inner.next_id.fetch_add(1, Ordering::Relaxed));
        let params = match self.inner.modern.get() {
            Some(caps) => Some(modern::envelope(params, caps)),
            None => params,
        };
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(id.clone(), tx);
        let mut guard = CancelGuard {
            up: self.clone(),
            id: id.clone(),
            armed: cancellable,
        };
        let msg = Message::Request(Request::new(id, method, params));
        // The deadline covers sending too: an HTTP server may hold the POST open.
        let deadline = tokio::time::Instant::now() + timeout;
        match tokio::time::timeout_at(deadline, self.inner.transport.send_with(&msg, extra)).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Err(e)) => {
                guard.armed = false;
                return Err(e);
            }
            Ok(Ok(())) => {}
        }
        let outcome = tokio::select! {
            r = rx => match r {
                Ok(r) => r.map_err(UpstreamError::Rpc),
                Err(_) => Err(UpstreamError::Closed(self.close_reason())),
            },
            _ = self.inner.dead.cancelled() => Err(UpstreamError::Closed(self.close_reason())),
            _ = tokio::time::sleep_until(deadline) => return Err(UpstreamError::Timeout),
        };
        guard.armed = false;
        outcome
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), UpstreamError> {
        let msg = Message::Notification(Notification::new(method, params));
        self.inner.transport.send(&msg).await
    }

    /// Ends the session: kills the process group / deletes the HTTP session.
    pub async fn close(&self) {
        self.death.die("closed by gatehouse");
        self.inner.transport.close().await;
    }

    async fn respond(&self, resp: Response) {
        if let Err(e) = self.inner.transport.send(&Message::Response(resp)).await {
            tracing::debug!(server = %self.inner.name, error = %e, "could not answer a server request");
        }
    }
}

/// Removes the pending entry when a request ends and, if it ended without an answer
/// (timeout, caller gone), tells the server to stop working on it.
struct CancelGuard {
    up: Upstream,
    id: Id,
    armed: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        lock(&self.up.inner.pending).remove(&self.id);
        if !self.armed || self.up.is_closed() {
            return;
        }
        if let Transport::Http(t) = &self.up.inner.transport {
            // 2026-07-28: closing the request's response stream is the cancellation.
            t.close_stream(&self.id.to_value().to_string());
            if self.up.is_modern() {
                return;
            }
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let up = self.up.clone();
        let id = self.id.to_value();
        rt.spawn(async move {
            let params = json!({"requestId": id, "reason": "cancelled by gatehouse (timeout or client gone)"});
            if let Err(e) = up.notify("notifications/cancelled", Some(params)).await {
                tracing::debug!(server = %up.inner.name, error = %e, "could not send notifications/cancelled");
            }
        });
    }
}

/// Routes every inbound message; ends when the transport's channel closes.
async fn dispatch(up: Upstream, mut rx: mpsc::Receiver<Message>) {
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = up.inner.dead.cancelled() => None,
        };
        let Some(msg) = msg else { break };
        match msg {
            Message::Response(r) => {
                let waiter = lock(&up.inner.pending).remove(&r.id);
                match waiter {
                    Some(w) => {
                        let _ = w.send(r.outcome);
                    }
                    None => {
                        tracing::debug!(server = %up.inner.name, id = %r.id, "response to no pending request")
                    }
                }
            }
            Message::Notification(n) => {
                // No subscriber is fine: nobody cares about this server's events now.
                let _ = up.inner.notifications.send(n);
            }
            Message::Request(req) => handle_server_request(&up, req).await,
        }
    }
    up.death.die("connection closed");
    // Dropping the senders wakes every waiter with "closed".
    lock(&up.inner.pending).clear();
}

async fn handle_server_request(up: &Upstream, req: Request) {
    if req.method == "ping" {
        up.respond(Response::ok(req.id, json!({}))).await;
        return;
    }
    let handler = lock(&up.inner.handler).clone();
    let Some(handler) = handler else {
        let err = RpcError::method_not_found(&req.method);
        up.respond(Response::err(req.id, err)).await;
        return;
    };
    let id = req.id.clone();
    let (tx, rx) = oneshot::channel();
    if handler
        .try_send(ServerRequest {
            request: req,
            respond: tx,
        })
        .is_err()
    {
        let err = RpcError::new(
            crate::jsonrpc::codes::INTERNAL_ERROR,
            "client request handler unavailable",
        );
        up.respond(Response::err(id, err)).await;
        return;
    }
    let up = up.clone();
    tokio::spawn(async move {
        let outcome = rx.await.unwrap_or_else(|_| {
            Err(RpcError::new(
                crate::jsonrpc::codes::INTERNAL_ERROR,
                "request dropped",
            ))
        });
        up.respond(Response {
            id,
            outcome,
            extra: Default::default(),
        })
        .await;
    });
}
