//! Key change signals between replicas: a `LISTEN` on the channel that the key table's
//! trigger notifies (migration 5). Only Postgres has one; SQLite serves one process.

use sqlx::postgres::{PgListener, PgPool};

use crate::StoreError;
use crate::migrations::KEY_CHANNEL;

/// What the listener saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySignal {
    /// Some key row changed (on any replica, this one included).
    Changed,
    /// The connection dropped and was re-established: notifications sent meanwhile are
    /// lost, so the caller must re-read as if something changed.
    Reconnected,
}

/// Holds one connection of the store's pool for as long as it lives.
#[derive(Debug)]
pub struct KeyChangeListener {
    inner: PgListener,
}

impl KeyChangeListener {
    pub(crate) async fn connect(pool: &PgPool) -> Result<Self, StoreError> {
        let mut inner = PgListener::connect_with(pool).await?;
        inner.listen(KEY_CHANNEL).await?;
        Ok(KeyChangeListener { inner })
    }

    /// Waits for the next signal. An error means the listener is broken: drop it and
    /// connect a new one after a pause.
    pub async fn next(&mut self) -> Result<KeySignal, StoreError> {
        match self.inner.try_recv().await? {
            Some(_) => Ok(KeySignal::Changed),
            None => Ok(KeySignal::Reconnected),
        }
    }

    /// Takes notifications already received without waiting; how many there were.
    pub fn drain_buffered(&mut self) -> usize {
        std::iter::from_fn(|| self.inner.next_buffered()).count()
    }
}
