//! The hub: every configured upstream MCP server, supervised, behind one API.
//!
//! CONTRACT (used by the server crate and the tool-execution loop; keep these signatures):
//! - `Hub::from_config(&Config) -> Result<Arc<Hub>, HubError>` builds it (no I/O).
//! - `hub.start()` spawns supervisors (upstreams connect in the background; stdio
//!   servers may start lazily on first use); `hub.shutdown().await` stops them all.
//! - `hub.reconfigured(&Config) -> Result<Arc<Hub>, HubError>` (config reload): a new hub
//!   sharing the running supervisor of every server whose definition did not change.
//! - `hub.resolve(name_or_alias) -> Option<String>` → configured server name.
//! - `hub.server_names()`, `hub.status() -> Vec<ServerStatus>` for /health and listings.
//! - `hub.may_use(&McpCaller, server) -> bool`.
//! - `hub.list_tools(server).await -> Result<Vec<Tool>, HubError>`: the server's tools after
//!   `allowed_tools` / `disallowed_tools`, unprefixed.
//! - `hub.call_tool(server, tool, arguments, timeout).await -> Result<Value, HubError>`:
//!   the MCP `CallToolResult` JSON (`content`, `isError`, `structuredContent`, ...).
//! - `hub.request(server, method, params).await -> Result<Value, HubError>`: any other
//!   MCP request forwarded as is (prompts/*, resources/*, completion/complete, ...).
//! - `hub.client_headers(server, &HeaderMap) -> Vec<(String, String)>`: the request's
//!   `x-mcp-<server>-<header>` headers for that server, for `CallOptions::headers`.
//! - `naming::prefixed(server_or_alias, tool)` / `hub.split_prefixed(name)` map
//!   aggregated tool names `<server>-<tool>` both ways.
//!
//! Each server has one supervisor task that owns its connection: it connects,
//! initializes, fetches the catalog, publishes `Ready`, keeps the catalog fresh on
//! `list_changed`, and reconnects with exponential backoff when the connection dies.
//! Callers never connect themselves; they wait (bounded) for the supervisor.

use crate::caller::McpCaller;
use crate::jsonrpc::Notification;
use crate::jsonrpc::RpcError;
use crate::naming::{self, NameTable};
use crate::upstream::catalog::{Catalog, ListKind};
use crate::upstream::{ConnectOptions, ServerRequest, TransportKind, Upstream, UpstreamError};
use gatehouse_config::{Config, McpServerConfig};
use indexmap::IndexMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use crate::upstream::catalog::Tool;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HubError {
    #[error("unknown MCP server `{name}` (known: {})", known.join(", "))]
    UnknownServer { name: String, known: Vec<String> },
    #[error("not allowed to use this MCP server")]
    Forbidden,
    #[error("unknown tool `{tool}` on MCP server `{server}`")]
    UnknownTool { server: String, tool: String },
    #[error("MCP server `{server}` is unavailable: {reason}")]
    Unavailable { server: String, reason: String },
    #[error("MCP server `{server}` did not answer within {seconds}s")]
    Timeout { server: String, seconds: f64 },
    #[error("MCP server error {code}: {message}")]
    Upstream {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    #[error("MCP transport error: {0}")]
    Transport(String),
    #[error("invalid MCP configuration: {0}")]
    InvalidConfig(String),
    /// The caller's cancellation token fired (the upstream was told to stop).
    #[error("cancelled")]
    Cancelled,
}

/// Receives each `notifications/progress` params object of one call.
pub type ProgressFn = Arc<dyn Fn(Value) + Send + Sync>;

/// Per-call extras for [`Hub::call_tool_with`] and [`Hub::request_with`].
#[derive(Clone, Default)]
pub struct CallOptions {
    /// `None`: the server's `timeout`, else [`HubSettings::default_timeout`].
    pub timeout: Option<Duration>,
    /// Upstream progress for this call. The hub sends its own unique progress token
    /// upstream (one upstream session serves many clients); the params handed here
    /// carry that token, so put the client's own token back before relaying.
    pub on_progress: Option<ProgressFn>,
    /// Fires when the client gives up: the call ends with [`HubError::Cancelled`] and
    /// `notifications/cancelled` goes upstream.
    pub cancel: Option<CancellationToken>,
    /// Server-to-client requests (sampling, elicitation, roots) arriving while this call
    /// runs are relayed here (the most recent such call on the server wins). Only useful
    /// when [`HubSettings::client_capabilities`] announces them.
    pub client_requests: Option<mpsc::Sender<ServerRequest>>,
    /// Extra HTTP headers for this call only (streamable HTTP and legacy SSE; stdio
    /// ignores them), e.g. what [`crate::client_headers_for`] picked for this server.
    /// They go on the POST(s) carrying this request on the server's one shared upstream
    /// session — streamable-HTTP servers authenticate each request, so a per-user
    /// `authorization` applies to this call — and never on any other call or server. A
    /// configured header of the same name is replaced for this call; session headers
    /// (`mcp-session-id`, `content-type`, `host`, ...) cannot be set.
    pub headers: Vec<(String, String)>,
    /// Entries for the call's `params._meta` (e.g. `traceparent`, SEP-414).
    pub meta: Vec<(String, Value)>,
}

impl std::fmt::Debug for CallOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallOptions")
            .field("timeout", &self.timeout)
            .field("on_progress", &self.on_progress.is_some())
            .field("cancel", &self.cancel)
            .field("client_requests", &self.client_requests.is_some())
            // Names only: values are usually credentials.
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Tunables; [`HubSettings::default`] is what `from_config` uses.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// A tool result serialized larger than this is replaced by a truncated text.
    pub max_output_bytes: usize,
    /// Per-call timeout when neither the caller nor the server config sets one.
    pub default_timeout: Duration,
    /// How long a call waits for a starting / reconnecting server.
    pub ready_wait: Duration,
    /// Bound on connecting + `initialize` + first catalog fetch.
    pub init_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// A session that lived this long resets the backoff.
    pub stable_after: Duration,
    /// Client capabilities announced upstream in `initialize`. Announce `sampling`,
    /// `elicitation` or `roots` only once callers pass [`CallOptions::client_requests`].
    pub client_capabilities: Value,
    /// The executable that runs stdio servers under the orphan guard (the `gatehouse`
    /// binary itself, see `upstream::orphan_guard`); `None` spawns them directly.
    pub stdio_guard: Option<std::path::PathBuf>,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings {
            max_output_bytes: 1024 * 1024,
            default_timeout: Duration::from_secs(60),
            ready_wait: Duration::from_secs(30),
            init_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            client_capabilities: json!({}),
            stdio_guard: None,
        }
    }
}

