//! The cache key: a SHA-256 over everything that changes the answer — the inbound API,
//! the model group, the request body (messages, tools, parameters, the stream flag), the
//! MCP servers attached and the headers that change what an upstream does — and nothing
//! that does not (request ids, routing hints, `user` unless configured). Object keys are
//! hashed in sorted order, so two clients that order their JSON differently share answers.

use axum::http::HeaderMap;
use gatehouse_config::cache::CallType;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Body fields that never change the answer: LiteLLM's routing and bookkeeping.
const IGNORED: &[&str] = &[
    "cache",
    "metadata",
    "litellm_metadata",
    "tags",
    "num_retries",
    "fallbacks",
    "context_window_fallbacks",
    "timeout",
    "request_timeout",
    "litellm_call_id",
    "litellm_session_id",
    "model",
];

/// What the key is made of, besides the body.
pub struct Parts<'a> {
    pub api: CallType,
    /// The model group the request resolved to (aliases share it).
    pub group: &'a str,
    /// The name a wildcard route matched: it picks the upstream model.
    pub wildcard: Option<&'a str>,
    pub mcp_servers: &'a [String],
    pub include_user: bool,
}

/// The key's hex digest.
pub fn digest(parts: &Parts<'_>, body: &Map<String, Value>, headers: &HeaderMap) -> String {
    let mut h = Sha256::new();
    h.update(b"gatehouse-cache-v1\0");
    string(&mut h, parts.api.as_str());
    string(&mut h, parts.group);
    string(&mut h, parts.wildcard.unwrap_or(""));
    let mut servers: Vec<&str> = parts.mcp_servers.iter().map(String::as_str).collect();
    servers.sort_unstable();
    servers.dedup();
    for s in servers {
        string(&mut h, s);
    }
    h.update(b"\0headers");
    // Attached MCP servers (and their per-server headers) and Anthropic's beta flags
    // change what the answer can be.
    let mut named: Vec<(&str, &[u8])> = headers
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n.starts_with("x-mcp-") || n == "anthropic-beta" || n == "anthropic-version"
        })
        .map(|(name, v)| (name.as_str(), v.as_bytes()))
        .collect();
    named.sort_unstable();
    for (name, value) in named {
        string(&mut h, name);
        bytes(&mut h, value);
    }
    h.update(b"\0body");
    let mut fields: Vec<(&String, &Value)> = body
        .iter()
        .filter(|(k, _)| {
            !IGNORED.contains(&k.as_str()) && (parts.include_user || k.as_str() != "user")
        })
        .collect();
    fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (k, v) in fields {
        string(&mut h, k);
        value(&mut h, v);
    }
    hex::encode(h.finalize())
}

fn bytes(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

fn string(h: &mut Sha256, s: &str) {
    bytes(h, s.as_bytes());
}

/// A type-tagged, length-prefixed walk: no two different values feed the same bytes.
fn value(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.update(b"#");
            string(h, &n.to_string());
        }
        Value::String(s) => {
            h.update(b"s");
            string(h, s);
        }
        Value::Array(items) => {
            h.update(b"[");
            h.update((items.len() as u64).to_le_bytes());
            for item in items {
                value(h, item);
            }
        }
        Value::Object(map) => {
            h.update(b"{");
            h.update((map.len() as u64).to_le_bytes());
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (k, v) in entries {
                string(h, k);
                value(h, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(body: Value, headers: &HeaderMap) -> String {
        let parts = Parts {
            api: CallType::ChatCompletions,
            group: "gpt",
            wildcard: None,
            mcp_servers: &[],
            include_user: false,
        };
        match body {
            Value::Object(m) => digest(&parts, &m, headers),
            _ => String::new(),
        }
    }

    #[test]
    fn what_changes_the_answer_changes_the_key() {
        let h = HeaderMap::new();
        let base = key(
            json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}),
            &h,
        );
        // Same content, other key order, other request bookkeeping: same key.
        assert_eq!(
            base,
            key(
                json!({"temperature": 0.2, "user": "u1", "metadata": {"tags": ["x"]},
                "messages": [{"content": "hi", "role": "user"}], "model": "alias"}),
                &h
            )
        );
        for changed in [
            json!({"messages": [{"role": "user", "content": "hi!"}], "temperature": 0.2}),
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.3}),
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.2, "stream": true}),
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.2,
                "tools": [{"type": "function", "function": {"name": "f"}}]}),
        ] {
            assert_ne!(base, key(changed.clone(), &h), "{changed}");
        }
        let mut mcp = HeaderMap::new();
        mcp.insert("x-mcp-servers", "fs".parse().unwrap());
        assert_ne!(
            base,
            key(
                json!({"messages": [{"role": "user", "content": "hi"}], "temperature": 0.2}),
                &mcp
            )
        );
    }

    #[test]
    fn strings_and_numbers_do_not_collide() {
        let h = HeaderMap::new();
        assert_ne!(key(json!({"a": "1"}), &h), key(json!({"a": 1}), &h));
        assert_ne!(
            key(json!({"a": ["b", "c"]}), &h),
            key(json!({"a": ["bc"]}), &h)
        );
    }
}
