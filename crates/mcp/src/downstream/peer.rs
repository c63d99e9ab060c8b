//! The way back to one downstream client: notifications and server-to-client requests
//! travel on the stream of the request that caused them (or the session's standalone
//! stream once that one has finished).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::backend::BackendError;
use super::protocol;
use super::session::Session;
use super::sse;

/// How long a client gets to answer a sampling/elicitation/roots request: a human may be
/// in the loop.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct ClientPeer {
    target: Target,
}

#[derive(Clone)]
enum Target {
    /// An MCP session: messages go on `stream` (or the standalone stream).
    Session {
        session: Arc<Session>,
        stream: Option<u64>,
    },
    /// A plain SSE response (`/mcp/invoke`): notifications become `event: <kind>` frames
    /// (`notifications/progress` → `progress`); requests are not possible.
    Events(mpsc::Sender<Bytes>),
    /// A 2026-07-28 request: notifications go on its SSE response (if it has one);
    /// requests become MRTR input requests (see `mrtr.rs`).
    Stateless(Arc<StatelessPeer>),
}

/// The way back to a stateless (2026-07-28) client for one call, across its MRTR retries.
pub struct StatelessPeer {
    /// The SSE response of the HTTP request currently carrying the call, if any; replaced
    /// by each retry.
    pub sink: std::sync::Mutex<Option<mpsc::Sender<Bytes>>>,
    /// Where input requests go; the HTTP handler turns them into an `InputRequiredResult`.
    pub inputs: mpsc::Sender<InputNeeded>,
    /// `io.modelcontextprotocol/clientCapabilities` of the request that started the call.
    pub capabilities: Value,
}

/// A server-to-client request a call is waiting on, to be answered by the client's retry.
pub struct InputNeeded {
    pub method: String,
    pub params: Value,
    pub answer: tokio::sync::oneshot::Sender<Result<Value, Value>>,
}

/// The client capability a server-to-client request needs.
fn capability_for(method: &str) -> Option<&'static str> {
    match method {
        "sampling/createMessage" => Some("sampling"),
        "elicitation/create" => Some("elicitation"),
        "roots/list" => Some("roots"),
        _ => None,
    }
}

impl ClientPeer {
    pub(crate) fn session(session: Arc<Session>, stream: Option<u64>) -> Self {
        Self {
            target: Target::Session { session, stream },
        }
    }

    pub(crate) fn events(tx: mpsc::Sender<Bytes>) -> Self {
        Self {
            target: Target::Events(tx),
        }
    }

    pub(crate) fn stateless(peer: Arc<StatelessPeer>) -> Self {
        Self {
            target: Target::Stateless(peer),
        }
    }

    /// The downstream session id, if the client has a session.
    pub fn session_id(&self) -> Option<&str> {
        match &self.target {
            Target::Session { session, .. } => Some(&session.id),
            Target::Events(_) | Target::Stateless(_) => None,
        }
    }

    /// Sends a notification to the client (best effort: dropped if it has no open stream).
    pub fn notify(&self, method: &str, params: Value) {
        match &self.target {
            Target::Session { session, stream } => {
                session.send(*stream, &protocol::notification(method, params));
            }
            Target::Events(tx) => {
                let kind = method.rsplit('/').next().unwrap_or(method);
                let _ = tx.try_send(sse::event(None, Some(kind), &params.to_string()));
            }
            Target::Stateless(p) => {
                let sink = super::session::lock(&p.sink).clone();
                if let Some(tx) = sink {
                    let msg = protocol::notification(method, params).to_string();
                    let _ = tx.try_send(sse::message_event(None, &msg));
                }
            }
        }
    }

    /// Sends a request to the client under a fresh id of ours and waits for its answer.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, BackendError> {
        let (session, stream) = match &self.target {
            Target::Session { session, stream } => (session, stream),
            Target::Stateless(p) => return stateless_request(p, method, params).await,
            Target::Events(_) => {
                return Err(BackendError::Other(format!(
                    "this client cannot answer {method} requests"
                )));
            }
        };
        let (session, stream) = (session, *stream);
        let (id, rx) = session.register_client_request();
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        if !session.send(stream, &msg) {
            session.forget_client_request(&id);
            return Err(BackendError::Other(
                "the client has no open stream to receive requests on".into(),
            ));
        }
        let outcome = tokio::select! {
            r = rx => r,
            () = tokio::time::sleep(CLIENT_REQUEST_TIMEOUT) => {
                session.forget_client_request(&id);
                return Err(BackendError::Other(format!("the client did not answer {method}")));
            }
            () = session.closed.cancelled() => return Err(BackendError::Cancelled),
        };
        match outcome {
            Ok(outcome) => outcome.map_err(client_error),
            Err(_) => Err(BackendError::Cancelled),
        }
    }
}

/// A client's JSON-RPC error object as a backend error (relayed upstream as is).
fn client_error(error: Value) -> BackendError {
    BackendError::Rpc {
        code: error
            .get("code")
            .and_then(Value::as_i64)
            .unwrap_or(protocol::INTERNAL_ERROR),
        message: error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("client error")
            .to_owned(),
        data: error.get("data").cloned(),
    }
}

/// A server-to-client request from a stateless client's call: handed to the HTTP handler,
/// which asks the client with an `InputRequiredResult`; the client's retry answers it.
async fn stateless_request(
    p: &StatelessPeer,
    method: &str,
    params: Value,
) -> Result<Value, BackendError> {
    // MRTR: never ask for what the client did not declare.
    if let Some(cap) = capability_for(method)
        && p.capabilities.get(cap).is_none()
    {
        return Err(BackendError::Rpc {
            code: protocol::METHOD_NOT_FOUND,
            message: format!("the client did not declare the `{cap}` capability"),
            data: None,
        });
    }
    let (answer, rx) = tokio::sync::oneshot::channel();
    let need = InputNeeded {
        method: method.to_owned(),
        params,
        answer,
    };
    if p.inputs.send(need).await.is_err() {
        return Err(BackendError::Cancelled);
    }
    match tokio::time::timeout(CLIENT_REQUEST_TIMEOUT, rx).await {
        Ok(Ok(outcome)) => outcome.map_err(client_error),
        Ok(Err(_)) => Err(BackendError::Cancelled),
        Err(_) => Err(BackendError::Other(format!(
            "the client did not answer {method}"
        ))),
    }
}
