//! A turn that called both MCP tools and the client's own tools goes back to the client
//! with only the client's calls. When the client returns with its results, the model must
//! still see the whole turn: the MCP calls and their results are kept here, keyed by the
//! client's tool-call ids (and the key that made them), for a bounded time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

const TTL: Duration = Duration::from_secs(3600);
const MAX_TURNS: usize = 10_000;
/// Stored turns one request may restore.
const MAX_RESTORES: usize = 64;

#[derive(Debug)]
pub struct PendingTurn {
    /// The assistant message as the model sent it, with every call.
    pub assistant: Value,
    /// The MCP calls' `tool` messages.
    pub results: Vec<Value>,
}

#[derive(Default)]
struct Inner {
    by_call: HashMap<(String, String), Arc<PendingTurn>>,
    /// Insertion order, for expiry and the size bound.
    order: VecDeque<(Instant, Vec<(String, String)>)>,
}

#[derive(Default)]
pub struct PendingTurns {
    inner: Mutex<Inner>,
}

impl PendingTurns {
    pub fn insert(&self, key_id: &str, client_call_ids: &[String], turn: PendingTurn) {
        let turn = Arc::new(turn);
        let keys: Vec<(String, String)> = client_call_ids
            .iter()
            .map(|id| (key_id.to_string(), id.clone()))
            .collect();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        while let Some((at, _)) = inner.order.front() {
            if now.duration_since(*at) < TTL && inner.order.len() < MAX_TURNS {
                break;
            }
            if let Some((_, old)) = inner.order.pop_front() {
                for k in old {
                    inner.by_call.remove(&k);
                }
            }
        }
        for k in &keys {
            inner.by_call.insert(k.clone(), turn.clone());
        }
        inner.order.push_back((now, keys));
    }

    /// Puts kept MCP calls and results back into a conversation the client sends.
    pub fn restore(&self, key_id: &str, messages: &mut Vec<Value>) {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.by_call.is_empty() {
            return;
        }
        // Each stored turn is restored once per request, and only so many: a request
        // naming one stored call id in many messages costs what one does.
        let mut restored: Vec<Arc<PendingTurn>> = Vec::new();
        let mut i = 0;
        while i < messages.len() {
            let turn = messages[i]
                .get("tool_calls")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("id").and_then(Value::as_str))
                .find_map(|id| inner.by_call.get(&(key_id.to_string(), id.to_string())))
                .filter(|t| !restored.iter().any(|r| Arc::ptr_eq(r, t)))
                .filter(|_| restored.len() < MAX_RESTORES)
                .cloned();
            if let Some(turn) = turn {
                restored.push(turn.clone());
                messages[i] = turn.assistant.clone();
                let n = turn.results.len();
                for (j, result) in turn.results.iter().enumerate() {
                    messages.insert(i + 1 + j, result.clone());
                }
                i += n;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_call_id_named_many_times_restores_one_turn() {
        let store = PendingTurns::default();
        store.insert(
            "k",
            &["c1".into()],
            PendingTurn {
                assistant: json!({"role": "assistant", "tool_calls": [{"id": "c1"}, {"id": "m1"}]}),
                results: vec![
                    json!({"role": "tool", "tool_call_id": "m1", "content": "x".repeat(10_000)}),
                ],
            },
        );
        let named = json!({"role": "assistant", "tool_calls": [{"id": "c1"}]});
        let mut messages = vec![named; 1000];
        store.restore("k", &mut messages);
        assert_eq!(messages.len(), 1001, "one turn restored, once");
    }

    #[test]
    fn restores_the_whole_turn_for_the_same_key_only() {
        let store = PendingTurns::default();
        let full = json!({"role": "assistant", "tool_calls": [
            {"id": "m1", "type": "function", "function": {"name": "db-query", "arguments": "{}"}},
            {"id": "c1", "type": "function", "function": {"name": "mine", "arguments": "{}"}}]});
        store.insert(
            "k",
            &["c1".into()],
            PendingTurn {
                assistant: full.clone(),
                results: vec![json!({"role": "tool", "tool_call_id": "m1", "content": "rows"})],
            },
        );
        let client = vec![
            json!({"role": "user", "content": "q"}),
            json!({"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "mine", "arguments": "{}"}}]}),
            json!({"role": "tool", "tool_call_id": "c1", "content": "mine done"}),
        ];
        let mut other = client.clone();
        store.restore("other-key", &mut other);
        assert_eq!(other, client);
        let mut restored = client.clone();
        store.restore("k", &mut restored);
        assert_eq!(restored.len(), 4);
        assert_eq!(restored[1], full);
        assert_eq!(restored[2]["tool_call_id"], "m1");
        assert_eq!(restored[3]["tool_call_id"], "c1");
    }
}
