//! Gatehouse persistence: virtual keys, spend logs and MCP audit rows, on SQLite (the
//! embedded default) or Postgres (for several replicas), behind one `KeyStore` trait.
//!
//! - `open(url)` picks the backend from the URL and applies migrations.
//! - `KeyCache` serves keys from memory on the request path and refreshes from the store.
//! - `SpendWriter` batches spend and audit rows off the request path.
//!
//! Instants are stored as BIGINT Unix milliseconds and JSON as TEXT, so both backends run
//! the same SQL (`sql_common.rs`).

mod cache;
mod config_keys;
mod error;
mod keygen;
mod listing;
mod litellm;
mod migrations;
mod model;
mod notify;
mod postgres;
mod queries;
mod spool;
mod spooler;
mod sqlite;
mod store;
mod time;
mod writer;

use std::sync::Arc;
use std::time::Duration;

pub use cache::{CacheActivity, KeyCache, RefreshHandle};
pub use error::StoreError;
pub use keygen::{generate_key, hash_key, prefix_display};
pub use listing::{
    AuditQuery, Cursor, LogReader, MAX_PAGE, Page, SpendBucket, SpendQuery, StatusFilter,
};
pub use litellm::{ImportReport, import_litellm, record_from_litellm};
pub use model::{
    AuditRow, ConfigSyncReport, KeyChanges, KeyFilter, KeyPage, KeyRecord, KeySource, KeyUpdate,
    LogFilter, Revocation, RevokedConfigKey, SpendRow,
};
pub use notify::{KeyChangeListener, KeySignal};
pub use postgres::PostgresStore;
pub use queries::BUDGET_RESET_JOB;
pub use sqlite::SqliteStore;
pub use store::KeyStore;
pub use time::{add_budget_duration, parse_instant};
pub use writer::{SpendWriter, SpendWriterConfig, WriterStats};

/// Connection settings; the defaults suit one gateway process.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Pool size (SQLite in-memory databases always use one connection).
    pub max_connections: u32,
    /// How long to wait for a free pooled connection.
    pub acquire_timeout: Duration,
    /// How long SQLite waits on a locked database before failing.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A SQLite file in the current directory (the binary itself uses the config's directory
/// or the user's data directory instead; see `gatehouse::persistence::database_url`).
pub const DEFAULT_SQLITE_URL: &str = "sqlite://gatehouse.db";

/// Opens the store for `url` with default options: `sqlite://PATH`, `sqlite::memory:`,
/// `postgres://...` or `postgresql://...`. Migrations run before this returns.
pub async fn open(url: &str) -> Result<Arc<dyn KeyStore>, StoreError> {
    open_with(url, &StoreOptions::default()).await
}

/// `open` with explicit pool settings.
pub async fn open_with(url: &str, opts: &StoreOptions) -> Result<Arc<dyn KeyStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, opts).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url, opts).await?))
    } else {
        // Only the scheme: the rest of a URL may carry a password.
        let scheme = url.split(':').next().unwrap_or_default();
        Err(StoreError::UnsupportedUrl(format!("{scheme}:...")))
    }
}

/// The public futures must be `Send` so callers can `tokio::spawn` them (sqlx's
/// higher-ranked executor bounds make that easy to lose by accident).
#[cfg(test)]
mod send_checks {
    use super::*;

    fn assert_send<T: Send>(_: T) {}

    #[allow(dead_code)]
    fn public_futures_are_send(cache: &KeyCache, writer: &SpendWriter, opts: &StoreOptions) {
        assert_send(open("sqlite::memory:"));
        assert_send(open_with("sqlite::memory:", opts));
        assert_send(SqliteStore::connect("sqlite::memory:", opts));
        assert_send(PostgresStore::connect("postgres://h/db", opts));
        assert_send(cache.refresh());
        assert_send(cache.update("h", &KeyUpdate::default()));
        assert_send(cache.delete("h"));
        assert_send(writer.shutdown());
    }
}
