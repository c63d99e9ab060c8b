//! Downstream sessions: identity, negotiated revision, SSE streams with a bounded replay
//! buffer, in-flight requests (for cancellation) and pending server-to-client requests.
//!
//! Every SSE stream of a session (the POST response streams and the standalone GET stream)
//! gets a stream number; every event gets `id: <stream>-<seq>` with `seq` increasing across
//! the session. A client that lost a stream reconnects with `GET` + `Last-Event-ID` and
//! receives the events of *that* stream after the id (spec: never replay another stream's
//! messages), then the live tail if the stream is still open.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::McpCaller;

use super::backend::Backend;
use super::protocol;
use super::scope::Scope;
use super::sse;

/// Live channel depth per stream; a client this far behind is dropped and must resume.
const LIVE_DEPTH: usize = 256;

/// Locks ignoring poisoning: the guarded data stays consistent because no code path
/// panics while holding these locks.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub struct Session {
    pub id: String,
    /// The key (hash) that created it, [`McpCaller::owner`]: only that key may use it.
    pub owner: String,
    /// The caller as of its latest request: the key's current access decides what the
    /// session still sees (a revoked grant bites at once).
    caller: Mutex<McpCaller>,
    /// `""` for `/mcp`, the server name for `/mcp/{server}`, `"legacy"` for `/mcp/sse`.
    pub route: String,
    pub scope: Scope,
    pub legacy: bool,
    version: Mutex<String>,
    client_capabilities: Mutex<Value>,
    streams: Mutex<Streams>,
    last_used: Mutex<Instant>,
    /// Last event sent down any stream (keep-alive comments do not count).
    last_sent: Mutex<Instant>,
    inflight: Mutex<HashMap<String, CancellationToken>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Result<Value, Value>>>>,
    next_request: AtomicU64,
    /// Cancelled when the session ends; parent of every in-flight request's token.
    pub closed: CancellationToken,
    replay_limit: usize,
}

#[derive(Default)]
struct Streams {
    next_seq: u64,
    next_stream: u64,
    map: HashMap<u64, StreamBuf>,
    /// Creation order, for evicting old buffers.
    order: VecDeque<u64>,
    standalone: Option<u64>,
    buffered: usize,
}

#[derive(Default)]
struct StreamBuf {
    events: VecDeque<(u64, Bytes)>,
    live: Option<mpsc::Sender<Bytes>>,
    done: bool,
}

impl StreamBuf {
    fn deliver(&mut self, bytes: &Bytes) {
        // Closed or hopelessly behind: the client resumes from the buffer.
        if let Some(tx) = &self.live
            && tx.try_send(bytes.clone()).is_err()
        {
            self.live = None;
        }
    }
}

