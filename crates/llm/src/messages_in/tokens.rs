//! A token count for Messages requests when no vendor counting endpoint is at hand
//! (`POST /v1/messages/count_tokens` on a non-Anthropic deployment).

use serde_json::{Map, Value};

/// The estimate for providers without a counting endpoint: one token per four
/// characters of every text the model reads (system, message texts, tool inputs and
/// results, tool names, descriptions and schemas), rounded up, plus four tokens of
/// framing per message and per tool. English text averages about four characters per
/// token on current tokenizers; code and other languages count higher, so treat it as a
/// budget hint, not a bill.
pub fn estimate_tokens(body: &Map<String, Value>) -> u64 {
    fn chars(value: &Value) -> usize {
        match value {
            Value::String(s) => s.chars().count(),
            Value::Array(items) => items.iter().map(chars).sum(),
            Value::Object(map) => map
                .iter()
                // Block types and cache markers are framing, not text.
                .filter(|(k, _)| !matches!(k.as_str(), "type" | "cache_control" | "id"))
                .map(|(_, v)| chars(v))
                .sum(),
            Value::Number(n) => n.to_string().len(),
            Value::Bool(_) | Value::Null => 0,
        }
    }
    let mut total = 0usize;
    let mut framing = 0u64;
    for key in ["system", "messages", "tools"] {
        if let Some(value) = body.get(key) {
            total += chars(value);
            if let Value::Array(items) = value
                && key != "system"
            {
                framing += 4 * items.len() as u64;
            }
        }
    }
    (total as u64).div_ceil(4) + framing
}
