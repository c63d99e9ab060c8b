//! Talking 2026-07-28 (stateless) to upstreams that serve it.
//!
//! At connect, `server/discover` is probed first (spec: versioning, backward
//! compatibility); a server whose `DiscoverResult` lists 2026-07-28 is spoken to in that
//! revision — every request carries the `_meta` envelope, HTTP requests the mirrored
//! headers, no `initialize`, no session — and anything else (an error, a timeout, a result
//! without the version) falls back to the `initialize` handshake. The hub translates MRTR
//! results (`input_required`) back into server-to-client requests for the client that made
//! the call (`hub.rs`).

use serde_json::{Map, Value, json};

use super::InitializeResult;

pub const MODERN_VERSION: &str = "2026-07-28";
const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// A 2026-07-28 server's answer to a revision it does not serve (`initialize`
/// included, once it serves the stateless revision).
pub const UNSUPPORTED_VERSION: i64 = -32022;

/// Upper bound on MRTR rounds for one call (the SDKs' default).
pub const MAX_ROUNDS: usize = 10;

/// `params` with the per-request envelope in `_meta` (other `_meta` keys kept).
pub fn envelope(params: Option<Value>, capabilities: &Value) -> Value {
    let mut m = match params {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut meta = match m.remove("_meta") {
        Some(Value::Object(o)) => o,
        _ => Map::new(),
    };
    meta.insert(META_PROTOCOL_VERSION.into(), MODERN_VERSION.into());
    meta.insert(
        META_CLIENT_INFO.into(),
        json!({"name": "gatehouse", "version": env!("CARGO_PKG_VERSION")}),
    );
    meta.insert(META_CLIENT_CAPABILITIES.into(), capabilities.clone());
    m.insert("_meta".into(), Value::Object(meta));
    Value::Object(m)
}

/// Whether a `DiscoverResult` says the server serves the revision we speak.
pub fn speaks_modern(discover: &Value) -> bool {
    discover
        .get("supportedVersions")
        .and_then(Value::as_array)
        .is_some_and(|v| v.iter().any(|x| x.as_str() == Some(MODERN_VERSION)))
}

/// What the rest of the hub reads from an `initialize` result, from a `DiscoverResult`.
pub fn init_from_discover(raw: Value) -> InitializeResult {
    InitializeResult {
        protocol_version: MODERN_VERSION.into(),
        capabilities: raw
            .get("capabilities")
            .cloned()
            .unwrap_or_else(|| json!({})),
        server_info: raw
            .get("_meta")
            .and_then(|m| m.get(META_SERVER_INFO))
            .cloned()
            .unwrap_or(Value::Null),
        instructions: raw
            .get("instructions")
            .and_then(Value::as_str)
            .map(str::to_owned),
        raw,
    }
}

/// Whether a request's result may be an MRTR `InputRequiredResult` (spec: multi
/// round-trip requests, "Supported Requests"; servers must not send one on any other).
/// The one place both eras' translations ask, whichever way a call crosses.
pub fn may_require_input(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// An MRTR interim result: the server needs the client's input before it can finish.
pub fn input_required(result: &Value) -> bool {
    result.get("resultType").and_then(Value::as_str) == Some("input_required")
}

/// The retry of a request after an `input_required` result: the original params with
/// `inputResponses` (when there were questions) and the echoed `requestState`.
pub fn retry_params(
    params: Option<Value>,
    responses: Map<String, Value>,
    state: Option<&Value>,
) -> Option<Value> {
    let mut m = match params {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    m.remove("inputResponses");
    m.remove("requestState");
    if !responses.is_empty() {
        m.insert("inputResponses".into(), Value::Object(responses));
    }
    if let Some(s) = state.filter(|s| s.is_string()) {
        m.insert("requestState".into(), s.clone());
    }
    Some(Value::Object(m))
}

/// The `subscriptions/listen` filter asking for every change notification the hub uses,
/// and updates of the subscribed `uris`.
pub fn listen_params(capabilities: &Value, uris: &[String]) -> Value {
    let mut filter = json!({
        "toolsListChanged": true,
        "promptsListChanged": true,
        "resourcesListChanged": true,
    });
    if !uris.is_empty()
        && let Some(filter) = filter.as_object_mut()
    {
        filter.insert("resourceSubscriptions".into(), json!(uris));
    }
    envelope(Some(json!({ "notifications": filter })), capabilities)
}

/// The list-changed notifications the listen filter asks for.
pub const LIST_CHANGED: &[&str] = &[
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
];

/// Whether `note` acknowledges the `subscriptions/listen` request `id` (the ack carries
/// the request id as `_meta` subscription id).
pub fn acknowledges(note: &crate::jsonrpc::Notification, id: &Value) -> bool {
    note.method == "notifications/subscriptions/acknowledged"
        && note
            .params
            .as_ref()
            .and_then(|p| p.get("_meta"))
            .and_then(|m| m.get(META_SUBSCRIPTION_ID))
            == Some(id)
}

/// The `Mcp-Method` / `Mcp-Name` headers for a message (HTTP transport).
pub fn routing_headers(msg: &Value) -> (Option<&str>, Option<&str>) {
    let method = msg.get("method").and_then(Value::as_str);
    let key = match method {
        Some("tools/call" | "prompts/get") => Some("name"),
        Some("resources/read") => Some("uri"),
        _ => None,
    };
    let name = key
        .and_then(|k| msg.get("params")?.get(k))
        .and_then(Value::as_str);
    (method, name)
}

/// A header-safe `Mcp-Name`: as is when plain visible ASCII, else the base64 sentinel.
pub fn header_value(v: &str) -> String {
    use base64::Engine;
    let sentinel_like = v.starts_with("=?base64?") && v.ends_with("?=");
    let plain = !v.is_empty()
        && v.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !v.starts_with(' ')
        && !v.ends_with(' ')
        && !sentinel_like;
    if plain {
        v.to_owned()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(v)
        )
    }
}

/// Bound on `x-mcp-header` annotations read from one schema (bounded work).
const MAX_PARAM_HEADERS: usize = 32;

/// The `Mcp-Param-{Name}` headers a `tools/call` must carry (2026-07-28 "custom headers
/// from tool parameters"): for every property reachable from the schema root through
/// `properties` alone whose schema has `x-mcp-header`, the argument value at that path
/// (strings as is, integers in decimal, booleans `true`/`false`), header-encoded. Absent
/// or null values give no header. Returns `(header name, value)` pairs, lowercase names.
pub fn param_headers(schema: &Value, arguments: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // (schema node, argument value at the same path)
    let mut stack: Vec<(&Value, Option<&Value>)> = vec![(schema, Some(arguments))];
    let mut visited = 0usize;
    while let Some((node, value)) = stack.pop() {
        visited += 1;
        if visited > 1024 || out.len() >= MAX_PARAM_HEADERS {
            break;
        }
        let Some(props) = node.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (key, sub) in props {
            let v = value.and_then(|v| v.get(key)).filter(|v| !v.is_null());
            if let Some(name) = sub.get("x-mcp-header").and_then(Value::as_str) {
                let rendered = match v {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Bool(b)) => Some(b.to_string()),
                    Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
                    _ => None,
                };
                if let Some(r) = rendered {
                    out.push((
                        format!("mcp-param-{}", name.to_ascii_lowercase()),
                        header_value(&r),
                    ));
                }
            }
            stack.push((sub, v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_headers_follow_properties_chains_only() {
        let schema = json!({"type": "object", "properties": {
            "region": {"type": "string", "x-mcp-header": "Region"},
            "n": {"type": "integer", "x-mcp-header": "N"},
            "opts": {"type": "object", "properties": {"flag": {"type": "boolean", "x-mcp-header": "Flag"}}},
            "list": {"type": "array", "items": {"x-mcp-header": "Nope"}},
            "q": {"type": "string"}
        }});
        let mut h = param_headers(
            &schema,
            &json!({"region": "eu west", "n": 42, "opts": {"flag": true}, "list": ["x"], "q": "hi"}),
        );
        h.sort();
        assert_eq!(
            h,
            [
                ("mcp-param-flag".to_owned(), "true".to_owned()),
                ("mcp-param-n".to_owned(), "42".to_owned()),
                ("mcp-param-region".to_owned(), "eu west".to_owned()),
            ]
        );
        assert!(param_headers(&schema, &json!({"region": null})).is_empty());
        assert_eq!(
            param_headers(&schema, &json!({"region": "日本"}))[0].1,
            "=?base64?5pel5pys?="
        );
    }

    #[test]
    fn envelope_keeps_other_meta_and_retry_carries_answers() {
        let p = envelope(
            Some(json!({"name": "t", "_meta": {"progressToken": 3}})),
            &json!({}),
        );
        assert_eq!(p["_meta"]["progressToken"], 3);
        assert_eq!(p["_meta"][META_PROTOCOL_VERSION], MODERN_VERSION);
        let mut answers = Map::new();
        answers.insert("k".into(), json!({"action": "accept"}));
        let r = retry_params(Some(p), answers, Some(&json!("st"))).unwrap();
        assert_eq!(r["inputResponses"]["k"]["action"], "accept");
        assert_eq!(r["requestState"], "st");
        assert!(speaks_modern(&json!({"supportedVersions": ["2026-07-28"]})));
        assert!(!speaks_modern(
            &json!({"supportedVersions": ["2025-11-25"]})
        ));
        assert!(!speaks_modern(&json!([])));
    }
}
