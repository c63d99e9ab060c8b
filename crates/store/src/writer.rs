//! `SpendWriter`: spend and audit rows leave the request path through a bounded queue and
//! reach the database in batches from one background task.
//!
//! `try_log` / `try_audit` never wait: a full queue drops the row and counts it. The task
//! flushes when a batch is full or every `flush_interval`, and on `shutdown` drains the
//! queue and flushes what is left. A failed flush keeps its rows (up to `max_pending`)
//! and is retried on the next tick, so a short database outage loses nothing.
//!
//! With a `spool_dir`, spend rows go to the spool's own thread instead (`spooler.rs`),
//! which appends them to a local file (`spool.rs`) and hands them on; a row leaves the
//! file only once written: an outage longer than memory holds keeps rows on disk (up to
//! `max_spool_rows`) instead of dropping them, and rows of a replica that was killed, or
//! stopped with the database down, are written by another one there. The request path
//! only ever sends into a channel; every file operation of the flusher runs on a
//! blocking task.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::spool::{AdoptCap, Spool};
use crate::spooler::{self, Intake, Msg, Shared, lock};
use crate::{AuditRow, KeyCache, KeyStore, SpendRow};

/// How often queued rows are taken off the queue.
const DRAIN_INTERVAL: Duration = Duration::from_millis(50);
/// Batches of spooled rows written at shutdown at most (`max_pending` rows each).
const SHUTDOWN_SPOOL_ROUNDS: usize = 20;

/// Tuning for `SpendWriter`.
#[derive(Debug, Clone)]
pub struct SpendWriterConfig {
    /// Rows the queue holds before `try_log` starts dropping.
    pub queue_capacity: usize,
    /// Flush as soon as this many rows of one kind are waiting.
    pub batch_size: usize,
    /// Flush at least this often when anything is waiting.
    pub flush_interval: Duration,
    /// Rows kept for retry while the database fails; older ones beyond this are dropped.
    pub max_pending: usize,
    /// Also add each batch's cost to the keys' `spend` (aggregated per key, one
    /// transaction), so budgets see it without a database write per request.
    pub apply_key_spend: bool,
    /// Write the rows to the spend log (`general_settings.disable_spend_logs` turns this
    /// off; the keys' spend, and so budgets, are still kept).
    pub log_rows: bool,
    /// Directory of the local spool of unwritten spend rows; `None` keeps them in memory
    /// only (lost on a kill, or beyond `max_pending` during an outage).
    pub spool_dir: Option<PathBuf>,
    /// Most spend rows the spool holds; beyond that new rows are dropped and counted.
    pub max_spool_rows: u64,
}

impl Default for SpendWriterConfig {
    fn default() -> Self {
        SpendWriterConfig {
            queue_capacity: 10_000,
            batch_size: 500,
            flush_interval: Duration::from_secs(1),
            max_pending: 50_000,
            apply_key_spend: true,
            log_rows: true,
            spool_dir: None,
            max_spool_rows: 1_000_000,
        }
    }
}

/// Counters since the writer started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Rows dropped: queue full, writer stopped, or retry buffer overflow.
    pub dropped: u64,
    pub spend_written: u64,
    pub audit_written: u64,
    /// Flush attempts that failed (rows kept for retry unless counted in `dropped`).
    pub failed_flushes: u64,
    /// Spend rows waiting in the spool (in memory too, or on disk only).
    pub spooled: u64,
    /// Spend rows taken over at start from spools that stopped replicas left.
    pub adopted: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub dropped: AtomicU64,
    spend_written: AtomicU64,
    audit_written: AtomicU64,
    failed_flushes: AtomicU64,
    pub spooled: AtomicU64,
    pub adopted: AtomicU64,
}

enum Record {
    /// A spend row (when there is no spool).
    Spend(SpendRow),
    Audit(AuditRow),
}

/// The spool, its thread's channel and the intake it fills.
#[derive(Debug, Clone)]
struct Spooling {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
}

