//! `KeyCache`: the request path's view of the keys, served from memory.
//!
//! It loads every key at start, answers `lookup` from a hash map (a short read lock, no
//! I/O), applies local writes immediately (write-through methods), and pulls other
//! replicas' changes by `updated_at` watermark plus deletion tombstones: at once when the
//! store signals a change (Postgres `LISTEN/NOTIFY`), and every few seconds regardless as
//! a safety net. If the database is unreachable it keeps serving the last known keys.
//!
//! Spend is the one field changed on the request path: a finished request's cost is added
//! here at once (`add_spend`) and reaches the database later in the spend writer's batch.
//! Until then it is kept as *unflushed* per key and added on top of whatever a refresh
//! reads, so a refresh never makes this replica forget spend it has not written yet.
//! Another replica's batch does not make this one re-read keys: its signal carries the
//! keys' new spend in the database, applied here in memory (`apply_spend`).
//!
//! A key unknown to the cache is unknown to the request path until the next refresh:
//! falling back to the database on a miss would put it on the hot path (and let anyone
//! with random keys load it).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::time::to_ms;
use crate::{KeyChangeListener, KeyRecord, KeySignal, KeyStore, KeyUpdate, StoreError, hash_key};

/// Each periodic refresh re-reads this much before the watermark, covering transactions
/// that committed late and clock skew between replicas (assumed NTP-synced within a minute).
const OVERLAP_MS: i64 = 60_000;
/// A refresh on a change signal runs right after the change committed, so it needs less
/// overlap; anything it misses (a replica's clock far behind) the periodic one catches.
const SIGNAL_OVERLAP_MS: i64 = 5_000;
/// Pause before connecting a new change listener after the last one failed.
const LISTEN_RETRY: Duration = Duration::from_secs(2);

type KeyMap = HashMap<String, Arc<KeyRecord>>;

#[derive(Debug, Default)]
struct Inner {
    keys: KeyMap,
    /// Cost added here but not yet in the database's `spend`, per key hash.
    unflushed: HashMap<String, f64>,
}

#[derive(Debug)]
pub struct KeyCache {
    store: Arc<dyn KeyStore>,
    keys: RwLock<Inner>,
    /// Highest `updated_at` / deletion time seen (Unix ms, database-written values).
    watermark: AtomicI64,
    consecutive_failures: AtomicU64,
    refreshing: tokio::sync::Mutex<()>,
    activity: Activity,
}

/// What the cache has done since it loaded: how often it read the store, and how often
/// other replicas' spend reached it without a read.
#[derive(Debug, Default)]
struct Activity {
    reads: AtomicU64,
    rows_read: AtomicU64,
    spend_updates: AtomicU64,
}

