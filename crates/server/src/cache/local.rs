//! The in-process cache: bounded by entries and by bytes, oldest stored evicted first,
//! each entry with its own expiry. One mutex: every operation is a hash lookup and a few
//! queue moves, far shorter than anything else a request does.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::entry::Entry;

pub struct Local {
    inner: Mutex<Inner>,
    max_entries: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Slot>,
    /// Keys in store order with the generation stored; stale pairs are skipped.
    order: VecDeque<(String, u64)>,
    bytes: usize,
    generation: u64,
}

struct Slot {
    entry: Arc<Entry>,
    expires: Instant,
    generation: u64,
}

impl Local {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::default(),
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Arc<Entry>> {
        let mut inner = self.lock();
        let slot = inner.map.get(key)?;
        if slot.expires > Instant::now() {
            return Some(slot.entry.clone());
        }
        inner.remove(key);
        None
    }

    pub fn put(&self, key: String, entry: Entry, ttl: Duration) {
        let weight = entry.weight() + key.len();
        if weight > self.max_bytes {
            return;
        }
        let Some(expires) = Instant::now().checked_add(ttl) else {
            return;
        };
        let mut inner = self.lock();
        inner.remove(&key);
        inner.generation += 1;
        let generation = inner.generation;
        inner.bytes += weight;
        inner.order.push_back((key.clone(), generation));
        inner.map.insert(
            key,
            Slot {
                entry: Arc::new(entry),
                expires,
                generation,
            },
        );
        while inner.map.len() > self.max_entries || inner.bytes > self.max_bytes {
            let Some((oldest, generation)) = inner.order.pop_front() else {
                break;
            };
            if inner
                .map
                .get(&oldest)
                .is_some_and(|s| s.generation == generation)
            {
                inner.remove(&oldest);
            }
        }
        // Replaced and expired keys leave stale pairs behind; keep the queue bounded.
        if inner.order.len() > 2 * self.max_entries + 16 {
            let Inner { map, order, .. } = &mut *inner;
            order.retain(|(k, g)| map.get(k).is_some_and(|s| s.generation == *g));
        }
    }

    #[cfg(test)]
    fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.map.len(), inner.bytes)
    }
}

impl Inner {
    fn remove(&mut self, key: &str) {
        if let Some(slot) = self.map.remove(key) {
            self.bytes -= slot.entry.weight() + key.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn entry(len: usize) -> Entry {
        Entry {
            stream: false,
            stored_ms: 0,
            body: Bytes::from(vec![b'x'; len]),
        }
    }

    #[test]
    fn bounded_by_entries_and_bytes_oldest_first() {
        let cache = Local::new(3, 10_000);
        let ttl = Duration::from_secs(60);
        for i in 0..5 {
            cache.put(format!("k{i}"), entry(10), ttl);
        }
        assert_eq!(cache.usage().0, 3);
        assert!(cache.get("k0").is_none() && cache.get("k1").is_none());
        assert!(cache.get("k4").is_some());
        // Bytes: a large entry pushes out older ones until the total fits.
        cache.put("big".into(), entry(9_900), ttl);
        let (n, bytes) = cache.usage();
        assert!(bytes <= 10_000, "{bytes}");
        assert_eq!(n, 1);
        // Larger than the whole cache: not stored at all.
        cache.put("huge".into(), entry(20_000), ttl);
        assert!(cache.get("huge").is_none());
        assert!(cache.get("big").is_some());
    }

    #[test]
    fn entries_expire_and_replacements_keep_the_queue_bounded() {
        let cache = Local::new(2, 1 << 20);
        cache.put("a".into(), entry(1), Duration::ZERO);
        assert!(cache.get("a").is_none());
        for _ in 0..1000 {
            cache.put("b".into(), entry(1), Duration::from_secs(60));
        }
        assert!(cache.lock().order.len() <= 2 * 2 + 16 + 1);
        assert_eq!(cache.usage().0, 1);
        assert!(cache.get("b").is_some());
    }
}
