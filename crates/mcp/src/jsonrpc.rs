//! JSON-RPC 2.0 envelopes as MCP uses them.
//!
//! Only the envelope is typed (id, method, params / result / error). Payloads stay
//! `serde_json::Value` and any member we do not know is kept in `extra`, so messages of
//! protocol revisions newer than this code are forwarded unchanged.

use serde_json::{Map, Value, json};
use std::fmt;

/// Standard JSON-RPC error codes (MCP uses the same ones).
pub mod codes {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// MCP: the requested resource does not exist.
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
}

/// A request id: a number or a string. `Null` only appears in error responses to
/// messages whose id could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Id {
    Number(i64),
    String(String),
    Null,
}

impl Id {
    pub fn from_value(v: &Value) -> Option<Id> {
        match v {
            Value::Number(n) => n.as_i64().map(Id::Number),
            Value::String(s) => Some(Id::String(s.clone())),
            Value::Null => Some(Id::Null),
            _ => None,
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Id::Number(n) => Value::from(*n),
            Id::String(s) => Value::from(s.clone()),
            Id::Null => Value::Null,
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::String(s) => write!(f, "{s:?}"),
            Id::Null => f.write_str("null"),
        }
    }
}

/// The `error` member of a response.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn method_not_found(method: &str) -> Self {
        RpcError::new(
            codes::METHOD_NOT_FOUND,
            format!("method not supported: {method}"),
        )
    }

    fn from_value(v: &Value) -> Option<RpcError> {
        let o = v.as_object()?;
        Some(RpcError {
            code: o
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or(codes::INTERNAL_ERROR),
            message: o
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            data: o.get("data").cloned(),
        })
    }

    pub fn to_value(&self) -> Value {
        let mut o = Map::new();
        o.insert("code".into(), Value::from(self.code));
        o.insert("message".into(), Value::from(self.message.clone()));
        if let Some(d) = &self.data {
            o.insert("data".into(), d.clone());
        }
        Value::Object(o)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (code {})", self.message, self.code)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub id: Id,
    pub method: String,
    pub params: Option<Value>,
    /// Members other than `jsonrpc`, `id`, `method`, `params`.
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub method: String,
    pub params: Option<Value>,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: Id,
    pub outcome: Result<Value, RpcError>,
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Request),
    Notification(Notification),
    Response(Response),
}

/// Why a value is not a JSON-RPC message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("invalid JSON-RPC message: {0}")]
    Invalid(&'static str),
    #[error("empty batch")]
    EmptyBatch,
}

impl ParseError {
    pub fn code(&self) -> i64 {
        match self {
            ParseError::Json(_) => codes::PARSE_ERROR,
            _ => codes::INVALID_REQUEST,
        }
    }
}

const KNOWN: [&str; 6] = ["jsonrpc", "id", "method", "params", "result", "error"];

impl Message {
    /// Reads one message from a JSON value (not a batch).
    pub fn from_value(v: Value) -> Result<Message, ParseError> {
        let Value::Object(mut o) = v else {
            return Err(ParseError::Invalid("not an object"));
        };
        let id = match o.get("id") {
            Some(v) => Some(Id::from_value(v).ok_or(ParseError::Invalid("bad id"))?),
            None => None,
        };
        let method = match o.get("method") {
            Some(Value::String(m)) => Some(m.clone()),
            Some(_) => return Err(ParseError::Invalid("method is not a string")),
            None => None,
        };
        let params = o.get("params").cloned();
        let result = o.get("result").cloned();
        let error = o
            .get("error")
            .map(|e| RpcError::from_value(e).ok_or(ParseError::Invalid("bad error")));
        for k in KNOWN {
            o.remove(k);
        }
        let extra = o;
        match (method, id) {
            (Some(method), Some(id)) => Ok(Message::Request(Request {
                id,
                method,
                params,
                extra,
            })),
            (Some(method), None) => Ok(Message::Notification(Notification {
                method,
                params,
                extra,
            })),
            (None, Some(id)) => {
                let outcome = match (result, error) {
                    (_, Some(e)) => Err(e?),
                    (Some(r), None) => Ok(r),
                    (None, None) => {
                        return Err(ParseError::Invalid("response without result or error"));
                    }
                };
                Ok(Message::Response(Response { id, outcome, extra }))
            }
            (None, None) => Err(ParseError::Invalid("neither method nor id")),
        }
    }

