//! The shared cache in Redis: every replica pointed at the same Redis and namespace serves
//! the others' answers. Reads wait at most [`READ_TIMEOUT`]; writes go through a bounded
//! queue to one writer task (owned by whoever calls [`RedisCache::spawn_writer`]), so the
//! request path never waits on a store.
//!
//! Redis down or slow: the request is served without the cache, the outage is logged once
//! (and its end once), `/health` says so, and Redis is not tried again for [`BACKOFF`].

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use super::entry::Entry;

const READ_TIMEOUT: Duration = Duration::from_millis(100);
const WRITE_TIMEOUT: Duration = Duration::from_millis(500);
const BACKOFF: Duration = Duration::from_secs(1);
/// Answers waiting to be written, at most; beyond that they are dropped (and counted).
const QUEUE: usize = 1024;

struct Write {
    key: String,
    value: Vec<u8>,
    ttl_ms: u64,
}

pub struct RedisCache {
    conn: ConnectionManager,
    tx: mpsc::Sender<Write>,
    rx: Mutex<Option<mpsc::Receiver<Write>>>,
    health: Health,
}

/// Whether Redis answered last time, and what went wrong if not.
struct Health {
    start: Instant,
    down: AtomicBool,
    skip_until_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Health {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn failed(&self, op: &'static str, error: &dyn std::fmt::Display) {
        metrics::counter!("gatehouse_cache_redis_errors_total", "op" => op).increment(1);
        let until = self.now_ms() + u64::try_from(BACKOFF.as_millis()).unwrap_or(1000);
        self.skip_until_ms.store(until, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{op}: {error}"));
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(op, %error, "Redis response cache unavailable; serving without the cache until it is back");
        }
    }

    fn ok(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis response cache reachable again");
        }
    }

    fn in_backoff(&self) -> bool {
        self.now_ms() < self.skip_until_ms.load(Ordering::Relaxed)
    }
}

impl RedisCache {
    /// Must run inside a Tokio runtime; connects in the background.
    pub fn connect(url: &str) -> redis::RedisResult<Self> {
        let conn = crate::limits::lazy_connection(url)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        Ok(Self {
            conn,
            tx,
            rx: Mutex::new(Some(rx)),
            health: Health {
                start: Instant::now(),
                down: AtomicBool::new(false),
                skip_until_ms: AtomicU64::new(0),
                last_error: Mutex::new(None),
            },
        })
    }

    pub async fn get(&self, key: &str) -> Option<Entry> {
        if self.health.in_backoff() {
            return None;
        }
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let read = cmd.query_async::<Option<Vec<u8>>>(&mut conn);
        match tokio::time::timeout(READ_TIMEOUT, read).await {
            Ok(Ok(found)) => {
                self.health.ok();
                Entry::decode(Bytes::from(found?))
            }
            Ok(Err(e)) => {
                self.health.failed("get", &e);
                None
            }
            Err(_) => {
                self.health.failed("get", &"timed out");
                None
            }
        }
    }

    /// Queues the answer for the writer; never waits.
    pub fn put(&self, key: String, entry: &Entry, ttl: Duration) {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let write = Write {
            key,
            value: entry.encode(),
            ttl_ms,
        };
        if self.tx.try_send(write).is_err() {
            metrics::counter!("gatehouse_cache_writes_dropped_total").increment(1);
        }
    }

    /// Starts the writer; the caller owns the task and aborts it at shutdown. `None` when
    /// it was already started.
    pub fn spawn_writer(self: &std::sync::Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let mut rx = self.rx.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        let cache = self.clone();
        Some(tokio::spawn(async move {
            while let Some(w) = rx.recv().await {
                if cache.health.in_backoff() {
                    metrics::counter!("gatehouse_cache_writes_dropped_total").increment(1);
                    continue;
                }
                let mut conn = cache.conn.clone();
                let mut cmd = redis::cmd("SET");
                cmd.arg(&w.key).arg(&w.value).arg("PX").arg(w.ttl_ms);
                let set = cmd.query_async::<()>(&mut conn);
                match tokio::time::timeout(WRITE_TIMEOUT, set).await {
                    Ok(Ok(())) => cache.health.ok(),
                    Ok(Err(e)) => cache.health.failed("set", &e),
                    Err(_) => cache.health.failed("set", &"timed out"),
                }
            }
        }))
    }

    /// For `/health`: `None` when Redis answered last, else the last error.
    pub fn trouble(&self) -> Option<String> {
        if !self.health.down.load(Ordering::Relaxed) {
            return None;
        }
        self.health
            .last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .or_else(|| Some("unavailable".into()))
    }
}
