//! JSON-RPC 2.0 framing and the MCP protocol revisions this endpoint speaks.

use serde_json::{Map, Value, json};

use super::backend::BackendError;

/// Handshake-era revisions (`initialize` + sessions) we can serve, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
pub const LATEST_VERSION: &str = "2025-11-25";

/// Stateless revisions (per-request `_meta`, no session), oldest first. Served beside the
/// handshake era on the same endpoints; see `modern.rs`.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];

/// Every revision, newest first: what `-32022` lists in `data.supported`.
pub fn all_versions() -> Vec<&'static str> {
    MODERN_VERSIONS
        .iter()
        .rev()
        .chain(SUPPORTED_VERSIONS.iter().rev())
        .copied()
        .collect()
}

/// `_meta` keys of the stateless era.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// The revision to answer with: the client's if we support it, else our latest.
pub fn negotiate(requested: Option<&str>) -> &'static str {
    requested
        .and_then(|r| SUPPORTED_VERSIONS.iter().find(|v| **v == r))
        .copied()
        .unwrap_or(LATEST_VERSION)
}

/// Batches exist only in 2025-03-26 (added there, removed in 2025-06-18).
pub fn allows_batches(version: &str) -> bool {
    version == "2025-03-26"
}

/// SSE priming events (empty `data` with an id) were introduced in 2025-11-25; older
/// clients may choke on an empty message.
pub fn wants_priming(version: &str) -> bool {
    version >= "2025-11-25"
}

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
/// What SDKs answer for a request the client cancelled.
pub const REQUEST_CANCELLED: i64 = -32800;
/// Used for session and routing errors sent with an HTTP error status.
pub const SERVER_ERROR: i64 = -32000;
/// Resource not found in the handshake era (2026-07-28 uses `INVALID_PARAMS`).
pub const RESOURCE_NOT_FOUND_LEGACY: i64 = -32002;
/// 2026-07-28: HTTP headers disagree with the body (or a required one is missing).
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: the request needs a client capability it did not declare.
pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
/// 2026-07-28: the requested protocol version is not served; `data.supported` lists ours.
pub const UNSUPPORTED_VERSION: i64 = -32022;

/// A JSON-RPC error object.
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut e = Map::new();
        e.insert("code".into(), self.code.into());
        e.insert("message".into(), self.message.clone().into());
        if let Some(d) = &self.data {
            e.insert("data".into(), d.clone());
        }
        Value::Object(e)
    }
}

impl From<BackendError> for RpcError {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::Rpc {
                code,
                message,
                data,
            } => Self {
                code,
                message,
                data,
            },
            BackendError::UnknownServer(_) => Self::new(INVALID_PARAMS, e.to_string()),
            BackendError::Cancelled => Self::new(REQUEST_CANCELLED, e.to_string()),
            other => Self::new(INTERNAL_ERROR, other.to_string()),
        }
    }
}

/// One parsed inbound message.
#[derive(Debug, Clone)]
pub enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    /// The client's answer to a server-to-client request.
    Response {
        id: Value,
        outcome: Result<Value, Value>,
    },
}

impl Incoming {
    /// Classifies one JSON value; `Err` carries the id (if any) for the error response.
    pub fn parse(v: Value) -> Result<Self, Box<(Value, RpcError)>> {
        let Value::Object(mut m) = v else {
            return Err(Box::new((
                Value::Null,
                RpcError::new(INVALID_REQUEST, "not a JSON-RPC object"),
            )));
        };
        let id = m.remove("id");
        if m.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(Box::new((
                id.unwrap_or(Value::Null),
                RpcError::new(INVALID_REQUEST, "jsonrpc must be \"2.0\""),
            )));
        }
        let params = m.remove("params").unwrap_or(Value::Null);
        match (m.remove("method"), id) {
            (Some(Value::String(method)), Some(id)) if valid_id(&id) => {
                Ok(Self::Request { id, method, params })
            }
            (Some(Value::String(method)), None) => Ok(Self::Notification { method, params }),
            (Some(_), id) => Err(Box::new((
                id.unwrap_or(Value::Null),
                RpcError::new(INVALID_REQUEST, "invalid method or id"),
            ))),
            (None, Some(id)) => {
                let outcome = match (m.remove("result"), m.remove("error")) {
                    (Some(r), _) => Ok(r),
                    (None, Some(e)) => Err(e),
                    (None, None) => {
                        return Err(Box::new((
                            id,
                            RpcError::new(INVALID_REQUEST, "no method, result or error"),
                        )));
                    }
                };
                Ok(Self::Response { id, outcome })
            }
            (None, None) => Err(Box::new((
                Value::Null,
                RpcError::new(INVALID_REQUEST, "no method"),
            ))),
        }
    }
}

fn valid_id(id: &Value) -> bool {
    id.is_string() || id.is_i64() || id.is_u64()
}

pub fn response(id: &Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn error_response(id: &Value, err: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": err.to_json()})
}

pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// `params._meta.progressToken`, when present.
pub fn progress_token(params: &Value) -> Option<Value> {
    params
        .get("_meta")
        .and_then(|m| m.get("progressToken"))
        .filter(|t| t.is_string() || t.is_number())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_prefers_the_clients_version() {
        assert_eq!(negotiate(Some("2025-06-18")), "2025-06-18");
        assert_eq!(negotiate(Some("2024-11-05")), "2024-11-05");
        assert_eq!(negotiate(Some("1999-01-01")), LATEST_VERSION);
        assert_eq!(negotiate(None), LATEST_VERSION);
    }

    #[test]
    fn classifies_messages() {
        let r = Incoming::parse(json!({"jsonrpc":"2.0","id":1,"method":"ping"}));
        assert!(matches!(r, Ok(Incoming::Request { .. })));
        let n = Incoming::parse(json!({"jsonrpc":"2.0","method":"notifications/initialized"}));
        assert!(matches!(n, Ok(Incoming::Notification { .. })));
        let s = Incoming::parse(json!({"jsonrpc":"2.0","id":"x","result":{}}));
        assert!(matches!(s, Ok(Incoming::Response { .. })));
        assert!(Incoming::parse(json!({"id":1,"method":"ping"})).is_err());
        assert!(Incoming::parse(json!([1])).is_err());
    }
}
