//! The `KeyStore` trait: every persistence operation, implemented by both backends.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_config::schema::VirtualKeyConfig;

use crate::{
    AuditRow, ConfigSyncReport, KeyChanges, KeyFilter, KeyPage, KeyRecord, KeyUpdate, LogFilter,
    SpendRow, StoreError,
};

/// Keys, spend logs and audit rows. Nothing here belongs on a request's hot path: the
/// server reads keys through `KeyCache` and writes logs through `SpendWriter`. The
/// operators' paged listings are the `LogReader` supertrait.
#[async_trait]
pub trait KeyStore: crate::LogReader + Send + Sync + std::fmt::Debug {
    /// `"sqlite"` or `"postgres"`.
    fn backend(&self) -> &'static str;

    /// Highest applied migration.
    async fn schema_version(&self) -> Result<i64, StoreError>;

    /// Adds a key; `AlreadyExists` if its hash is taken.
    async fn insert(&self, key: &KeyRecord) -> Result<(), StoreError>;

    /// Adds many keys (an import); returns the hashes that were taken already (those
    /// keys are left as they are). The SQL stores write a chunk per transaction.
    async fn insert_many(&self, keys: &[KeyRecord]) -> Result<Vec<String>, StoreError> {
        let mut taken = Vec::new();
        for key in keys {
            match self.insert(key).await {
                Ok(()) => {}
                Err(StoreError::AlreadyExists) => taken.push(key.token_hash.clone()),
                Err(e) => return Err(e),
            }
        }
        Ok(taken)
    }

    /// Upserts the `virtual_keys:` of config.yaml by hash, in one transaction.
    ///
    /// Config owns these keys' settings (alias, models, limits, blocked, expiry, ...);
    /// spend, creation time and a scheduled budget reset are kept. Keys that were in the
    /// config before but are not now are **not deleted** and keep source "config":
    /// deleting would lose their spend history and revoke clients over a config typo, and
    /// an operator can block or delete them explicitly. They are returned in
    /// `ConfigSyncReport::orphaned` so start-up can warn about them.
    async fn upsert_config_keys(
        &self,
        keys: &[VirtualKeyConfig],
    ) -> Result<ConfigSyncReport, StoreError>;

    async fn get_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>, StoreError>;

    /// Changes only the fields set in `update`, atomically; `NotFound` if absent.
    async fn update(&self, hash: &str, update: &KeyUpdate) -> Result<KeyRecord, StoreError>;

    /// Removes a key; `false` if it did not exist.
    async fn delete(&self, hash: &str) -> Result<bool, StoreError>;

    /// Replaces a key's secret, keeping its settings and spend. Returns the new plaintext
    /// key (shown once) and the new record; the old hash stops working.
    async fn regenerate(&self, old_hash: &str) -> Result<(String, KeyRecord), StoreError>;

    /// One page (1-based, at most 1000 per page) of keys, newest first.
    async fn list(
        &self,
        page: u32,
        page_size: u32,
        filter: &KeyFilter,
    ) -> Result<KeyPage, StoreError>;

    /// Every key (for loading the cache).
    async fn all_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;

    /// Keys updated and hashes deleted at or after `watermark_ms` (Unix ms).
    async fn changes_since(&self, watermark_ms: i64) -> Result<KeyChanges, StoreError>;

    /// Adds `cost` to a key's spend atomically; `NotFound` if absent.
    async fn add_spend(&self, hash: &str, cost: f64) -> Result<(), StoreError>;

    /// `add_spend` for many keys in one transaction; missing keys are skipped.
    async fn add_spend_many(&self, costs: &[(String, f64)]) -> Result<(), StoreError>;

    /// Zeroes the spend of keys whose `budget_reset_at` is due and schedules the next
    /// reset from `budget_duration`. Safe to run on several replicas. Returns keys reset.
    async fn reset_budgets(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Inserts spend rows in one transaction (multi-row inserts).
    async fn insert_spend_batch(&self, rows: &[SpendRow]) -> Result<(), StoreError>;

    /// Spend rows, newest first.
    async fn spend_logs(&self, filter: &LogFilter) -> Result<Vec<SpendRow>, StoreError>;

    /// Inserts MCP audit rows in one transaction.
    async fn insert_audit_batch(&self, rows: &[AuditRow]) -> Result<(), StoreError>;

    /// Audit rows, newest first.
    async fn audit_logs(&self, filter: &LogFilter) -> Result<Vec<AuditRow>, StoreError>;

    /// A listener for other replicas' key changes, where the backend can tell (Postgres
    /// `LISTEN/NOTIFY`); `None` where only the periodic refresh applies.
    async fn key_change_listener(&self) -> Result<Option<crate::KeyChangeListener>, StoreError> {
        Ok(None)
    }

    /// Closes the connection pool (waits for connections in use to return).
    async fn close(&self);
}
