//! The spool's own thread. With a spool, spend rows leave the request path through a
//! bounded channel (a `try_send`: no lock, no file I/O there) and this thread appends
//! them to the spool file, every row waiting at each wake-up in one write, then puts the
//! ones the memory window takes into the `Intake` for the flusher. It keeps going while
//! the flusher waits on a slow or absent database, so rows reach the disk within
//! microseconds of being logged whatever the database does. It also runs the periodic
//! adoption pass (dead replicas' spools, a capped amount each time).
//!
//! The flusher's own file work (marking rows written, loading disk-only rows) runs on
//! blocking tasks against the same `Spool`; the intake's lock is never held across file
//! I/O. The thread ends when every sender is gone (the writer and its task dropped).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::SpendRow;
use crate::spool::{AdoptCap, Spool};
use crate::writer::Counters;

/// How often the thread looks for dead replicas' spools to adopt.
const ADOPT_EVERY: Duration = Duration::from_secs(1);
/// Most rows taken off the channel per write.
const BATCH: usize = 4096;

// Nearly every message is a row: boxing them would add an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Msg {
    Row(SpendRow),
    /// Everything sent before this is appended (and in the intake): say so.
    Sync(oneshot::Sender<()>),
}

/// Rows the spool thread hands to the flusher.
#[derive(Debug, Default)]
pub(crate) struct Intake {
    /// Lines of the spool's memory window, in line order.
    pub spooled: Vec<SpendRow>,
    /// Rows the spool could not take (appending failed): memory only.
    pub unspooled: Vec<SpendRow>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub spool: Mutex<Spool>,
    pub intake: Mutex<Intake>,
    /// The spool's `disk_only()` as last seen: lets the flusher skip the spool's lock
    /// when there is nothing to load.
    pub disk_only: AtomicU64,
}

impl Shared {
    /// Publishes the spool's counts after a change.
    pub fn publish(&self, spool: &Spool, counters: &Counters) {
        counters.spooled.store(spool.unwritten(), Ordering::Relaxed);
        self.disk_only.store(spool.disk_only(), Ordering::Relaxed);
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Limits the thread enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Most unwritten rows in the spool; newer rows beyond it are dropped and counted.
    pub max_spool_rows: u64,
    /// Most rows of the intake's `unspooled`.
    pub max_pending: usize,
}

/// Starts the thread; returns the sender the request path uses.
pub(crate) fn start(
    shared: Arc<Shared>,
    counters: Arc<Counters>,
    capacity: usize,
    limits: Limits,
) -> std::io::Result<SyncSender<Msg>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(capacity.max(1));
    std::thread::Builder::new()
        .name("gatehouse-spool".into())
        .spawn(move || run(&shared, &rx, &counters, limits))?;
    Ok(tx)
}

fn run(shared: &Shared, rx: &Receiver<Msg>, counters: &Counters, limits: Limits) {
    let mut rows = Vec::new();
    let mut synced = Vec::new();
    let mut failing = false;
    let mut next_adopt = Instant::now() + ADOPT_EVERY;
    loop {
        let first = match rx.recv_timeout(next_adopt.saturating_duration_since(Instant::now())) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let more = std::iter::from_fn(|| rx.try_recv().ok()).take(BATCH);
        for m in first.into_iter().chain(more) {
            match m {
                Msg::Row(r) => rows.push(r),
                Msg::Sync(done) => synced.push(done),
            }
        }
        if !rows.is_empty() {
            append(shared, &mut rows, counters, limits, &mut failing);
        }
        for done in synced.drain(..) {
            let _ = done.send(());
        }
        if Instant::now() >= next_adopt {
            adopt(shared, counters, limits);
            next_adopt = Instant::now() + ADOPT_EVERY;
        }
    }
}

fn append(
    shared: &Shared,
    rows: &mut Vec<SpendRow>,
    counters: &Counters,
    limits: Limits,
    failing: &mut bool,
) {
    let mut spool = lock(&shared.spool);
    let room = if spool.is_closed() {
        0 // the writer stopped
    } else {
        limits.max_spool_rows.saturating_sub(spool.unwritten()) as usize
    };
    if rows.len() > room {
        counters
            .dropped
            .fetch_add((rows.len() - room) as u64, Ordering::Relaxed);
        rows.truncate(room);
    }
    match spool.append(rows) {
        Ok(accepted) => {
            if std::mem::take(failing) {
                tracing::info!("the spend spool accepts rows again");
            }
            lock(&shared.intake).spooled.extend(rows.drain(..accepted));
            rows.clear(); // the rest are on disk only
        }
        Err(e) => {
            if !std::mem::replace(failing, true) {
                tracing::error!(error = %e, "cannot append to the spend spool; rows are kept in memory only until it works again");
            }
            let mut intake = lock(&shared.intake);
            let room = limits.max_pending.saturating_sub(intake.unspooled.len());
            let excess = rows.len().saturating_sub(room);
            counters.dropped.fetch_add(excess as u64, Ordering::Relaxed);
            rows.truncate(room);
            intake.unspooled.append(rows);
        }
    }
    shared.publish(&spool, counters);
}

/// One adoption pass, once this spool has no backlog of its own on disk.
fn adopt(shared: &Shared, counters: &Counters, limits: Limits) {
    let mut spool = lock(&shared.spool);
    if spool.is_closed() || spool.disk_only() > 0 {
        return;
    }
    let cap = AdoptCap::default();
    let cap = AdoptCap {
        lines: cap
            .lines
            .min(limits.max_spool_rows.saturating_sub(spool.unwritten())),
        ..cap
    };
    if cap.lines == 0 {
        return;
    }
    match spool.adopt(cap) {
        Ok(0) => {}
        Ok(n) => {
            counters.adopted.fetch_add(n, Ordering::Relaxed);
            shared.publish(&spool, counters);
        }
        Err(e) => {
            tracing::warn!(error = %e, "adopting another replica's spend spool failed; will retry")
        }
    }
}
