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

    /// The downstream session id, if the client has a session.
    pub fn session_id(&self) -> Option<&str> {
        match &self.target {
            Target::Session { session, .. } => Some(&session.id),
            Target::Events(_) => None,
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
        }
    }

    /// Sends a request to the client under a fresh id of ours and waits for its answer.
    pub async fn request(&self, method: &str, params: Value) -> Result<Value, BackendError> {
        let Target::Session { session, stream } = &self.target else {
            return Err(BackendError::Other(format!(
                "this client cannot answer {method} requests"
            )));
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
            Ok(Ok(result)) => Ok(result),
            Ok(Err(error)) => Err(BackendError::Rpc {
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
            }),
            Err(_) => Err(BackendError::Cancelled),
        }
    }
}
