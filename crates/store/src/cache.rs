//! `KeyCache`: the request path's view of the keys, served from memory.
//!
//! It loads every key at start, answers `lookup` from a hash map (a short read lock, no
//! I/O), applies local writes immediately (write-through methods), and pulls other
//! replicas' changes every few seconds by `updated_at` watermark plus deletion
//! tombstones. If the database is unreachable it keeps serving the last known keys.
//!
//! A key unknown to the cache is unknown to the request path until the next refresh:
//! falling back to the database on a miss would put it on the hot path (and let anyone
//! with random keys load it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::time::to_ms;
use crate::{KeyRecord, KeyStore, KeyUpdate, StoreError, hash_key};

/// Each refresh re-reads this much before the watermark, covering transactions that
/// committed late and clock skew between replicas (assumed NTP-synced within a minute).
const OVERLAP_MS: i64 = 60_000;

type KeyMap = HashMap<String, Arc<KeyRecord>>;

#[derive(Debug)]
pub struct KeyCache {
    store: Arc<dyn KeyStore>,
    keys: RwLock<KeyMap>,
    /// Highest `updated_at` / deletion time seen (Unix ms, database-written values).
    watermark: AtomicI64,
    consecutive_failures: AtomicU64,
    refreshing: tokio::sync::Mutex<()>,
}

impl KeyCache {
    /// Loads every key. Fails only if the first load fails.
    pub async fn load(store: Arc<dyn KeyStore>) -> Result<Arc<KeyCache>, StoreError> {
        let all = store.all_keys().await?;
        let watermark = all.iter().map(|k| to_ms(k.updated_at)).max().unwrap_or(0);
        let map: KeyMap = all
            .into_iter()
            .map(|k| (k.token_hash.clone(), Arc::new(k)))
            .collect();
        Ok(Arc::new(KeyCache {
            store,
            keys: RwLock::new(map),
            watermark: AtomicI64::new(watermark),
            consecutive_failures: AtomicU64::new(0),
            refreshing: tokio::sync::Mutex::new(()),
        }))
    }

    /// The key with this hash, if known. Never touches the database.
    pub fn lookup(&self, hash: &str) -> Option<Arc<KeyRecord>> {
        self.read().get(hash).cloned()
    }

    /// `lookup(hash_key(key))`.
    pub fn lookup_key(&self, key: &str) -> Option<Arc<KeyRecord>> {
        self.lookup(&hash_key(key))
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// The store behind the cache (for admin reads such as `list`).
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    /// Refreshes that failed in a row (0 when the last one succeeded).
    pub fn consecutive_failures(&self) -> u64 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    /// Inserts into the store, then the cache.
    pub async fn insert(&self, key: KeyRecord) -> Result<Arc<KeyRecord>, StoreError> {
        self.store.insert(&key).await?;
        Ok(self.put(key))
    }

    /// Updates the store, then the cache.
    pub async fn update(
        &self,
        hash: &str,
        update: &KeyUpdate,
    ) -> Result<Arc<KeyRecord>, StoreError> {
        let rec = self.store.update(hash, update).await?;
        Ok(self.put(rec))
    }

    /// Deletes from the store, then the cache.
    pub async fn delete(&self, hash: &str) -> Result<bool, StoreError> {
        let gone = self.store.delete(hash).await?;
        self.invalidate(hash);
        Ok(gone)
    }

    /// Regenerates in the store; the old hash stops working here at once.
    pub async fn regenerate(&self, old_hash: &str) -> Result<(String, Arc<KeyRecord>), StoreError> {
        let (key, rec) = self.store.regenerate(old_hash).await?;
        self.invalidate(old_hash);
        Ok((key, self.put(rec)))
    }

    /// Replaces the cached copy of one key.
    pub fn put(&self, key: KeyRecord) -> Arc<KeyRecord> {
        let key = Arc::new(key);
        self.write().insert(key.token_hash.clone(), key.clone());
        key
    }

    /// Adds a request's cost to the key's spend in memory at once, so its budget holds on
    /// this replica before the spend writer's batch reaches the database (which then
    /// carries the same addition back on the next refresh).
    pub fn add_spend(&self, hash: &str, cost: f64) {
        if !(cost.is_finite() && cost > 0.0) {
            return;
        }
        let mut map = self.write();
        if let Some(current) = map.get(hash) {
            let mut updated = KeyRecord::clone(current);
            updated.spend += cost;
            map.insert(hash.to_owned(), Arc::new(updated));
        }
    }

    /// Forgets one key locally.
    pub fn invalidate(&self, hash: &str) {
        self.write().remove(hash);
    }

    /// Pulls changes since the watermark. Returns how many keys changed or went away.
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let since = self
            .watermark
            .load(Ordering::Acquire)
            .saturating_sub(OVERLAP_MS);
        let changes = match self.store.changes_since(since).await {
            Ok(c) => c,
            Err(e) => {
                self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        self.consecutive_failures.store(0, Ordering::Relaxed);
        let n = changes.upserted.len() + changes.deleted.len();
        {
            let mut map = self.write();
            for h in &changes.deleted {
                map.remove(h);
            }
            for k in changes.upserted {
                // A local write may be newer than what this query read.
                let newer = map
                    .get(&k.token_hash)
                    .is_none_or(|cur| cur.updated_at <= k.updated_at);
                if newer {
                    map.insert(k.token_hash.clone(), Arc::new(k));
                }
            }
        }
        self.watermark
            .fetch_max(changes.high_water_ms, Ordering::AcqRel);
        Ok(n)
    }

    /// Refreshes every `every` until the handle is stopped or dropped. Failures are
    /// logged and retried; the cache keeps its last known keys meanwhile.
    pub fn spawn_refresher(self: &Arc<Self>, every: Duration) -> RefreshHandle {
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let cache = Arc::clone(self);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; the cache was just loaded
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    _ = tick.tick() => {
                        if let Err(e) = cache.refresh().await {
                            tracing::warn!(
                                error = %e,
                                failures = cache.consecutive_failures(),
                                "key cache refresh failed; serving last known keys"
                            );
                        }
                    }
                }
            }
        });
        RefreshHandle {
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeyMap> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters (each entry is replaced whole), so keep serving.
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, KeyMap> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Owns the refresher task; dropping it stops the task too.
#[derive(Debug)]
pub struct RefreshHandle {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RefreshHandle {
    /// Stops the refresher and waits for it.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}