/// A server's lifecycle state as shown in `/health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerState {
    /// `start()` not called yet, or shut down.
    Stopped,
    Starting,
    Ready,
    /// The last connection attempt failed, or the connection died; a retry is scheduled.
    Failed {
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct ServerStatus {
    pub name: String,
    /// `stdio`, `http` or `sse`.
    pub transport: &'static str,
    pub state: ServerState,
    /// Connection attempts after the first one.
    pub restarts: u32,
    /// Tools after `allowed_tools` / `disallowed_tools` (0 unless ready).
    pub tools: usize,
    pub protocol_version: Option<String>,
    /// The server's `serverInfo` from `initialize`.
    pub server_info: Option<Value>,
    /// The child process id of a running stdio server.
    pub pid: Option<u32>,
}

/// A notification from an upstream server (list_changed, progress, logging, ...).
#[derive(Debug, Clone)]
pub struct HubEvent {
    pub server: String,
    pub notification: Notification,
}

/// A ready connection and what it offers.
struct Live {
    up: Upstream,
    cache: RwLock<Cached>,
    relays: Arc<Relays>,
}

/// Handlers of in-flight calls that accept server-to-client requests.
#[derive(Default)]
struct Relays {
    next: AtomicU64,
    active: Mutex<Vec<(u64, mpsc::Sender<ServerRequest>)>>,
}

impl Relays {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, mpsc::Sender<ServerRequest>)>> {
        self.active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn register(self: &Arc<Self>, tx: mpsc::Sender<ServerRequest>) -> RelayGuard {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().push((id, tx));
        RelayGuard {
            relays: self.clone(),
            id,
        }
    }

    /// Hands each server request to the one call that can have caused it, or refuses it.
    /// A handshake-era server's request names no call, so with several calls in flight on
    /// one connection it cannot be told whose it is: it is refused rather than put to a
    /// client that did not cause it (sampling or elicitation must reach the right person).
    async fn route(self: Arc<Self>, mut rx: mpsc::Receiver<ServerRequest>) {
        while let Some(req) = rx.recv().await {
            let target = {
                let active = self.lock();
                match active.as_slice() {
                    [(_, tx)] => Ok(tx.clone()),
                    [] => Err(RpcError::method_not_found(&req.request.method)),
                    _ => Err(RpcError::new(
                        crate::jsonrpc::codes::INTERNAL_ERROR,
                        format!(
                            "{} refused: several calls are in flight on this connection and the request does not say which one it belongs to",
                            req.request.method
                        ),
                    )),
                }
            };
            match target {
                Ok(tx) => {
                    if let Err(mpsc::error::SendError(req)) = tx.send(req).await {
                        let _ = req
                            .respond
                            .send(Err(RpcError::method_not_found(&req.request.method)));
                    }
                }
                Err(e) => {
                    let _ = req.respond.send(Err(e));
                }
            }
        }
    }
}

struct RelayGuard {
    relays: Arc<Relays>,
    id: u64,
}

impl Drop for RelayGuard {
    fn drop(&mut self) {
        self.relays.lock().retain(|(id, _)| *id != self.id);
    }
}

struct Cached {
    catalog: Catalog,
    /// Aggregated names under the configured server name.
    names: NameTable,
}

impl Live {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Clone)]
enum Conn {
    Stopped,
    Starting,
    Ready(Arc<Live>),
    Failed(String),
}

struct Server {
    name: String,
    cfg: McpServerConfig,
    kind: TransportKind,
    /// SHA-256 hex of each key in `api_keys`.
    key_hashes: Option<HashSet<String>>,
    state: watch::Sender<Conn>,
    restarts: AtomicU32,
    /// Cuts the supervisor's backoff sleep short when a caller needs the server.
    kick: Notify,
}

impl Server {
    fn tool_allowed(&self, tool: &str) -> bool {
        let matches = |list: &Vec<String>| {
            list.iter()
                .any(|t| t == tool || *t == naming::prefixed(&self.name, tool))
        };
        if let Some(allowed) = &self.cfg.allowed_tools
            && !matches(allowed)
        {
            return false;
        }
        !self.cfg.disallowed_tools.as_ref().is_some_and(matches)
    }

    fn timeout(&self, settings: &HubSettings) -> Duration {
        self.cfg
            .timeout
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(settings.default_timeout)
    }
}

/// Unique progress tokens for calls made through the hub.
static PROGRESS_SEQ: AtomicU64 = AtomicU64::new(1);