impl Session {
    pub fn new(
        caller: &McpCaller,
        route: String,
        scope: Scope,
        version: &str,
        legacy: bool,
        replay_limit: usize,
    ) -> Self {
        Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            owner: caller.owner().to_owned(),
            caller: Mutex::new(caller.clone()),
            route,
            scope,
            legacy,
            version: Mutex::new(version.to_owned()),
            client_capabilities: Mutex::new(Value::Null),
            streams: Mutex::new(Streams::default()),
            last_used: Mutex::new(Instant::now()),
            last_sent: Mutex::new(Instant::now()),
            inflight: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            closed: CancellationToken::new(),
            replay_limit: replay_limit.max(1),
        }
    }

    /// The same session under another id (a sealed one, or one being resumed).
    pub fn with_id(mut self, id: String) -> Self {
        self.id = id;
        self
    }

    pub fn version(&self) -> String {
        lock(&self.version).clone()
    }

    pub fn set_version(&self, v: &str) {
        v.clone_into(&mut lock(&self.version));
    }

    pub fn set_client_capabilities(&self, caps: Value) {
        *lock(&self.client_capabilities) = caps;
    }

    /// Whether the client declared it can answer sampling or elicitation requests.
    pub fn client_takes_requests(&self) -> bool {
        let caps = lock(&self.client_capabilities);
        caps.get("sampling").is_some() || caps.get("elicitation").is_some()
    }

    pub fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    /// Whether `caller` owns this session (same key hash, whatever its alias).
    pub fn owned_by(&self, caller: &McpCaller) -> bool {
        self.owner == caller.owner()
    }

    /// Records the caller of the latest request; returns the session's servers that this
    /// caller may still use (the key's grants may have changed since `initialize`).
    pub fn current_scope(&self, backend: &dyn Backend, caller: &McpCaller) -> Scope {
        caller.clone_into(&mut lock(&self.caller));
        self.scope_for(backend, caller)
    }

    fn scope_for(&self, backend: &dyn Backend, caller: &McpCaller) -> Scope {
        let mut scope = self.scope.clone();
        scope.servers.retain(|s| backend.may_use(caller, &s.name));
        scope
    }

    /// The scope under the latest caller, for notifications the session did not ask for.
    pub fn latest_scope(&self, backend: &dyn Backend) -> Scope {
        let caller = lock(&self.caller).clone();
        self.scope_for(backend, &caller)
    }

    /// Idle past `idle` with no open standalone stream, or with one on which nothing
    /// happened (no request, no event) for `stream_idle`: an open but silent stream does
    /// not keep a session forever.
    pub fn expired(&self, now: Instant, idle: Duration, stream_idle: Duration) -> bool {
        let used = *lock(&self.last_used);
        if now.duration_since(used) < idle {
            return false;
        }
        let s = lock(&self.streams);
        let listening = s
            .standalone
            .and_then(|id| s.map.get(&id))
            .and_then(|b| b.live.as_ref())
            .is_some_and(|tx| !tx.is_closed());
        drop(s);
        if !listening {
            return true;
        }
        let active = used.max(*lock(&self.last_sent));
        now.duration_since(active) >= stream_idle
    }

    pub fn end(&self) {
        self.closed.cancel();
        let mut s = lock(&self.streams);
        for b in s.map.values_mut() {
            b.live = None;
            b.done = true;
        }
        lock(&self.pending).clear();
    }

    // ---- streams ----

    /// Opens a new stream for a POST response; sends the priming event when the revision
    /// has them.
    pub fn open_stream(&self) -> (u64, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(LIVE_DEPTH);
        let prime = protocol::wants_priming(&self.version()) && !self.legacy;
        let mut s = lock(&self.streams);
        s.next_stream += 1;
        let id = s.next_stream;
        if prime {
            s.next_seq += 1;
            let ev = sse::event(Some(&format!("{id}-{}", s.next_seq)), None, "");
            let _ = tx.try_send(ev);
        }
        s.map.insert(
            id,
            StreamBuf {
                live: Some(tx),
                ..StreamBuf::default()
            },
        );
        s.order.push_back(id);
        (id, rx)
    }

    /// Opens the standalone (GET) stream, replacing any previous one.
    pub fn open_standalone(&self) -> (u64, mpsc::Receiver<Bytes>) {
        let (id, rx) = self.open_stream();
        let mut s = lock(&self.streams);
        if let Some(old) = s.standalone.replace(id)
            && let Some(b) = s.map.get_mut(&old)
        {
            b.live = None;
            b.done = true;
        }
        (id, rx)
    }

    /// Reattaches to a stream after `last_event_id`; `None` if that stream is unknown.
    pub fn resume(&self, last_event_id: &str) -> Option<mpsc::Receiver<Bytes>> {
        let (stream, seq) = last_event_id.split_once('-')?;
        let (stream, seq): (u64, u64) = (stream.parse().ok()?, seq.parse().ok()?);
        let mut s = lock(&self.streams);
        let buf = s.map.get_mut(&stream)?;
        let replay: Vec<Bytes> = buf
            .events
            .iter()
            .filter(|(n, _)| *n > seq)
            .map(|(_, b)| b.clone())
            .collect();
        let (tx, rx) = mpsc::channel(LIVE_DEPTH + replay.len());
        for b in replay {
            let _ = tx.try_send(b);
        }
        if !buf.done {
            buf.live = Some(tx);
        }
        Some(rx)
    }

    /// Sends a JSON-RPC message on `stream` (or the standalone stream when `None` or when
    /// that stream already finished). Returns false if there was nowhere to send it.
    pub fn send(&self, stream: Option<u64>, msg: &Value) -> bool {
        let data = msg.to_string();
        let mut s = lock(&self.streams);
        let target = stream
            .filter(|id| s.map.get(id).is_some_and(|b| !b.done))
            .or(s.standalone);
        let Some(target) = target else {
            return false;
        };
        s.next_seq += 1;
        let seq = s.next_seq;
        let bytes = if self.legacy {
            sse::message_event(None, &data)
        } else {
            sse::message_event(Some(&format!("{target}-{seq}")), &data)
        };
        let Some(buf) = s.map.get_mut(&target) else {
            return false;
        };
        buf.deliver(&bytes);
        *lock(&self.last_sent) = Instant::now();
        if !self.legacy {
            buf.events.push_back((seq, bytes));
            s.buffered += 1;
            self.evict(&mut s);
        }
        true
    }

    /// Sends a raw pre-framed event (legacy `endpoint` event).
    pub fn send_raw(&self, stream: u64, bytes: Bytes) {
        if let Some(b) = lock(&self.streams).map.get_mut(&stream) {
            b.deliver(&bytes);
        }
    }

    /// Ends a POST response stream after its response was sent; its buffer stays for
    /// resumption until evicted.
    pub fn finish(&self, stream: u64) {
        if let Some(b) = lock(&self.streams).map.get_mut(&stream) {
            b.live = None;
            b.done = true;
        }
    }

    fn evict(&self, s: &mut Streams) {
        while s.buffered > self.replay_limit {
            let oldest = s
                .order
                .iter()
                .copied()
                .find(|id| s.map.get(id).is_some_and(|b| !b.events.is_empty()));
            let Some(b) = oldest.and_then(|id| s.map.get_mut(&id)) else {
                break;
            };
            b.events.pop_front();
            s.buffered -= 1;
        }
        // Forget finished streams with nothing left to replay.
        let stale: Vec<u64> = s
            .map
            .iter()
            .filter(|(_, b)| b.done && b.events.is_empty())
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            s.map.remove(&id);
            s.order.retain(|x| *x != id);
        }
    }

    // ---- in-flight requests ----

    pub fn begin_request(&self, id: &Value) -> CancellationToken {
        let token = self.closed.child_token();
        lock(&self.inflight).insert(id.to_string(), token.clone());
        token
    }

    pub fn end_request(&self, id: &Value) {
        lock(&self.inflight).remove(&id.to_string());
    }

    /// `notifications/cancelled`: cancels the request it names, if still running.
    pub fn cancel_request(&self, id: &Value) {
        if let Some(t) = lock(&self.inflight).remove(&id.to_string()) {
            t.cancel();
        }
    }

    // ---- server-to-client requests ----

    pub fn register_client_request(&self) -> (Value, oneshot::Receiver<Result<Value, Value>>) {
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        let id = Value::String(format!("gatehouse-{n}"));
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id.to_string(), tx);
        (id, rx)
    }

    pub fn forget_client_request(&self, id: &Value) {
        lock(&self.pending).remove(&id.to_string());
    }

    /// The client's answer to one of our requests; false if we were not waiting for it.
    pub fn complete_client_request(&self, id: &Value, outcome: Result<Value, Value>) -> bool {
        match lock(&self.pending).remove(&id.to_string()) {
            Some(tx) => tx.send(outcome).is_ok(),
            None => false,
        }
    }
}

