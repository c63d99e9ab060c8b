//! Responses kept for `previous_response_id` and `GET`/`DELETE /v1/responses/{id}`.
//!
//! In memory and bounded, so days of traffic cannot grow it: at most [`MAX_ENTRIES`]
//! responses and [`MAX_BYTES`] of serialized JSON (oldest evicted first), each kept for
//! [`TTL`]. A response is visible only to the key that created it. Stateless clients
//! (Codex sends `store: false`) never touch it. It does not survive a restart and is not
//! shared between replicas: a chained conversation must come back to the same instance.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use serde_json::Value;

/// Most responses kept at once.
pub const MAX_ENTRIES: usize = 1000;
/// Most bytes (serialized conversation + response) kept at once.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;
/// How long a stored response stays retrievable.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// One stored response and the conversation that led to it.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    /// The key (`Caller::key_id`) that created it.
    pub owner: String,
    /// Input items of the whole conversation before this response (earlier turns
    /// included), in Responses item shape.
    pub input: Vec<Value>,
    /// The `response` object.
    pub response: Value,
    stored_at: Instant,
    size: usize,
}

impl StoredResponse {
    /// The conversation to continue from: earlier input plus this response's output.
    pub fn conversation(&self) -> Vec<Value> {
        let mut items = self.input.clone();
        if let Some(output) = self.response.get("output").and_then(Value::as_array) {
            items.extend(output.iter().cloned());
        }
        items
    }
}

#[derive(Default)]
struct Inner {
    entries: IndexMap<String, StoredResponse>,
    bytes: usize,
}

#[derive(Default)]
pub struct ResponseStore {
    inner: Mutex<Inner>,
}

impl ResponseStore {
    /// Keeps `response` (its `id` is the key), evicting the oldest beyond the bounds.
    /// A conversation larger than [`MAX_BYTES`] alone is not stored.
    pub fn put(&self, owner: &str, input: Vec<Value>, response: Value) {
        let Some(id) = response
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            return;
        };
        let size = id.len()
            + response.to_string().len()
            + input.iter().map(|i| i.to_string().len()).sum::<usize>();
        if size > MAX_BYTES {
            tracing::warn!(response_id = %id, bytes = size, "response too large to store");
            return;
        }
        let entry = StoredResponse {
            owner: owner.to_owned(),
            input,
            response,
            stored_at: Instant::now(),
            size,
        };
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        if let Some(old) = inner.entries.shift_remove(&id) {
            inner.bytes -= old.size;
        }
        inner.bytes += size;
        inner.entries.insert(id, entry);
        while inner.entries.len() > MAX_ENTRIES || inner.bytes > MAX_BYTES {
            match inner.entries.shift_remove_index(0) {
                Some((_, old)) => inner.bytes -= old.size,
                None => break,
            }
        }
    }

    /// The stored response `id`, if `owner` created it and it has not expired.
    pub fn get(&self, owner: &str, id: &str) -> Option<StoredResponse> {
        let mut inner = self.inner.lock().ok()?;
        let expired = inner.entries.get(id)?.stored_at.elapsed() > TTL;
        if expired {
            if let Some(old) = inner.entries.shift_remove(id) {
                inner.bytes -= old.size;
            }
            return None;
        }
        inner.entries.get(id).filter(|e| e.owner == owner).cloned()
    }

    /// Removes `id` if `owner` created it; whether it was there.
    pub fn delete(&self, owner: &str, id: &str) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        if inner.entries.get(id).is_none_or(|e| e.owner != owner) {
            return false;
        }
        if let Some(old) = inner.entries.shift_remove(id) {
            inner.bytes -= old.size;
        }
        true
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|i| i.entries.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_chains_per_owner_and_stays_bounded() {
        let store = ResponseStore::default();
        store.put(
            "a",
            vec![json!({"role": "user", "content": "hi"})],
            json!({"id": "resp_1", "output": [{"type": "message", "role": "assistant"}]}),
        );
        let got = store.get("a", "resp_1").unwrap();
        assert_eq!(got.conversation().len(), 2);
        assert!(
            store.get("b", "resp_1").is_none(),
            "another key cannot read it"
        );
        assert!(!store.delete("b", "resp_1"));
        assert!(store.delete("a", "resp_1"));
        assert!(store.get("a", "resp_1").is_none());
        for i in 0..(MAX_ENTRIES + 5) {
            store.put("a", Vec::new(), json!({"id": format!("resp_{i}")}));
        }
        assert_eq!(store.len(), MAX_ENTRIES);
        assert!(store.get("a", "resp_0").is_none(), "oldest evicted");
        assert!(
            store
                .get("a", &format!("resp_{}", MAX_ENTRIES + 4))
                .is_some()
        );
    }
}