    pub fn to_value(&self) -> Value {
        let mut o = Map::new();
        o.insert("jsonrpc".into(), json!("2.0"));
        let extra = match self {
            Message::Request(r) => {
                o.insert("id".into(), r.id.to_value());
                o.insert("method".into(), Value::from(r.method.clone()));
                if let Some(p) = &r.params {
                    o.insert("params".into(), p.clone());
                }
                &r.extra
            }
            Message::Notification(n) => {
                o.insert("method".into(), Value::from(n.method.clone()));
                if let Some(p) = &n.params {
                    o.insert("params".into(), p.clone());
                }
                &n.extra
            }
            Message::Response(r) => {
                o.insert("id".into(), r.id.to_value());
                match &r.outcome {
                    Ok(v) => o.insert("result".into(), v.clone()),
                    Err(e) => o.insert("error".into(), e.to_value()),
                };
                &r.extra
            }
        };
        for (k, v) in extra {
            o.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Value::Object(o)
    }

    pub fn method(&self) -> Option<&str> {
        match self {
            Message::Request(r) => Some(&r.method),
            Message::Notification(n) => Some(&n.method),
            Message::Response(_) => None,
        }
    }
}

impl Request {
    pub fn new(id: Id, method: impl Into<String>, params: Option<Value>) -> Self {
        Request {
            id,
            method: method.into(),
            params,
            extra: Map::new(),
        }
    }
}

impl Notification {
    pub fn new(method: impl Into<String>, params: Option<Value>) -> Self {
        Notification {
            method: method.into(),
            params,
            extra: Map::new(),
        }
    }
}

impl Response {
    pub fn ok(id: Id, result: Value) -> Self {
        Response {
            id,
            outcome: Ok(result),
            extra: Map::new(),
        }
    }

    pub fn err(id: Id, error: RpcError) -> Self {
        Response {
            id,
            outcome: Err(error),
            extra: Map::new(),
        }
    }
}

/// One message or a batch, as read from the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Single(Message),
    /// Each element parsed on its own: one bad element does not spoil the others.
    Batch(Vec<Result<Message, ParseError>>),
}

impl Incoming {
    /// Every well-formed message, in order; malformed batch elements are dropped.
    pub fn into_messages(self) -> Vec<Message> {
        match self {
            Incoming::Single(m) => vec![m],
            Incoming::Batch(b) => b.into_iter().filter_map(Result::ok).collect(),
        }
    }
}

/// Parses a single message or a batch from raw bytes.
pub fn parse(bytes: &[u8]) -> Result<Incoming, ParseError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| ParseError::Json(e.to_string()))?;
    parse_value(v)
}

/// Parses a single message or a batch from a JSON value.
pub fn parse_value(v: Value) -> Result<Incoming, ParseError> {
    match v {
        Value::Array(items) if items.is_empty() => Err(ParseError::EmptyBatch),
        Value::Array(items) => Ok(Incoming::Batch(
            items.into_iter().map(Message::from_value).collect(),
        )),
        other => Message::from_value(other).map(Incoming::Single),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_roundtrip_keeps_unknown_members() {
        let v =
            json!({"jsonrpc":"2.0","id":"a1","method":"tools/call","params":{"x":1},"_meta2":true});
        let m = Message::from_value(v.clone()).unwrap();
        let Message::Request(r) = &m else {
            panic!("not a request")
        };
        assert_eq!(r.id, Id::String("a1".into()));
        assert_eq!(r.extra.get("_meta2"), Some(&json!(true)));
        assert_eq!(m.to_value(), v);
    }

    #[test]
    fn classifies_notifications_and_responses() {
        let n = Message::from_value(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .unwrap();
        assert!(matches!(n, Message::Notification(_)));
        let e = Message::from_value(
            json!({"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope"}}),
        )
        .unwrap();
        let Message::Response(r) = e else {
            panic!("not a response")
        };
        assert_eq!(r.id, Id::Number(3));
        assert_eq!(r.outcome.unwrap_err().code, codes::METHOD_NOT_FOUND);
    }

    #[test]
    fn batches_and_errors() {
        let b = parse(br#"[{"jsonrpc":"2.0","id":1,"result":{}}, 5]"#).unwrap();
        let Incoming::Batch(items) = b else {
            panic!("not a batch")
        };
        assert!(items[0].is_ok());
        assert!(items[1].is_err());
        assert_eq!(parse(b"[]").unwrap_err(), ParseError::EmptyBatch);
        assert_eq!(parse(b"{").unwrap_err().code(), codes::PARSE_ERROR);
        assert!(parse(br#"{"jsonrpc":"2.0"}"#).is_err());
    }
}