/// Counters of a `KeyCache` since it loaded (for metrics and for measuring what spend
/// propagation costs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheActivity {
    /// Refresh reads of the store (periodic, and on key change signals).
    pub reads: u64,
    /// Keys and tombstones those reads returned.
    pub rows_read: u64,
    /// Keys whose spend another replica's batch changed, applied from the signal alone.
    pub spend_updates: u64,
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
            keys: RwLock::new(Inner {
                keys: map,
                unflushed: HashMap::new(),
            }),
            watermark: AtomicI64::new(watermark),
            consecutive_failures: AtomicU64::new(0),
            refreshing: tokio::sync::Mutex::new(()),
            activity: Activity::default(),
        }))
    }

    /// The key with this hash, if known. Never touches the database.
    pub fn lookup(&self, hash: &str) -> Option<Arc<KeyRecord>> {
        self.read().keys.get(hash).cloned()
    }

    /// `lookup(hash_key(key))`.
    pub fn lookup_key(&self, key: &str) -> Option<Arc<KeyRecord>> {
        self.lookup(&hash_key(key))
    }

    pub fn len(&self) -> usize {
        self.read().keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().keys.is_empty()
    }

    /// The store behind the cache (for admin reads such as `list`).
    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    pub fn activity(&self) -> CacheActivity {
        let a = &self.activity;
        CacheActivity {
            reads: a.reads.load(Ordering::Relaxed),
            rows_read: a.rows_read.load(Ordering::Relaxed),
            spend_updates: a.spend_updates.load(Ordering::Relaxed),
        }
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

    /// Deletes from the store, then the cache. Refreshes are held off meanwhile: one
    /// that read the key before the delete committed would otherwise put it back after
    /// the local removal (the key would work again until the next refresh).
    pub async fn delete(&self, hash: &str) -> Result<bool, StoreError> {
        let _no_refresh = self.refreshing.lock().await;
        let gone = self.store.delete(hash).await?;
        self.invalidate(hash);
        Ok(gone)
    }

    /// Regenerates in the store; the old hash stops working here at once (refreshes held
    /// off, as for [`KeyCache::delete`]).
    pub async fn regenerate(&self, old_hash: &str) -> Result<(String, Arc<KeyRecord>), StoreError> {
        let _no_refresh = self.refreshing.lock().await;
        let (key, rec) = self.store.regenerate(old_hash).await?;
        self.invalidate(old_hash);
        Ok((key, self.put(rec)))
    }

    /// Replaces the cached copy of one key (a record read from the store: spend not yet
    /// flushed from here is added on top).
    pub fn put(&self, key: KeyRecord) -> Arc<KeyRecord> {
        let mut inner = self.write();
        let key = Arc::new(with_unflushed(key, &inner.unflushed));
        inner.keys.insert(key.token_hash.clone(), key.clone());
        key
    }

    /// Adds a request's cost to the key's spend in memory at once, so its budget holds on
    /// this replica before the spend writer's batch reaches the database. The writer
    /// reports the batch with `settle_spend`.
    pub fn add_spend(&self, hash: &str, cost: f64) {
        if !(cost.is_finite() && cost > 0.0) {
            return;
        }
        let mut inner = self.write();
        let Some(current) = inner.keys.get(hash) else {
            return;
        };
        let mut updated = KeyRecord::clone(current);
        updated.spend += cost;
        inner.keys.insert(hash.to_owned(), Arc::new(updated));
        *inner.unflushed.entry(hash.to_owned()).or_default() += cost;
    }

    /// Runs `write`, which adds `costs` to the keys' stored spend, with refreshes held
    /// off; on success those costs stop counting as unflushed. Holding refreshes off
    /// means no refresh can read the new stored spend while the same cost still counts
    /// as unflushed (counted twice), nor read the old one and apply it after (lost).
    pub async fn settle_spend<F, E>(&self, costs: &[(String, f64)], write: F) -> Result<(), E>
    where
        F: Future<Output = Result<(), E>>,
    {
        let _no_refresh = self.refreshing.lock().await;
        write.await?;
        let mut inner = self.write();
        for (hash, cost) in costs {
            if let Some(left) = inner.unflushed.get_mut(hash) {
                *left -= cost;
                // Float sums never come back to exactly zero; a cent's billionth is zero.
                if *left <= 1e-9 {
                    inner.unflushed.remove(hash);
                }
            }
        }
        Ok(())
    }

    /// Spend added here that the database does not have yet, summed over keys.
    pub fn unflushed_spend(&self) -> f64 {
        self.read().unflushed.values().sum()
    }

    /// Forgets one key locally.
    pub fn invalidate(&self, hash: &str) {
        let mut inner = self.write();
        inner.keys.remove(hash);
        inner.unflushed.remove(hash);
    }

    /// Pulls changes since the watermark (less a minute of overlap). Returns how many
    /// keys changed or went away.
    pub async fn refresh(&self) -> Result<usize, StoreError> {
        self.refresh_with_overlap(OVERLAP_MS).await
    }

    async fn refresh_with_overlap(&self, overlap_ms: i64) -> Result<usize, StoreError> {
        let _one_at_a_time = self.refreshing.lock().await;
        let since = self
            .watermark
            .load(Ordering::Acquire)
            .saturating_sub(overlap_ms);
        let changes = match self.store.changes_since(since).await {
            Ok(c) => c,
            Err(e) => {
                self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        self.consecutive_failures.store(0, Ordering::Relaxed);
        let n = changes.upserted.len() + changes.deleted.len();
        self.activity.reads.fetch_add(1, Ordering::Relaxed);
        self.activity
            .rows_read
            .fetch_add(n as u64, Ordering::Relaxed);
        {
            let mut inner = self.write();
            let Inner { keys, unflushed } = &mut *inner;
            for h in &changes.deleted {
                keys.remove(h);
                unflushed.remove(h);
            }
            for k in changes.upserted {
                // A local write may be newer than what this query read.
                let newer = keys
                    .get(&k.token_hash)
                    .is_none_or(|cur| cur.updated_at <= k.updated_at);
                if newer {
                    keys.insert(k.token_hash.clone(), Arc::new(with_unflushed(k, unflushed)));
                }
            }
        }
        self.watermark
            .fetch_max(changes.high_water_ms, Ordering::AcqRel);
        Ok(n)
    }

    /// Refreshes every `every`, and at once whenever the store signals a key change,
    /// until the handle is stopped or dropped. Failures are logged and retried; the cache
    /// keeps its last known keys meanwhile.
    pub fn spawn_refresher(self: &Arc<Self>, every: Duration) -> RefreshHandle {
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let cache = Arc::clone(self);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await; // the first tick is immediate; the cache was just loaded
            let mut listener = Listening::Connect;
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    _ = tick.tick() => cache.refresh_logged(OVERLAP_MS).await,
                    signal = listener.next(&cache.store) => match signal {
                        Ok(Some(signal)) => {
                            if cache.on_signal(signal).await {
                                cache.refresh_logged(SIGNAL_OVERLAP_MS).await;
                            }
                            // Changes signalled while that ran are in it or in the next
                            // refresh; one more covers them all.
                            let mut again = false;
                            while let Some(signal) = listener.next_buffered() {
                                again |= cache.on_signal(signal).await;
                            }
                            if again {
                                cache.refresh_logged(SIGNAL_OVERLAP_MS).await;
                            }
                        }
                        Ok(None) => listener = Listening::Unsupported,
                        Err(e) => {
                            tracing::warn!(error = %e, "key change listener failed; relying on the periodic refresh until it reconnects");
                            listener = Listening::RetryAt(tokio::time::Instant::now() + LISTEN_RETRY);
                        }
                    },
                }
            }
        });
        RefreshHandle {
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    /// Applies a spend signal; `true` when the signal calls for a re-read instead.
    async fn on_signal(&self, signal: KeySignal) -> bool {
        match signal {
            KeySignal::Spend(spent) => {
                self.apply_spend(&spent).await;
                false
            }
            KeySignal::Changed | KeySignal::Reconnected => true,
        }
    }

    /// Another replica's batch left these keys with this spend in the database (key hash,
    /// spend). Each key's spend here becomes that plus what this replica has not written
    /// yet, unless it already knows more: both are lower bounds of the truth (spend only
    /// grows between resets, and a reset arrives as a change signal, re-read after every
    /// spend signal committed before it), so the larger one is the better. Waits for a
    /// settling batch of this replica's own (`settle_spend`), whose cost would otherwise
    /// count both in the database's figure and as unflushed. Returns the keys changed.
    pub async fn apply_spend(&self, spent: &[(String, f64)]) -> usize {
        let _settled = self.refreshing.lock().await;
        let mut changed = 0;
        let mut inner = self.write();
        let Inner { keys, unflushed } = &mut *inner;
        for (hash, stored) in spent {
            let Some(current) = keys.get(hash) else {
                continue;
            };
            let seen = stored + unflushed.get(hash).copied().unwrap_or(0.0);
            if seen.is_finite() && seen > current.spend {
                let mut updated = KeyRecord::clone(current);
                updated.spend = seen;
                keys.insert(hash.clone(), Arc::new(updated));
                changed += 1;
            }
        }
        self.activity
            .spend_updates
            .fetch_add(changed as u64, Ordering::Relaxed);
        changed
    }

    async fn refresh_logged(&self, overlap_ms: i64) {
        if let Err(e) = self.refresh_with_overlap(overlap_ms).await {
            tracing::warn!(
                error = %e,
                failures = self.consecutive_failures(),
                "key cache refresh failed; serving last known keys"
            );
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters (each entry is replaced whole), so keep serving.
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }
}

fn with_unflushed(mut key: KeyRecord, unflushed: &HashMap<String, f64>) -> KeyRecord {
    if let Some(extra) = unflushed.get(&key.token_hash) {
        key.spend += extra;
    }
    key
}

/// The refresher's change listener, through its life: connecting (again), listening, or
/// not available from this store.
enum Listening {
    Connect,
    RetryAt(tokio::time::Instant),
    On(KeyChangeListener),
    Unsupported,
}

impl Listening {
    /// The next change signal; `Ok(None)` once it is known the store has none (the
    /// caller then stops asking). Pending forever while unsupported.
    async fn next(&mut self, store: &Arc<dyn KeyStore>) -> Result<Option<KeySignal>, StoreError> {
        loop {
            match self {
                Listening::Unsupported => return std::future::pending().await,
                Listening::RetryAt(at) => {
                    tokio::time::sleep_until(*at).await;
                    *self = Listening::Connect;
                }
                Listening::Connect => match store.key_change_listener().await? {
                    Some(l) => {
                        tracing::info!("listening for key changes from other replicas");
                        *self = Listening::On(l);
                        // Changes made while not listening are unknown: read them now.
                        return Ok(Some(KeySignal::Reconnected));
                    }
                    None => return Ok(None),
                },
                Listening::On(l) => return l.next().await.map(Some),
            }
        }
    }

    fn next_buffered(&mut self) -> Option<KeySignal> {
        match self {
            Listening::On(l) => l.next_buffered(),
            _ => None,
        }
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
