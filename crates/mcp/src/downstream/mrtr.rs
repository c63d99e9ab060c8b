//! Multi round-trip requests (2026-07-28) for calls whose upstream asks the client
//! something mid-call (a handshake-era server's `elicitation/create`, `sampling/…`,
//! `roots/list`).
//!
//! The upstream call keeps running while the client is asked: the HTTP request answers an
//! `InputRequiredResult` whose `requestState` is a random handle to the call, parked here;
//! the client's retry (same method and name, `inputResponses` + `requestState`) answers the
//! upstream's waiting requests and waits for the call's next step. A parked call belongs to
//! the key (hash) that started it, expires after [`PARK_TTL`], and is cancelled upstream
//! when it expires or is abandoned. Parked calls live on the replica that started them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::DropGuard;

use super::peer::{InputNeeded, StatelessPeer};
use super::protocol::{INTERNAL_ERROR, INVALID_PARAMS, RpcError};
use super::session::lock;

/// How long a parked call waits for the client's retry: a human may be answering.
pub const PARK_TTL: Duration = Duration::from_secs(600);
/// Parked calls per key, and in all.
const MAX_PER_OWNER: usize = 32;
const MAX_TOTAL: usize = 1024;

/// A question asked of the client: its key, the request object, where the answer goes.
type Asked = (String, Value, oneshot::Sender<Result<Value, Value>>);

/// One call in progress, between HTTP requests or inside one.
pub struct Running {
    pub owner: String,
    /// The method and `name`/`uri` of the request that started it: a retry must match.
    pub method: String,
    pub name: Option<String>,
    pub peer: Arc<StatelessPeer>,
    pub inputs: mpsc::Receiver<InputNeeded>,
    pub done: oneshot::Receiver<Result<Value, RpcError>>,
    /// Requests asked of the client and not answered yet, by key.
    pub asked: Vec<Asked>,
    next_key: u64,
    /// Cancels the call when the running call is dropped unfinished.
    pub _cancel: DropGuard,
}

/// What a call did next.
pub enum Step {
    Done(Result<Value, RpcError>),
    NeedsInput(Running),
}

impl Running {
    pub fn new(
        owner: String,
        method: String,
        name: Option<String>,
        peer: Arc<StatelessPeer>,
        inputs: mpsc::Receiver<InputNeeded>,
        done: oneshot::Receiver<Result<Value, RpcError>>,
        cancel: DropGuard,
    ) -> Self {
        Self {
            owner,
            method,
            name,
            peer,
            inputs,
            done,
            asked: Vec::new(),
            next_key: 1,
            _cancel: cancel,
        }
    }

    fn push(&mut self, need: InputNeeded) {
        let key = format!("gatehouse-{}", self.next_key);
        self.next_key += 1;
        let request = json!({"method": need.method, "params": need.params});
        self.asked.push((key, request, need.answer));
    }

    /// Waits for the call to finish or to need the client. Unanswered questions from an
    /// earlier round are asked again at once.
    pub async fn advance(mut self) -> Step {
        if !self.asked.is_empty() {
            return Step::NeedsInput(self);
        }
        tokio::select! {
            biased;
            out = &mut self.done => Step::Done(out.unwrap_or_else(|_| {
                Err(RpcError::new(INTERNAL_ERROR, "the call ended without a result"))
            })),
            Some(need) = self.inputs.recv() => {
                self.push(need);
                // Several questions raised together go out in one round.
                while let Ok(more) = self.inputs.try_recv() {
                    self.push(more);
                }
                Step::NeedsInput(self)
            }
        }
    }

    /// Applies a retry's `inputResponses`; keys it does not answer stay asked.
    pub fn answer(&mut self, responses: Option<&Map<String, Value>>) {
        let Some(responses) = responses else { return };
        let asked = std::mem::take(&mut self.asked);
        for (key, request, tx) in asked {
            match responses.get(&key) {
                Some(r) => {
                    let _ = tx.send(Ok(r.clone()));
                }
                None => self.asked.push((key, request, tx)),
            }
        }
    }

    /// The `InputRequests` map for the client.
    pub fn input_requests(&self) -> Value {
        let m: Map<String, Value> = self
            .asked
            .iter()
            .map(|(k, r, _)| (k.clone(), r.clone()))
            .collect();
        Value::Object(m)
    }
}

struct Parked {
    running: Running,
    expires: Instant,
}

/// Calls waiting for a client's retry, by `requestState`.
#[derive(Default)]
pub struct ParkedCalls {
    map: Mutex<HashMap<String, Parked>>,
}

impl ParkedCalls {
    /// Parks `running`; returns its `requestState`, or an error when the key (or the
    /// gateway) has too many calls waiting.
    pub fn park(&self, running: Running) -> Result<String, RpcError> {
        let mut map = lock(&self.map);
        let now = Instant::now();
        map.retain(|_, p| p.expires > now);
        let mine = map
            .values()
            .filter(|p| p.running.owner == running.owner)
            .count();
        if mine >= MAX_PER_OWNER || map.len() >= MAX_TOTAL {
            return Err(RpcError::new(
                INTERNAL_ERROR,
                "too many calls are waiting for client input; answer or abandon some",
            ));
        }
        let state = uuid::Uuid::new_v4().simple().to_string();
        map.insert(
            state.clone(),
            Parked {
                running,
                expires: now + PARK_TTL,
            },
        );
        Ok(state)
    }

    /// Takes the parked call a retry names, if it is this owner's and the same request.
    pub fn take(
        &self,
        state: &str,
        owner: &str,
        method: &str,
        name: Option<&str>,
    ) -> Result<Running, RpcError> {
        let mut map = lock(&self.map);
        let fits = map.get(state).is_some_and(|p| {
            p.expires > Instant::now()
                && p.running.owner == owner
                && p.running.method == method
                && p.running.name.as_deref() == name
        });
        // A foreign or mismatched retry leaves the call parked for its owner.
        match fits.then(|| map.remove(state)).flatten() {
            Some(p) => Ok(p.running),
            None => Err(RpcError::new(
                INVALID_PARAMS,
                "unknown, expired or foreign requestState; send the request again without it",
            )),
        }
    }

    pub fn clear(&self) {
        lock(&self.map).clear();
    }
}