/// SHA-256 hex of a key, as `McpCaller::key_hash` carries it.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The registry of upstream servers. Build with [`Hub::from_config`], then [`Hub::start`].
pub struct Hub {
    servers: IndexMap<String, Arc<Server>>,
    /// alias → configured server name.
    aliases: IndexMap<String, String>,
    settings: HubSettings,
    /// `mcp_settings:` and `toolsets:`, for the endpoint.
    mcp_settings: gatehouse_config::McpSettings,
    toolsets: IndexMap<String, gatehouse_config::ToolsetConfig>,
    events: broadcast::Sender<HubEvent>,
    /// One per server, in `servers` order. Shared with the hub a reload builds when the
    /// server's definition did not change, so its process and session live on.
    runs: IndexMap<String, Arc<Run>>,
    started: AtomicBool,
}

/// One server's supervisor: its own stop token, so a reload can stop one server and keep
/// the rest. Dropped by the last hub that has the server (the old hub once its last
/// in-flight request is done, when a reload removed or changed it), it stops the
/// supervisor, which closes the upstream (process group killed, session deleted).
#[derive(Default)]
struct Run {
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
    spawned: AtomicBool,
}

impl Run {
    fn take_task(&self) -> Option<JoinHandle<()>> {
        self.task
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("servers", &self.servers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Hub {
    /// Builds the hub from `mcp_servers` and `litellm_settings.mcp_aliases` (no I/O).
    pub fn from_config(config: &Config) -> Result<Arc<Hub>, HubError> {
        Self::with_settings(config, HubSettings::default())
    }

    pub fn with_settings(config: &Config, settings: HubSettings) -> Result<Arc<Hub>, HubError> {
        Self::build(config, settings).map(Arc::new)
    }

    fn build(config: &Config, settings: HubSettings) -> Result<Hub, HubError> {
        let mut servers = IndexMap::new();
        for (name, cfg) in &config.mcp_servers {
            if name.is_empty() || name.contains(naming::SEPARATOR) || !naming::is_valid(name) {
                return Err(HubError::InvalidConfig(format!(
                    "MCP server name `{name}` must be 1-64 of [a-zA-Z0-9_] (no `-`: it separates server and tool)"
                )));
            }
            let kind = TransportKind::of(cfg)
                .map_err(|e| HubError::InvalidConfig(format!("{name}: {e}")))?;
            match kind {
                TransportKind::Stdio if cfg.command.is_none() => {
                    return Err(HubError::InvalidConfig(format!(
                        "{name}: stdio server without `command`"
                    )));
                }
                TransportKind::StreamableHttp | TransportKind::LegacySse if cfg.url.is_none() => {
                    return Err(HubError::InvalidConfig(format!(
                        "{name}: server without `url`"
                    )));
                }
                _ => {}
            }
            let key_hashes = cfg
                .api_keys
                .as_ref()
                .map(|keys| keys.iter().map(|k| sha256_hex(k)).collect());
            let (state, _) = watch::channel(Conn::Stopped);
            let server = Server {
                name: name.clone(),
                cfg: cfg.clone(),
                kind,
                key_hashes,
                state,
                restarts: AtomicU32::new(0),
                kick: Notify::new(),
            };
            servers.insert(name.clone(), Arc::new(server));
        }
        let runs = servers
            .keys()
            .map(|name| (name.clone(), Arc::new(Run::default())))
            .collect();
        let mut aliases = IndexMap::new();
        for (alias, target) in &config.litellm_settings.mcp_aliases {
            if servers.contains_key(target) {
                aliases.insert(alias.clone(), target.clone());
            } else {
                tracing::warn!(alias = %alias, target = %target, "mcp_aliases entry names no configured MCP server");
            }
        }
        let (events, _) = broadcast::channel(1024);
        Ok(Hub {
            servers,
            aliases,
            settings,
            mcp_settings: mcp_settings(config),
            toolsets: config.toolsets.clone(),
            events,
            runs,
            started: AtomicBool::new(false),
        })
    }

    /// The hub for a reloaded config: every server whose definition is unchanged is the
    /// same server (its supervisor, process or session, catalog and restart count carry
    /// on); new and changed ones start with [`Hub::start`]; removed and changed ones stop
    /// when this hub is dropped (after the requests still using it finish). Aliases,
    /// toolsets and `mcp_settings` come from the new config; notifications keep flowing
    /// on the same channel, so open client streams keep receiving them.
    pub fn reconfigured(&self, config: &Config) -> Result<Arc<Hub>, HubError> {
        let mut hub = Self::build(config, self.settings.clone())?;
        hub.events = self.events.clone();
        for (name, server) in hub.servers.iter_mut() {
            let (Some(old), Some(run)) = (self.servers.get(name), self.runs.get(name)) else {
                continue;
            };
            if same_definition(&old.cfg, &server.cfg) {
                *server = old.clone();
                hub.runs.insert(name.clone(), run.clone());
            }
        }
        Ok(Arc::new(hub))
    }

    /// Which servers a reload to `next` keeps running, starts and stops, for the log.
    pub fn changes_to(&self, next: &Hub) -> ServerChanges {
        let mut changes = ServerChanges::default();
        for (name, run) in &next.runs {
            match self.runs.get(name) {
                Some(old) if Arc::ptr_eq(old, run) => changes.kept.push(name.clone()),
                Some(_) => changes.restarted.push(name.clone()),
                None => changes.added.push(name.clone()),
            }
        }
        changes.removed = self
            .runs
            .keys()
            .filter(|n| !next.runs.contains_key(*n))
            .cloned()
            .collect();
        changes
    }

    /// Spawns one supervisor per server; returns at once (connections come up in the
    /// background). Calling it twice does nothing.
    /// A server a reconfigured hub shares with its predecessor is already running and is
    /// left alone.
    pub fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        for (server, run) in self.servers.values().zip(self.runs.values()) {
            if run.spawned.swap(true, Ordering::SeqCst) {
                continue;
            }
            server.state.send_replace(Conn::Starting);
            let sup = Supervisor {
                server: server.clone(),
                settings: self.settings.clone(),
                events: self.events.clone(),
                stop: run.stop.clone(),
            };
            *run.task
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tokio::spawn(sup.run()));
        }
    }

    /// Stops every supervisor and closes every upstream (process groups killed,
    /// HTTP sessions deleted).
    pub async fn shutdown(&self) {
        for run in self.runs.values() {
            run.stop.cancel();
        }
        let tasks: Vec<_> = self.runs.values().filter_map(|r| r.take_task()).collect();
        for t in tasks {
            if tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .is_err()
            {
                tracing::warn!("an MCP supervisor did not stop in time");
            }
        }
    }

    /// The config's `mcp_settings:` (endpoint limits and modes).
    pub fn mcp_settings(&self) -> &gatehouse_config::McpSettings {
        &self.mcp_settings
    }

    /// A toolset's entries: `(server name or alias, picked tools or None for all)`.
    pub fn toolset(&self, name: &str) -> Option<Vec<(String, Option<Vec<String>>)>> {
        self.toolsets.get(name).map(|t| {
            t.tools
                .iter()
                .map(|e| (e.server.clone(), e.tools.clone()))
                .collect()
        })
    }

    pub fn settings(&self) -> &HubSettings {
        &self.settings
    }

    /// Configured server names, in config order.
    pub fn server_names(&self) -> Vec<String> {
        self.servers.keys().cloned().collect()
    }

    /// A configured server name or an alias → the configured server name.
    pub fn resolve(&self, name_or_alias: &str) -> Option<String> {
        if self.servers.contains_key(name_or_alias) {
            return Some(name_or_alias.to_string());
        }
        self.aliases.get(name_or_alias).cloned()
    }

    /// The server's config (for description, require_approval, ...).
    pub fn server_config(&self, server: &str) -> Option<&McpServerConfig> {
        self.resolve(server)
            .and_then(|n| self.servers.get(&n))
            .map(|s| &s.cfg)
    }

    /// The `x-mcp-<server>-<header>` headers of `headers` meant for `server` (under its
    /// configured name or any of its aliases), prefix stripped; empty for an unknown
    /// server. See [`crate::client_headers_for`].
    pub fn client_headers(&self, server: &str, headers: &http::HeaderMap) -> Vec<(String, String)> {
        let Some(name) = self.resolve(server) else {
            return Vec::new();
        };
        let labels: Vec<&str> = std::iter::once(name.as_str())
            .chain(
                self.aliases
                    .iter()
                    .filter(|(_, target)| **target == name)
                    .map(|(alias, _)| alias.as_str()),
            )
            .collect();
        crate::client_headers::pick(&labels, headers)
    }

    /// Notifications from every upstream, tagged with the server name.
    pub fn subscribe(&self) -> broadcast::Receiver<HubEvent> {
        self.events.subscribe()
    }

    pub fn status(&self) -> Vec<ServerStatus> {
        self.servers
            .values()
            .map(|s| {
                let conn = s.state.borrow().clone();
                let (state, live) = match conn {
                    Conn::Stopped => (ServerState::Stopped, None),
                    Conn::Starting => (ServerState::Starting, None),
                    Conn::Ready(l) => (ServerState::Ready, Some(l)),
                    Conn::Failed(reason) => (ServerState::Failed { reason }, None),
                };
                let init = live.as_ref().and_then(|l| l.up.init_result().cloned());
                ServerStatus {
                    name: s.name.clone(),
                    transport: s.kind.as_str(),
                    state,
                    restarts: s.restarts.load(Ordering::Relaxed),
                    tools: live
                        .as_ref()
                        .map(|l| {
                            l.read()
                                .catalog
                                .tools
                                .iter()
                                .filter(|t| s.tool_allowed(&t.name))
                                .count()
                        })
                        .unwrap_or(0),
                    protocol_version: init.as_ref().map(|i| i.protocol_version.clone()),
                    server_info: init.map(|i| i.server_info),
                    pid: live.and_then(|l| l.up.pid()),
                }
            })
            .collect()
    }

    /// Whether `caller` may use `server` (name or alias).
    pub fn may_use(&self, caller: &McpCaller, server: &str) -> bool {
        if caller.is_admin {
            return true;
        }
        let Some(srv) = self.resolve(server).and_then(|n| self.servers.get(&n)) else {
            return false;
        };
        if let Some(allowed) = &caller.allowed_servers
            && !allowed
                .iter()
                .any(|a| self.resolve(a).as_deref() == Some(srv.name.as_str()))
        {
            return false;
        }
        match &srv.key_hashes {
            None => true,
            Some(hashes) => caller
                .key_hash
                .as_ref()
                .is_some_and(|h| hashes.contains(&h.to_ascii_lowercase())),
        }
    }

    /// Splits an aggregated `<server>-<tool>` name (server or alias prefix) into the
    /// configured server name and the original tool name.
    pub fn split_prefixed(&self, name: &str) -> Option<(String, String)> {
        let (prefix, rest) = name.split_once(naming::SEPARATOR)?;
        let server = self.resolve(prefix)?;
        let srv = self.servers.get(&server)?;
        let conn = srv.state.borrow().clone();
        let Conn::Ready(live) = conn else {
            // No catalog yet: only an unmangled name can be trusted.
            return naming::is_valid(rest).then(|| (server, rest.to_string()));
        };
        let cache = live.read();
        let original = if prefix == server {
            cache.names.original(name).map(str::to_string)
        } else {
            let table =
                NameTable::build(prefix, cache.catalog.tools.iter().map(|t| t.name.as_str()));
            table.original(name).map(str::to_string)
        };
        original.map(|tool| (server, tool))
    }

    fn server(&self, name: &str) -> Result<&Arc<Server>, HubError> {
        self.resolve(name)
            .and_then(|n| self.servers.get(&n))
            .ok_or_else(|| HubError::UnknownServer {
                name: name.to_string(),
                known: self.server_names(),
            })
    }

    /// Waits (bounded) until the server is ready; a failed server is retried at once.
    async fn live(&self, srv: &Server) -> Result<Arc<Live>, HubError> {
        let mut rx = srv.state.subscribe();
        let deadline = tokio::time::Instant::now() + self.settings.ready_wait;
        let mut kicked = false;
        let mut last = String::from("starting");
        loop {
            let conn = rx.borrow_and_update().clone();
            match conn {
                Conn::Ready(l) if !l.up.is_closed() => return Ok(l),
                Conn::Ready(_) => last = "reconnecting".into(),
                Conn::Starting => {}
                Conn::Failed(reason) if kicked => {
                    return Err(HubError::Unavailable {
                        server: srv.name.clone(),
                        reason,
                    });
                }
                Conn::Failed(reason) => {
                    srv.kick.notify_one();
                    kicked = true;
                    last = reason;
                }
                Conn::Stopped => {
                    return Err(HubError::Unavailable {
                        server: srv.name.clone(),
                        reason: "not running".into(),
                    });
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(HubError::Unavailable {
                        server: srv.name.clone(),
                        reason: "supervisor gone".into(),
                    });
                }
                Err(_) => {
                    let reason = format!(
                        "not ready after {}s ({last})",
                        self.settings.ready_wait.as_secs_f64()
                    );
                    return Err(HubError::Unavailable {
                        server: srv.name.clone(),
                        reason,
                    });
                }
            }
        }
    }

    /// Sends one request, retrying once on a fresh connection when it provably never
    /// reached the old one (process gone, session expired).
    async fn send(
        &self,
        srv: &Server,
        method: &str,
        params: Option<Value>,
        opts: &CallOptions,
    ) -> Result<Value, HubError> {
        let timeout = opts.timeout.unwrap_or_else(|| srv.timeout(&self.settings));
        let cancel = opts.cancel.clone().unwrap_or_default();
        let mut params = params;
        let token = opts.on_progress.as_ref().map(|_| {
            let token = format!("gatehouse-{}", PROGRESS_SEQ.fetch_add(1, Ordering::Relaxed));
            set_progress_token(&mut params, &token);
            token
        });
        let extra =
            crate::client_headers::to_header_map(&opts.headers).map_err(HubError::Transport)?;
        let mut live = self.live(srv).await?;
        let mut retried = false;
        let mut rounds = 0;
        loop {
            let up = live.up.clone();
            let _relay = opts
                .client_requests
                .clone()
                .map(|tx| live.relays.register(tx));
            let mut notes = up.subscribe();
            let call = up.request_with_headers(method, params.clone(), timeout, &extra);
            tokio::pin!(call);
            let relay_progress = |n: Result<Notification, _>| {
                if let (Ok(n), Some(token), Some(cb)) = (n, &token, &opts.on_progress)
                    && n.method == "notifications/progress"
                    && let Some(p) = n.params
                    && p.get("progressToken").and_then(Value::as_str) == Some(token.as_str())
                {
                    cb(p);
                }
            };
            let outcome = loop {
                tokio::select! {
                    r = &mut call => {
                        // Progress dispatched just before the response is still queued.
                        while let Ok(n) = notes.try_recv() {
                            relay_progress(Ok::<_, ()>(n));
                        }
                        break r;
                    }
                    // Dropping `call` tells the server to stop (notifications/cancelled).
                    _ = cancel.cancelled() => return Err(HubError::Cancelled),
                    n = notes.recv(), if token.is_some() => relay_progress(n.map_err(|_| ())),
                }
            };
            match outcome {
                // 2026-07-28 upstream asking for client input (MRTR): ask this call's
                // client, then retry with the answers.
                Ok(v) if crate::upstream::modern::input_required(&v) => {
                    if !crate::upstream::modern::may_require_input(method) {
                        return Err(HubError::Upstream {
                            code: crate::jsonrpc::codes::INTERNAL_ERROR,
                            message: format!(
                                "the MCP server asked for client input on {method}, which cannot carry it"
                            ),
                            data: None,
                        });
                    }
                    rounds += 1;
                    if rounds > crate::upstream::modern::MAX_ROUNDS {
                        return Err(HubError::Upstream {
                            code: crate::jsonrpc::codes::INTERNAL_ERROR,
                            message: "the MCP server kept asking for client input".into(),
                            data: None,
                        });
                    }
                    let answers = answer_inputs(&v, opts).await?;
                    params = crate::upstream::modern::retry_params(
                        params,
                        answers,
                        v.get("requestState"),
                    );
                }
                Ok(v) => return Ok(v),
                Err(UpstreamError::NotDelivered(_)) if !retried => {
                    retried = true;
                    srv.kick.notify_one();
                    live = self.live(srv).await?;
                }
                Err(e) => return Err(map_err(&srv.name, timeout, e)),
            }
        }
    }

    /// The server's tools after `allowed_tools` / `disallowed_tools`, original names.
    pub async fn list_tools(&self, server: &str) -> Result<Vec<Tool>, HubError> {
        let srv = self.server(server)?;
        let live = self.live(srv).await?;
        let cache = live.read();
        Ok(cache
            .catalog
            .tools
            .iter()
            .filter(|t| srv.tool_allowed(&t.name))
            .cloned()
            .collect())
    }

    /// As [`Hub::list_tools`], with names replaced by their aggregated `<prefix>-<tool>`
    /// form (`prefix`: the server name, or the alias the client used).
    pub async fn list_tools_prefixed(
        &self,
        server: &str,
        prefix: Option<&str>,
    ) -> Result<Vec<Tool>, HubError> {
        let srv = self.server(server)?;
        let live = self.live(srv).await?;
        let cache = live.read();
        let other;
        let names = match prefix {
            Some(p) if p != srv.name => {
                other = NameTable::build(p, cache.catalog.tools.iter().map(|t| t.name.as_str()));
                &other
            }
            _ => &cache.names,
        };
        Ok(cache
            .catalog
            .tools
            .iter()
            .filter(|t| srv.tool_allowed(&t.name))
            .filter_map(|t| {
                let mut t = t.clone();
                t.name = names.name_of(&t.name)?.to_string();
                Some(t)
            })
            .collect())
    }

    /// Calls a tool. `timeout`: `None` = the server's `timeout` or the hub default.
    /// Tool-level failures come back as `Ok` with `isError: true`.
    pub async fn call_tool(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
        timeout: Option<Duration>,
    ) -> Result<Value, HubError> {
        self.call_tool_with(
            server,
            tool,
            arguments,
            CallOptions {
                timeout,
                ..CallOptions::default()
            },
        )
        .await
    }

    /// [`Hub::call_tool`] with progress, cancellation and server-to-client requests.
    pub async fn call_tool_with(
        &self,
        server: &str,
        tool: &str,
        arguments: Value,
        opts: CallOptions,
    ) -> Result<Value, HubError> {
        let arguments = if arguments.is_null() {
            json!({})
        } else {
            arguments
        };
        let mut params = json!({"name": tool, "arguments": arguments});
        if !opts.meta.is_empty()
            && let Value::Object(p) = &mut params
        {
            p.insert(
                "_meta".into(),
                Value::Object(opts.meta.iter().cloned().collect()),
            );
        }
        self.call_tool_params(server, tool, params, &opts).await
    }

    /// `tools/call` with the client's whole params (`_meta`, ...) kept.
    async fn call_tool_params(
        &self,
        server: &str,
        tool: &str,
        params: Value,
        opts: &CallOptions,
    ) -> Result<Value, HubError> {
        let srv = self.server(server)?;
        let unknown = || HubError::UnknownTool {
            server: srv.name.clone(),
            tool: tool.to_string(),
        };
        if !srv.tool_allowed(tool) {
            return Err(unknown());
        }
        let span = tracing::info_span!("mcp_call_tool", server = %srv.name, tool = %tool);
        async {
            let started = Instant::now();
            let live = self.live(srv).await?;
            let schema = {
                let cache = live.read();
                let Some(t) = cache.catalog.tools.iter().find(|t| t.name == tool) else {
                    return Err(unknown());
                };
                t.input_schema.clone()
            };
            // 2026-07-28 HTTP servers check `Mcp-Param-*` headers for annotated arguments.
            let mut with_params;
            let mut opts = opts;
            if live.up.is_modern() && live.up.kind() == TransportKind::StreamableHttp {
                let arguments = params.get("arguments").cloned().unwrap_or(Value::Null);
                let extra = crate::upstream::modern::param_headers(&schema, &arguments);
                if !extra.is_empty() {
                    with_params = opts.clone();
                    with_params.headers.extend(extra);
                    opts = &with_params;
                }
            }
            let result = self.send(srv, "tools/call", Some(params), opts).await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            match &result {
                Ok(v) => {
                    let is_error = v.get("isError").and_then(Value::as_bool).unwrap_or(false);
                    tracing::info!(duration_ms = ms, is_error, "MCP tool call");
                }
                Err(e) => tracing::warn!(duration_ms = ms, error = %e, "MCP tool call failed"),
            }
            result.map(|v| bound_output(v, self.settings.max_output_bytes))
        }
        .instrument(span)
        .await
    }

    /// Forwards any MCP request. `tools/list`, `tools/call` and the cached lists are
    /// answered through the hub's own paths so filters always apply.
    pub async fn request(
        &self,
        server: &str,
        method: &str,
        params: Option<Value>,
    ) -> Result<Value, HubError> {
        self.request_with(server, method, params, CallOptions::default())
            .await
    }

    /// [`Hub::request`] with progress, cancellation and server-to-client requests. With
    /// `on_progress` set, the hub's own progress token replaces the client's.
    pub async fn request_with(
        &self,
        server: &str,
        method: &str,
        params: Option<Value>,
        opts: CallOptions,
    ) -> Result<Value, HubError> {
        let srv = self.server(server)?;
        let p = params.as_ref();
        match method {
            "tools/list" => {
                let tools = self.list_tools(server).await?;
                return Ok(json!({ "tools": tools }));
            }
            "tools/call" => {
                let name = p
                    .and_then(|p| p.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let params = params.unwrap_or_else(|| json!({}));
                return self.call_tool_params(server, &name, params, &opts).await;
            }
            "prompts/list" | "resources/list" | "resources/templates/list" => {
                let live = self.live(srv).await?;
                let cache = live.read();
                let c = &cache.catalog;
                return Ok(match method {
                    "prompts/list" => json!({ "prompts": c.prompts }),
                    "resources/list" => json!({ "resources": c.resources }),
                    _ => json!({ "resourceTemplates": c.resource_templates }),
                });
            }
            "resources/subscribe" | "resources/unsubscribe" => {
                let live = self.live(srv).await?;
                if live.up.is_modern() {
                    let uri = p
                        .and_then(|p| p.get("uri"))
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let on = method == "resources/subscribe";
                    live.up
                        .listen_resource(uri, on)
                        .map_err(|e| map_err(&srv.name, Duration::ZERO, e))?;
                    return Ok(json!({}));
                }
            }
            _ => {}
        }
        let span = tracing::info_span!("mcp_request", server = %srv.name, method = %method);
        self.send(srv, method, params, &opts).instrument(span).await
    }

    /// The server's `initialize` result (capabilities, serverInfo, instructions), when ready.
    pub fn server_init(&self, server: &str) -> Option<crate::upstream::InitializeResult> {
        let srv = self.server(server).ok()?;
        let conn = srv.state.borrow().clone();
        match conn {
            Conn::Ready(l) => l.up.init_result().cloned(),
            _ => None,
        }
    }
}

/// `mcp_settings:` with the session-sealing secret defaulted to the master key, so replicas
/// sharing a config resume each other's sessions without another setting.
fn mcp_settings(config: &Config) -> gatehouse_config::McpSettings {
    let mut m = config.mcp_settings.clone();
    if m.session_secret.is_none() {
        m.session_secret = config
            .general_settings
            .master_key
            .clone()
            .or_else(|| config.litellm_settings.master_key.clone())
            .filter(|k| !k.is_empty());
    }
    m
}

/// Answers a 2026-07-28 `InputRequiredResult`'s `inputRequests` by asking the client of
/// this very call (its relay channel: never another session). A call without a client to
/// ask fails with the reason.
async fn answer_inputs(
    result: &Value,
    opts: &CallOptions,
) -> Result<serde_json::Map<String, Value>, HubError> {
    let mut answers = serde_json::Map::new();
    let Some(requests) = result.get("inputRequests").and_then(Value::as_object) else {
        // Only `requestState`: retry after a short pause (the server is making progress).
        tokio::time::sleep(Duration::from_millis(50)).await;
        return Ok(answers);
    };
    let Some(tx) = &opts.client_requests else {
        return Err(HubError::Upstream {
            code: crate::jsonrpc::codes::INTERNAL_ERROR,
            message: "the MCP server needs client input, and this call has no client to ask".into(),
            data: None,
        });
    };
    for (key, request) in requests.iter().take(16) {
        let Some(method) = request.get("method").and_then(Value::as_str) else {
            continue;
        };
        let (respond, answer) = oneshot::channel();
        let ask = ServerRequest {
            request: crate::jsonrpc::Request::new(
                crate::jsonrpc::Id::String(format!("mrtr-{key}")),
                method,
                request.get("params").cloned(),
            ),
            respond,
        };
        tx.send(ask).await.map_err(|_| HubError::Cancelled)?;
        match answer.await {
            Ok(Ok(v)) => {
                answers.insert(key.clone(), v);
            }
            Ok(Err(e)) => {
                return Err(HubError::Upstream {
                    code: e.code,
                    message: e.message,
                    data: e.data,
                });
            }
            Err(_) => return Err(HubError::Cancelled),
        }
    }
    Ok(answers)
}

/// Sets `params._meta.progressToken`, creating `params` / `_meta` as needed.
fn set_progress_token(params: &mut Option<Value>, token: &str) {
    let p = params.get_or_insert_with(|| json!({}));
    let Some(obj) = p.as_object_mut() else { return };
    let meta = obj.entry("_meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("progressToken".into(), Value::from(token));
    }
}

/// What a reload does to the MCP servers, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServerChanges {
    /// Unchanged: the same process or session keeps serving.
    pub kept: Vec<String>,
    pub added: Vec<String>,
    /// Definition changed: a new one starts, the old one stops.
    pub restarted: Vec<String>,
    pub removed: Vec<String>,
}

/// Whether two definitions of a server are the same, field for field (including the
/// fields we pass through unread): compared as serialized, since the config types
/// carry open maps of JSON values.
fn same_definition(a: &McpServerConfig, b: &McpServerConfig) -> bool {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn map_err(server: &str, timeout: Duration, e: UpstreamError) -> HubError {
    match e {
        UpstreamError::Timeout => HubError::Timeout {
            server: server.to_string(),
            seconds: timeout.as_secs_f64(),
        },
        UpstreamError::Rpc(r) => HubError::Upstream {
            code: r.code,
            message: r.message,
            data: r.data,
        },
        UpstreamError::Transport(t) | UpstreamError::Protocol(t) => HubError::Transport(t),
        UpstreamError::NotDelivered(r)
        | UpstreamError::Closed(r)
        | UpstreamError::Spawn(r)
        | UpstreamError::Config(r) => HubError::Unavailable {
            server: server.to_string(),
            reason: r,
        },
    }
}

/// Replaces a result larger than `limit` bytes (serialized) by a text saying so, keeping
/// as much of its text content as fits.
pub fn bound_output(result: Value, limit: usize) -> Value {
    let size = serde_json::to_vec(&result).map(|v| v.len()).unwrap_or(0);
    if size <= limit {
        return result;
    }
    let mut text = String::new();
    if let Some(items) = result.get("content").and_then(Value::as_array) {
        for t in items
            .iter()
            .filter_map(|i| i.get("text").and_then(Value::as_str))
        {
            text.push_str(t);
        }
    }
    let keep = limit.saturating_sub(256).min(text.len());
    let mut cut = keep;
    while cut > 0 && !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    let note = format!(
        "[output truncated by gatehouse: the result was {size} bytes, over the {limit}-byte limit]"
    );
    let text = if text.is_empty() {
        note
    } else {
        format!("{text}\n\n{note}")
    };
    let is_error = result
        .get("isError")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    json!({"content": [{"type": "text", "text": text}], "isError": is_error})
}

/// Owns one server's connection for the hub's lifetime.
struct Supervisor {
    server: Arc<Server>,
    settings: HubSettings,
    events: broadcast::Sender<HubEvent>,
    stop: CancellationToken,
}

impl Supervisor {
    async fn run(self) {
        let srv = &self.server;
        let mut backoff = self.settings.backoff_min;
        let mut first = true;
        while !self.stop.is_cancelled() {
            if !first {
                srv.restarts.fetch_add(1, Ordering::Relaxed);
            }
            first = false;
            srv.state.send_replace(Conn::Starting);
            let attempt = tokio::select! {
                r = self.connect() => r,
                _ = self.stop.cancelled() => break,
            };
            let reason = match attempt {
                Ok(live) => {
                    let since = Instant::now();
                    srv.state.send_replace(Conn::Ready(live.clone()));
                    tracing::info!(server = %srv.name, tools = live.read().catalog.tools.len(), "MCP server ready");
                    let ended = self.serve(&live).await;
                    live.up.close().await;
                    let Some(reason) = ended else { break };
                    if since.elapsed() >= self.settings.stable_after {
                        backoff = self.settings.backoff_min;
                    }
                    format!("connection lost: {reason}")
                }
                Err(reason) => reason,
            };
            tracing::warn!(server = %srv.name, reason = %reason, retry_in_ms = backoff.as_millis() as u64, "MCP server down");
            srv.state.send_replace(Conn::Failed(reason));
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = srv.kick.notified() => {}
                _ = self.stop.cancelled() => break,
            }
            backoff = (backoff * 2).min(self.settings.backoff_max);
        }
        srv.state.send_replace(Conn::Stopped);
    }

    async fn connect(&self) -> Result<Arc<Live>, String> {
        let srv = &self.server;
        let opts = ConnectOptions {
            init_timeout: self.settings.init_timeout,
            capabilities: self.settings.client_capabilities.clone(),
            stdio_guard: self.settings.stdio_guard.clone(),
        };
        let relays = Arc::new(Relays::default());
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(relays.clone().route(rx));
        let up = Upstream::connect_with_handler(&srv.name, &srv.cfg, &opts, Some(tx))
            .await
            .map_err(|e| e.to_string())?;
        let catalog = match Catalog::fetch(&up, self.settings.init_timeout).await {
            Ok(c) => c,
            Err(e) => {
                up.close().await;
                return Err(format!("listing tools: {e}"));
            }
        };
        let names = table(&srv.name, &catalog);
        Ok(Arc::new(Live {
            up,
            cache: RwLock::new(Cached { catalog, names }),
            relays,
        }))
    }

    /// Relays notifications and keeps the catalog fresh until the connection dies
    /// (`Some(reason)`) or the hub stops (`None`).
    async fn serve(&self, live: &Live) -> Option<String> {
        let mut notes = live.up.subscribe();
        loop {
            let note = tokio::select! {
                reason = live.up.closed() => return Some(reason),
                _ = self.stop.cancelled() => return None,
                n = notes.recv() => n,
            };
            let note = match note {
                Ok(n) => n,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => {
                    return Some("notification channel closed".into());
                }
            };
            for kind in ListKind::from_notification(&note.method) {
                self.refresh(live, *kind).await;
            }
            let _ = self.events.send(HubEvent {
                server: self.server.name.clone(),
                notification: note,
            });
        }
    }

    async fn refresh(&self, live: &Live, kind: ListKind) {
        let mut catalog = live.read().catalog.clone();
        match catalog
            .refresh(&live.up, kind, self.settings.init_timeout)
            .await
        {
            Ok(()) => {
                let names = table(&self.server.name, &catalog);
                *live
                    .cache
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Cached { catalog, names };
            }
            Err(e) => {
                tracing::warn!(server = %self.server.name, error = %e, "catalog refresh failed")
            }
        }
    }
}

fn table(server: &str, catalog: &Catalog) -> NameTable {
    let names = NameTable::build(server, catalog.tools.iter().map(|t| t.name.as_str()));
    if !names.collisions.is_empty() {
        tracing::warn!(server, collisions = ?names.collisions, "tool names collide after sanitizing; hash suffixes added");
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jsonrpc::{Id, Request};

    async fn ask(relays: &Arc<Relays>) -> Result<Value, RpcError> {
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(relays.clone().route(rx));
        let (respond, answer) = oneshot::channel();
        let request = Request::new(Id::Number(1), "sampling/createMessage", None);
        tx.send(ServerRequest { request, respond }).await.unwrap();
        answer.await.unwrap()
    }

    #[tokio::test]
    async fn server_requests_reach_only_the_call_that_can_have_caused_them() {
        let relays = Arc::new(Relays::default());
        let (a_tx, mut a_rx) = mpsc::channel::<ServerRequest>(1);
        let _a = relays.register(a_tx);
        let answering = tokio::spawn(async move {
            let req = a_rx.recv().await.unwrap();
            let _ = req.respond.send(Ok(json!({"from": "a"})));
            a_rx
        });
        assert_eq!(ask(&relays).await.unwrap(), json!({"from": "a"}));
        let mut a_rx = answering.await.unwrap();

        // A second client's call in flight: nobody can tell whose the request is.
        let (b_tx, mut b_rx) = mpsc::channel::<ServerRequest>(1);
        let _b = relays.register(b_tx);
        let refused = ask(&relays).await.unwrap_err();
        assert!(refused.message.contains("several calls"), "{refused:?}");
        assert!(a_rx.try_recv().is_err() && b_rx.try_recv().is_err());
    }
}