/// Batching writer for spend and audit rows. Dropping it also stops the task after a
/// final flush; `shutdown` lets the caller wait for that flush.
#[derive(Debug)]
pub struct SpendWriter {
    tx: mpsc::Sender<Record>,
    counters: Arc<Counters>,
    /// Told each row's cost when it is queued and again when it is written (budgets).
    cache: Option<Arc<KeyCache>>,
    spool: Option<Spooling>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl SpendWriter {
    /// Starts the background task on the current Tokio runtime.
    pub fn spawn(store: Arc<dyn KeyStore>, config: SpendWriterConfig) -> SpendWriter {
        Self::spawn_with_cache(store, None, config)
    }

    /// `spawn`, keeping `cache`'s spend current: a queued row's cost counts against its
    /// key's budget at once, and stops counting as unflushed once written. Opens (and
    /// adopts into) the spool before returning; a spool that cannot be opened is logged
    /// and the writer runs without one.
    pub fn spawn_with_cache(
        store: Arc<dyn KeyStore>,
        cache: Option<Arc<KeyCache>>,
        config: SpendWriterConfig,
    ) -> SpendWriter {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let counters = Arc::new(Counters::default());
        let spool = config.spool_dir.as_deref().and_then(|dir| {
            match open_spool(dir, &config, counters.clone()) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot open the spend spool; unwritten spend rows are kept in memory only");
                    None
                }
            }
        });
        let task = tokio::spawn(run(
            store,
            cache.clone(),
            config,
            spool.clone(),
            rx,
            stop_rx,
            counters.clone(),
        ));
        SpendWriter {
            tx,
            counters,
            cache,
            spool,
            stop: Mutex::new(Some(stop_tx)),
            task: Mutex::new(Some(task)),
        }
    }

    /// Queues a spend row; `false` (and a `dropped` count) if the queue is full or closed.
    ///
    /// With a spool the row goes to the spool's thread (which appends it within
    /// microseconds, whatever the database does); `false` if that thread's channel is
    /// full. Never waits, never touches a file.
    pub fn try_log(&self, row: SpendRow) -> bool {
        let (key, cost) = (row.key_hash.clone(), row.cost);
        let kept = match &self.spool {
            Some(spool) => match spool.tx.try_send(Msg::Row(row)) {
                Ok(()) => true,
                Err(_) => {
                    self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    false
                }
            },
            None => self.enqueue(Record::Spend(row)),
        };
        // The key spent it whether or not the row could be kept: budgets count it either
        // way (a dropped row's cost then stays "unflushed" in this replica's cache).
        if let Some(cache) = &self.cache {
            cache.add_spend(&key, cost);
        }
        kept
    }

    /// Queues an MCP audit row; same contract as `try_log`.
    pub fn try_audit(&self, row: AuditRow) -> bool {
        self.enqueue(Record::Audit(row))
    }

    fn enqueue(&self, r: Record) -> bool {
        match self.tx.try_send(r) {
            Ok(()) => true,
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Rows dropped so far.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> WriterStats {
        let c = &self.counters;
        WriterStats {
            dropped: c.dropped.load(Ordering::Relaxed),
            spend_written: c.spend_written.load(Ordering::Relaxed),
            audit_written: c.audit_written.load(Ordering::Relaxed),
            failed_flushes: c.failed_flushes.load(Ordering::Relaxed),
            spooled: c.spooled.load(Ordering::Relaxed),
            adopted: c.adopted.load(Ordering::Relaxed),
        }
    }

    /// Stops accepting rows, writes everything queued, and waits for it. Idempotent.
    pub async fn shutdown(&self) {
        let stop = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task
            && let Err(e) = task.await
        {
            tracing::error!(error = %e, "spend writer task failed");
        }
    }
}

/// Opens the spool (adopting a first capped share of dead replicas' rows) and starts its
/// thread.
fn open_spool(
    dir: &std::path::Path,
    config: &SpendWriterConfig,
    counters: Arc<Counters>,
) -> std::io::Result<Spooling> {
    let max_pending = config.max_pending.max(1);
    let cap = AdoptCap::default();
    let cap = AdoptCap {
        lines: cap.lines.min(config.max_spool_rows),
        ..cap
    };
    let (spool, adopted) = Spool::open(dir, max_pending as u64, cap)?;
    counters.adopted.store(adopted, Ordering::Relaxed);
    let shared = Arc::new(Shared {
        spool: Mutex::new(spool),
        intake: Mutex::new(Intake::default()),
        disk_only: AtomicU64::new(0),
    });
    shared.publish(&lock(&shared.spool), &counters);
    let limits = spooler::Limits {
        max_spool_rows: config.max_spool_rows,
        max_pending,
    };
    let tx = spooler::start(shared.clone(), counters, config.queue_capacity, limits)?;
    Ok(Spooling { tx, shared })
}

struct Buffers {
    spend: Vec<SpendRow>,
    /// How many of `spend` are lines of the spool's memory window.
    spend_spooled: u64,
    audit: Vec<AuditRow>,
    spool: Option<Spooling>,
    /// Set after a failed flush: size-triggered flushes wait for the next tick, so an
    /// outage is retried once per interval rather than once per row.
    failing: bool,
}

/// What one flush needs besides the rows.
struct Sink<'a> {
    store: &'a dyn KeyStore,
    cache: Option<&'a KeyCache>,
    config: &'a SpendWriterConfig,
    counters: &'a Counters,
}

