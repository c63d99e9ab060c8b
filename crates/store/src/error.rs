//! The store's error type. Messages never contain key material: callers pass hashes
//! or aliases, and database errors come from sqlx, which does not echo bound values.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    /// The URL is not one of `sqlite://PATH`, `sqlite::memory:`, `postgres://`, `postgresql://`.
    #[error("unsupported database url scheme (expected sqlite:// or postgres://): {0}")]
    UnsupportedUrl(String),
    /// Connecting or configuring the connection failed.
    #[error("cannot connect to the {backend} database: {source}")]
    Connect {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// A migration failed; nothing of it was applied (each runs in a transaction).
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The database already has migrations newer than this binary knows.
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    /// A query failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// No key with this hash.
    #[error("key not found")]
    NotFound,
    /// A key with this hash already exists.
    #[error("key already exists")]
    AlreadyExists,
    /// Input rejected before reaching the database (bad duration, date, number range).
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// A stored JSON column could not be decoded.
    #[error("corrupt {column} column for key {hash}: {source}")]
    Corrupt {
        column: &'static str,
        hash: String,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
