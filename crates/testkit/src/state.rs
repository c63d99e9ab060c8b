//! State shared by the handlers and the test handle.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, Method, Uri};

use crate::options::MockOptions;
use crate::plan::{self, Answer, Plan};
use crate::reply::Reply;

/// A request as the mock received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Raw query string, if any.
    pub query: Option<String>,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body parsed as JSON (`Null` when empty or not JSON).
    pub body: serde_json::Value,
}

impl RecordedRequest {
    /// First value of a header (name is matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) struct Shared {
    pub opts: MockOptions,
    recorded: Mutex<Vec<RecordedRequest>>,
    script: Mutex<VecDeque<Reply>>,
    chat_count: AtomicU64,
    ids: AtomicU64,
}

/// A poisoned lock only means a test panicked while holding it; the data is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(opts: MockOptions) -> Self {
        Self {
            opts,
            recorded: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            chat_count: AtomicU64::new(0),
            ids: AtomicU64::new(0),
        }
    }

    pub fn record(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &serde_json::Value,
    ) {
        if !self.opts.record_requests {
            return;
        }
        let headers = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let req = RecordedRequest {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers,
            body: body.clone(),
        };
        lock(&self.recorded).push(req);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.recorded).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.recorded).clear();
    }

    pub fn push_reply(&self, reply: Reply) {
        lock(&self.script).push_back(reply);
    }

    pub fn pending_replies(&self) -> usize {
        lock(&self.script).len()
    }

    /// Next unique number for ids.
    pub fn next_id(&self) -> u64 {
        self.ids.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Decide how a valid chat request ends: periodic failure, then the script, then the
    /// default answer. Returns the total delay to apply before responding.
    pub fn plan(&self, default: impl FnOnce() -> Answer) -> (Duration, Plan) {
        let n = self.chat_count.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(every) = self.opts.fail_every_n
            && every > 0
            && n.is_multiple_of(every)
        {
            let status = self.opts.fail_status;
            let retry_after_secs = (status == 429).then_some(1);
            return (
                self.opts.latency,
                Plan::Status {
                    status,
                    retry_after_secs,
                },
            );
        }
        let scripted = lock(&self.script).pop_front();
        match scripted {
            Some(reply) => {
                let (extra, plan) = plan::from_reply(reply);
                (self.opts.latency + extra, plan)
            }
            None => (self.opts.latency, Plan::Answer(default())),
        }
    }
}

/// Unix seconds for `created` fields.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Sleep only when there is something to wait for (keeps the zero-latency path free of timers).
pub(crate) async fn pause(d: Duration) {
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
}