/// Bounds on the live sessions.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// In all (the ceiling whatever the per-key cap).
    pub max: usize,
    /// Per key (owner).
    pub per_key: usize,
    /// A session without an open GET stream ends after this long without a request.
    pub idle: Duration,
    /// A session with an open GET stream ends after this long without a request or event.
    pub stream_idle: Duration,
}

/// All live sessions, bounded in number (in all and per key) and idle time.
pub struct SessionStore {
    map: Mutex<HashMap<String, Arc<Session>>>,
    /// Ids of sessions ended here (DELETE, idle expiry): not resumed from their seal.
    ended: Mutex<HashMap<String, Instant>>,
    limits: Limits,
}

/// Tombstones kept at most; the oldest go first.
const MAX_ENDED: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TooManySessions {
    #[error("too many MCP sessions ({0}); close some or retry later")]
    InAll(usize),
    #[error("this key has too many MCP sessions open ({0}); close some (DELETE) or retry later")]
    ForKey(usize),
}

impl SessionStore {
    pub fn new(limits: Limits) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            ended: Mutex::new(HashMap::new()),
            limits: Limits {
                max: limits.max.max(1),
                per_key: limits.per_key.max(1),
                ..limits
            },
        }
    }

    pub fn insert(&self, s: Session) -> Result<Arc<Session>, TooManySessions> {
        let mut map = lock(&self.map);
        let mine = |map: &HashMap<String, Arc<Session>>| {
            map.values().filter(|x| x.owner == s.owner).count()
        };
        if map.len() >= self.limits.max || mine(&map) >= self.limits.per_key {
            self.purge(&mut map);
        }
        if map.len() >= self.limits.max {
            return Err(TooManySessions::InAll(self.limits.max));
        }
        if mine(&map) >= self.limits.per_key {
            return Err(TooManySessions::ForKey(self.limits.per_key));
        }
        let s = Arc::new(s);
        map.insert(s.id.clone(), s.clone());
        Ok(s)
    }

    /// Ends expired sessions (their streams close); run periodically.
    pub fn sweep(&self) {
        self.purge(&mut lock(&self.map));
    }

    /// A live session; expired ones are ended and forgotten on the way.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let mut map = lock(&self.map);
        let s = map.get(id)?.clone();
        if s.expired(Instant::now(), self.limits.idle, self.limits.stream_idle) {
            map.remove(id);
            self.tombstone(id);
            s.end();
            return None;
        }
        s.touch();
        Some(s)
    }

    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let s = lock(&self.map).remove(id)?;
        self.tombstone(id);
        s.end();
        Some(s)
    }

    /// Whether this replica ended the session (it must then stay 404 here).
    pub fn is_ended(&self, id: &str) -> bool {
        lock(&self.ended).contains_key(id)
    }

    fn tombstone(&self, id: &str) {
        let mut ended = lock(&self.ended);
        let horizon = super::seal::MAX_AGE;
        let now = Instant::now();
        ended.retain(|_, at| now.duration_since(*at) < horizon);
        if ended.len() >= MAX_ENDED
            && let Some(oldest) = ended
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(k, _)| k.clone())
        {
            ended.remove(&oldest);
        }
        ended.insert(id.to_owned(), now);
    }

    /// Sessions that include `server`, for fanning out upstream notifications.
    pub fn with_server(&self, server: &str) -> Vec<Arc<Session>> {
        lock(&self.map)
            .values()
            .filter(|s| s.scope.servers.iter().any(|x| x.name == server))
            .cloned()
            .collect()
    }

    fn purge(&self, map: &mut HashMap<String, Arc<Session>>) {
        let now = Instant::now();
        let mut gone = Vec::new();
        map.retain(|id, s| {
            let keep = !s.expired(now, self.limits.idle, self.limits.stream_idle);
            if !keep {
                s.end();
                gone.push(id.clone());
            }
            keep
        });
        for id in gone {
            self.tombstone(&id);
        }
    }

    pub fn end_all(&self) {
        for (_, s) in lock(&self.map).drain() {
            s.end();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn caller(hash: &str) -> McpCaller {
        McpCaller {
            key_id: "same-alias".into(),
            key_hash: Some(hash.into()),
            allowed_servers: None,
            is_admin: false,
        }
    }

    fn limits(max: usize, per_key: usize, idle: Duration, stream_idle: Duration) -> Limits {
        Limits {
            max,
            per_key,
            idle,
            stream_idle,
        }
    }

    fn session(limit: usize) -> Session {
        Session::new(
            &caller("k"),
            String::new(),
            Scope::default(),
            "2025-11-25",
            false,
            limit,
        )
    }

    async fn drain(rx: &mut mpsc::Receiver<Bytes>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(b) = rx.try_recv() {
            out.push(String::from_utf8_lossy(&b).into_owned());
        }
        out
    }

    #[tokio::test]
    async fn resumes_only_the_named_stream_after_the_id() {
        let s = session(100);
        let (a, mut rx) = s.open_stream();
        let _other = s.open_standalone();
        assert!(s.send(Some(a), &json!({"n": 1})));
        assert!(s.send(None, &json!({"n": "standalone"})));
        assert!(s.send(Some(a), &json!({"n": 2})));
        s.finish(a);
        let got = drain(&mut rx).await;
        assert_eq!(got.len(), 3, "priming + 2 events: {got:?}");
        assert!(got[0].starts_with("id: 1-1\ndata: \n"));
        // The client saw only the first event before it lost the connection.
        let first_id = got[1]
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("id: ")
            .to_owned();
        let mut rx2 = s.resume(&first_id).unwrap();
        let replay = drain(&mut rx2).await;
        assert_eq!(replay.len(), 1, "{replay:?}");
        assert!(replay[0].contains(r#"{"n":2}"#));
        assert!(
            rx2.recv().await.is_none(),
            "finished stream ends after replay"
        );
    }

    #[test]
    fn replay_buffer_is_bounded() {
        let s = session(3);
        let (a, _rx) = s.open_stream();
        for n in 0..10 {
            s.send(Some(a), &json!({ "n": n }));
        }
        let st = lock(&s.streams);
        assert_eq!(st.buffered, 3);
        assert_eq!(st.map[&a].events.len(), 3);
    }

    #[test]
    fn one_key_cannot_take_every_session() {
        let store = SessionStore::new(limits(
            3,
            2,
            Duration::from_secs(60),
            Duration::from_secs(60),
        ));
        let mk = |h: &str| {
            Session::new(
                &caller(h),
                String::new(),
                Scope::default(),
                "2025-11-25",
                false,
                4,
            )
        };
        assert!(store.insert(mk("a")).is_ok());
        assert!(store.insert(mk("a")).is_ok());
        assert!(matches!(
            store.insert(mk("a")),
            Err(TooManySessions::ForKey(2))
        ));
        // Another key (same alias, other hash) still gets one; then the ceiling holds.
        assert!(store.insert(mk("b")).is_ok());
        assert!(matches!(
            store.insert(mk("c")),
            Err(TooManySessions::InAll(3))
        ));
    }

    #[test]
    fn a_silent_open_stream_does_not_keep_a_session_forever() {
        let store = SessionStore::new(limits(4, 4, Duration::ZERO, Duration::from_millis(30)));
        let s = store.insert(session(10)).unwrap();
        let (_, rx) = s.open_standalone();
        assert!(store.get(&s.id).is_some(), "listening and fresh");
        std::thread::sleep(Duration::from_millis(40));
        store.sweep();
        assert!(store.get(&s.id).is_none(), "silent past stream_idle");
        assert!(s.closed.is_cancelled());
        drop(rx);
    }

    #[test]
    fn store_limits_sessions() {
        let store = SessionStore::new(limits(
            1,
            1,
            Duration::from_secs(60),
            Duration::from_secs(60),
        ));
        let s = store.insert(session(10)).unwrap();
        assert!(store.insert(session(10)).is_err());
        store.remove(&s.id);
        assert!(store.get(&s.id).is_none());
        assert!(store.insert(session(10)).is_ok());
    }

    #[test]
    fn idle_sessions_expire() {
        let store = SessionStore::new(limits(4, 4, Duration::ZERO, Duration::ZERO));
        let s = store.insert(session(10)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert!(store.get(&s.id).is_none());
        assert!(s.closed.is_cancelled());
    }
}