async fn run(
    store: Arc<dyn KeyStore>,
    cache: Option<Arc<KeyCache>>,
    config: SpendWriterConfig,
    spool: Option<Spooling>,
    mut rx: mpsc::Receiver<Record>,
    mut stop: oneshot::Receiver<()>,
    counters: Arc<Counters>,
) {
    let sink = Sink {
        store: &*store,
        cache: cache.as_deref(),
        config: &config,
        counters: &counters,
    };
    let mut buf = Buffers {
        spend: Vec::new(),
        spend_spooled: 0,
        audit: Vec::new(),
        spool,
        failing: false,
    };
    // Rows adopted from stopped replicas' spools go first.
    load_from_spool(&mut buf, &sink).await;
    // The queue is drained on a short timer instead of waking this task per row: a
    // busy gateway would otherwise pay a thread wake-up (and a context switch on a small
    // machine) for every request it serves.
    let mut drain = tokio::time::interval(DRAIN_INTERVAL.min(config.flush_interval));
    drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let batch = config.batch_size.max(1);
    let mut last_flush = tokio::time::Instant::now();
    let mut closed = false;
    let mut fresh = Vec::new();
    while !closed {
        tokio::select! {
            biased;
            // A send or the writer being dropped both mean: stop.
            _ = &mut stop => break,
            _ = drain.tick() => {}
        }
        loop {
            match rx.try_recv() {
                Ok(Record::Spend(r)) => fresh.push(r),
                Ok(Record::Audit(r)) => buf.audit.push(r),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
            if fresh.len() >= batch || buf.audit.len() >= batch {
                take_in(&mut buf, &mut fresh, &sink);
                if !buf.failing && (buf.spend.len() >= batch || buf.audit.len() >= batch) {
                    flush(&sink, &mut buf).await;
                    last_flush = tokio::time::Instant::now();
                }
            }
        }
        take_in(&mut buf, &mut fresh, &sink);
        if buf.spend.is_empty() {
            load_from_spool(&mut buf, &sink).await;
        }
        let full = buf.spend.len() >= batch || buf.audit.len() >= batch;
        let due = (!buf.spend.is_empty() || !buf.audit.is_empty())
            && last_flush.elapsed() >= config.flush_interval;
        if (full && !buf.failing) || due {
            flush(&sink, &mut buf).await;
            last_flush = tokio::time::Instant::now();
        }
    }
    // Refuse new rows, then take whatever was queued before the close.
    rx.close();
    while let Some(rec) = rx.recv().await {
        match rec {
            Record::Spend(r) => fresh.push(r),
            Record::Audit(r) => buf.audit.push(r),
        }
    }
    if let Some(spool) = &buf.spool {
        // Rows sent to the spool thread before the stop are in the intake after this.
        let (done, appended) = oneshot::channel();
        let tx = spool.tx.clone();
        if let Ok(true) =
            tokio::task::spawn_blocking(move || tx.send(Msg::Sync(done)).is_ok()).await
        {
            let _ = appended.await;
        }
    }
    take_in(&mut buf, &mut fresh, &sink);
    flush(&sink, &mut buf).await;
    // Rows waiting on disk only come into memory a batch at a time; write them too while
    // the database takes them (bounded: what is left stays in the spool).
    for _ in 0..SHUTDOWN_SPOOL_ROUNDS {
        take_in(&mut buf, &mut fresh, &sink);
        if buf.failing || buf.spend.is_empty() {
            break;
        }
        flush(&sink, &mut buf).await;
    }
    let kept = match &buf.spool {
        // Closed: rows the spool thread gets from now on are dropped and counted.
        Some(s) => on_spool(s, |spool| {
            spool.close();
            spool.unwritten()
        })
        .await
        .unwrap_or(0),
        None => 0,
    };
    let lost = buf.audit.len() + buf.spend.len() - buf.spend_spooled as usize;
    if lost > 0 {
        counters.dropped.fetch_add(lost as u64, Ordering::Relaxed);
        tracing::error!(rows = lost, "spend writer stopped with unwritten rows");
    }
    if kept > 0 {
        tracing::warn!(
            rows = kept,
            "spend rows not yet written stay in the spool; the next start here writes them"
        );
    }
}

/// Runs `f` on the spool on a blocking task (it does file I/O); `None` if that task
/// failed.
async fn on_spool<T: Send + 'static>(
    spool: &Spooling,
    f: impl FnOnce(&mut Spool) -> T + Send + 'static,
) -> Option<T> {
    let shared = spool.shared.clone();
    match tokio::task::spawn_blocking(move || f(&mut lock(&shared.spool))).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "spend spool task failed");
            None
        }
    }
}

/// Moves rows into memory: those the spool thread handed over (all within the memory
/// window's bound), and rows just taken off the queue (no spool) while memory has room.
fn take_in(buf: &mut Buffers, fresh: &mut Vec<SpendRow>, sink: &Sink<'_>) {
    if let Some(spool) = &buf.spool {
        let mut intake = lock(&spool.shared.intake);
        buf.spend_spooled += intake.spooled.len() as u64;
        buf.spend.append(&mut intake.spooled);
        buf.spend.append(&mut intake.unspooled);
    }
    if fresh.is_empty() {
        return;
    }
    let max = sink.config.max_pending;
    for row in fresh.drain(..) {
        // Without a spool the retry buffer is trimmed after a failed flush instead.
        if buf.spool.is_none() || buf.spend.len() < max {
            buf.spend.push(row);
        } else {
            sink.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Memory is empty: bring in the next disk-only rows of the spool, if any.
async fn load_from_spool(buf: &mut Buffers, sink: &Sink<'_>) {
    let Some(spool) = &buf.spool else { return };
    if !buf.spend.is_empty() || spool.shared.disk_only.load(Ordering::Relaxed) == 0 {
        return;
    }
    let (max, shared) = (sink.config.max_pending.max(1), spool.shared.clone());
    let loaded = on_spool(spool, move |s| {
        // Window rows still in the intake come first: take them, then load.
        let rows = if lock(&shared.intake).spooled.is_empty() && s.disk_only() > 0 {
            s.load(max)
        } else {
            Ok(Vec::new())
        };
        (rows, s.unwritten(), s.disk_only())
    })
    .await;
    let Some((rows, unwritten, disk_only)) = loaded else {
        return;
    };
    spool.shared.disk_only.store(disk_only, Ordering::Relaxed);
    sink.counters.spooled.store(unwritten, Ordering::Relaxed);
    match rows {
        Ok(rows) => {
            buf.spend_spooled = rows.len() as u64;
            buf.spend = rows;
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the spend spool; will retry"),
    }
}

async fn flush(sink: &Sink<'_>, buf: &mut Buffers) {
    let (config, c) = (sink.config, sink.counters);
    let mut ok = true;
    if !buf.spend.is_empty() {
        let logged = if config.log_rows {
            sink.store.insert_spend_batch(&buf.spend).await
        } else {
            Ok(())
        };
        match logged {
            Ok(()) => {
                if config.apply_key_spend {
                    let costs = costs_by_key(&buf.spend);
                    let write = sink.store.add_spend_many(&costs);
                    let applied = match sink.cache {
                        Some(cache) => cache.settle_spend(&costs, write).await,
                        None => write.await,
                    };
                    if let Err(e) = applied {
                        // The rows are in the log; only the running totals missed them.
                        tracing::warn!(error = %e, "could not add batch cost to key spend");
                    }
                }
                c.spend_written
                    .fetch_add(buf.spend.len() as u64, Ordering::Relaxed);
                if let Some(spool) = &buf.spool {
                    let n = buf.spend_spooled;
                    let marked =
                        on_spool(spool, move |s| (s.written(n), s.unwritten(), s.disk_only()))
                            .await;
                    if let Some((result, unwritten, disk_only)) = marked {
                        if let Err(e) = result {
                            tracing::warn!(error = %e, "cannot truncate the spend spool");
                        }
                        c.spooled.store(unwritten, Ordering::Relaxed);
                        spool.shared.disk_only.store(disk_only, Ordering::Relaxed);
                    }
                }
                buf.spend.clear();
                buf.spend_spooled = 0;
                load_from_spool(buf, sink).await;
            }
            Err(e) => {
                ok = false;
                c.failed_flushes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, rows = buf.spend.len(), "spend log flush failed; will retry");
                // With a spool, memory never holds more than `max_pending`: the rest
                // waits on disk instead of being dropped.
                if buf.spool.is_none() {
                    trim(&mut buf.spend, config.max_pending, c);
                }
            }
        }
    }
    if !buf.audit.is_empty() {
        match sink.store.insert_audit_batch(&buf.audit).await {
            Ok(()) => {
                c.audit_written
                    .fetch_add(buf.audit.len() as u64, Ordering::Relaxed);
                buf.audit.clear();
            }
            Err(e) => {
                ok = false;
                c.failed_flushes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, rows = buf.audit.len(), "audit log flush failed; will retry");
                trim(&mut buf.audit, config.max_pending, c);
            }
        }
    }
    buf.failing = !ok;
}

/// Drops the oldest rows beyond `max`, counting them.
fn trim<T>(rows: &mut Vec<T>, max: usize, c: &Counters) {
    if rows.len() > max {
        let excess = rows.len() - max;
        rows.drain(..excess);
        c.dropped.fetch_add(excess as u64, Ordering::Relaxed);
    }
}

fn costs_by_key(rows: &[SpendRow]) -> Vec<(String, f64)> {
    let mut by_key: HashMap<&str, f64> = HashMap::new();
    for r in rows.iter().filter(|r| r.cost != 0.0) {
        *by_key.entry(r.key_hash.as_str()).or_default() += r.cost;
    }
    let mut out: Vec<(String, f64)> = by_key
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    // A stable order keeps concurrent writers from deadlocking on row locks.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    //! The writer against a store whose spend inserts fail on demand (an outage).

    use std::sync::atomic::AtomicBool;

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use gatehouse_config::schema::VirtualKeyConfig;

    use super::*;
    use crate::{
        ConfigSyncReport, KeyChanges, KeyFilter, KeyPage, KeyRecord, KeyUpdate, LogFilter,
        StoreError,
    };

    #[derive(Debug, Default)]
    struct FlakyStore {
        down: AtomicBool,
        spend: Mutex<Vec<SpendRow>>,
        costs: Mutex<Vec<(String, f64)>>,
    }

    fn outage() -> StoreError {
        StoreError::Database(sqlx::Error::PoolTimedOut)
    }

    #[async_trait]
    impl crate::LogReader for FlakyStore {
        async fn spend_page(
            &self,
            _: &crate::SpendQuery,
        ) -> Result<crate::Page<SpendRow>, StoreError> {
            unimplemented!()
        }
        async fn audit_page(
            &self,
            _: &crate::AuditQuery,
        ) -> Result<crate::Page<AuditRow>, StoreError> {
            unimplemented!()
        }
        async fn spend_buckets(
            &self,
            _: DateTime<Utc>,
            _: u32,
        ) -> Result<Vec<crate::SpendBucket>, StoreError> {
            unimplemented!()
        }
    }

    #[async_trait]
    impl KeyStore for FlakyStore {
        fn backend(&self) -> &'static str {
            "flaky"
        }
        async fn schema_version(&self) -> Result<i64, StoreError> {
            Ok(0)
        }
        async fn insert(&self, _: &KeyRecord) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn upsert_config_keys(
            &self,
            _: &[VirtualKeyConfig],
        ) -> Result<ConfigSyncReport, StoreError> {
            unimplemented!()
        }
        async fn get_by_hash(&self, _: &str) -> Result<Option<KeyRecord>, StoreError> {
            unimplemented!()
        }
        async fn update(&self, _: &str, _: &KeyUpdate) -> Result<KeyRecord, StoreError> {
            unimplemented!()
        }
        async fn delete(&self, _: &str) -> Result<bool, StoreError> {
            unimplemented!()
        }
        async fn regenerate(&self, _: &str) -> Result<(String, KeyRecord), StoreError> {
            unimplemented!()
        }
        async fn list(&self, _: u32, _: u32, _: &KeyFilter) -> Result<KeyPage, StoreError> {
            unimplemented!()
        }
        async fn all_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
            unimplemented!()
        }
        async fn changes_since(&self, _: i64) -> Result<KeyChanges, StoreError> {
            unimplemented!()
        }
        async fn add_spend(&self, _: &str, _: f64) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn add_spend_many(&self, costs: &[(String, f64)]) -> Result<(), StoreError> {
            self.costs.lock().unwrap().extend_from_slice(costs);
            Ok(())
        }
        async fn reset_budgets(&self, _: DateTime<Utc>) -> Result<u64, StoreError> {
            unimplemented!()
        }
        async fn insert_spend_batch(&self, rows: &[SpendRow]) -> Result<(), StoreError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(outage());
            }
            self.spend.lock().unwrap().extend_from_slice(rows);
            Ok(())
        }
        async fn spend_logs(&self, _: &LogFilter) -> Result<Vec<SpendRow>, StoreError> {
            unimplemented!()
        }
        async fn insert_audit_batch(&self, _: &[AuditRow]) -> Result<(), StoreError> {
            Ok(())
        }
        async fn audit_logs(&self, _: &LogFilter) -> Result<Vec<AuditRow>, StoreError> {
            unimplemented!()
        }
        async fn close(&self) {}
    }

    fn row(i: usize, key: &str) -> SpendRow {
        SpendRow {
            request_id: format!("r{i}"),
            key_hash: key.into(),
            model: "m".into(),
            deployment: None,
            prompt_tokens: 1,
            completion_tokens: 1,
            cost: 0.5,
            latency_ms: 1,
            status: "success".into(),
            mcp_calls: serde_json::Value::Null,
            cache_hit: false,
            created_at: Utc::now(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_is_retried_on_the_tick_and_loses_nothing() {
        let store = Arc::new(FlakyStore::default());
        store.down.store(true, Ordering::SeqCst);
        let writer = SpendWriter::spawn(
            store.clone(),
            SpendWriterConfig {
                batch_size: 10,
                flush_interval: Duration::from_millis(100),
                ..Default::default()
            },
        );
        for i in 0..25 {
            assert!(writer.try_log(row(i, if i % 2 == 0 { "a" } else { "b" })));
        }
        tokio::time::sleep(Duration::from_millis(350)).await;
        let during = writer.stats();
        assert!(during.failed_flushes >= 1, "{during:?}");
        assert_eq!(during.spend_written, 0);
        assert!(store.spend.lock().unwrap().is_empty());

        store.down.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(writer.stats().spend_written, 25, "retried after recovery");
        writer.shutdown().await;
        assert_eq!(store.spend.lock().unwrap().len(), 25);
        assert_eq!(writer.dropped(), 0);
        // Costs were aggregated per key: 13 rows for "a", 12 for "b", at 0.5 each.
        let mut costs = store.costs.lock().unwrap().clone();
        costs.sort_by(|x, y| x.0.cmp(&y.0));
        let total_a: f64 = costs.iter().filter(|c| c.0 == "a").map(|c| c.1).sum();
        let total_b: f64 = costs.iter().filter(|c| c.0 == "b").map(|c| c.1).sum();
        assert_eq!((total_a, total_b), (6.5, 6.0));
    }

    #[tokio::test(start_paused = true)]
    async fn rows_beyond_max_pending_are_dropped_and_counted() {
        let store = Arc::new(FlakyStore::default());
        store.down.store(true, Ordering::SeqCst);
        let writer = SpendWriter::spawn(
            store.clone(),
            SpendWriterConfig {
                batch_size: 5,
                max_pending: 8,
                flush_interval: Duration::from_millis(50),
                ..Default::default()
            },
        );
        for i in 0..20 {
            writer.try_log(row(i, "a"));
        }
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(
            writer.dropped(),
            12,
            "oldest rows beyond max_pending go first"
        );
        // Still down at shutdown: what is pending is lost and counted.
        writer.shutdown().await;
        let s = writer.stats();
        assert_eq!(s.spend_written, 0);
        assert_eq!(s.dropped, 20, "{s:?}");
    }
}
