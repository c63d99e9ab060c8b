//! Backend-independent SQL text and value encoding shared by both backends.

use serde_json::Value;

use crate::time::{opt_to_ms, to_ms};
use crate::{KeyRecord, StoreError};

pub(crate) const KEY_COLS: &str = "token_hash, key_alias, key_prefix_display, models, \
    mcp_servers, max_budget, budget_duration, budget_reset_at, spend, rpm_limit, tpm_limit, \
    max_parallel_requests, expires_at, metadata, user_id, team_id, blocked, source, \
    created_at, updated_at";

pub(crate) const KEY_PLACEHOLDERS: &str = "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
    $12, $13, $14, $15, $16, $17, $18, $19, $20";

/// Config-owned columns overwritten when a config key is upserted. Spend, creation time
/// and a pending budget reset survive (the reset is recomputed only when the duration
/// changed or none was scheduled).
pub(crate) const CONFIG_UPSERT_SET: &str = "key_alias = excluded.key_alias, \
    key_prefix_display = excluded.key_prefix_display, models = excluded.models, \
    mcp_servers = excluded.mcp_servers, max_budget = excluded.max_budget, \
    budget_reset_at = CASE WHEN gatehouse_keys.budget_duration IS NOT DISTINCT FROM \
        excluded.budget_duration AND gatehouse_keys.budget_reset_at IS NOT NULL \
        THEN gatehouse_keys.budget_reset_at ELSE excluded.budget_reset_at END, \
    budget_duration = excluded.budget_duration, rpm_limit = excluded.rpm_limit, \
    tpm_limit = excluded.tpm_limit, max_parallel_requests = excluded.max_parallel_requests, \
    expires_at = excluded.expires_at, metadata = excluded.metadata, \
    user_id = excluded.user_id, team_id = excluded.team_id, blocked = excluded.blocked, \
    source = excluded.source, updated_at = excluded.updated_at";

/// Copies a key under a new hash; `$1` new hash, `$2` new display, `$3` now, `$4` old hash.
/// A regenerated config key becomes an API key: the new secret is not in the config.
pub(crate) const REGENERATE_COPY: &str = "INSERT INTO gatehouse_keys (token_hash, key_alias, \
    key_prefix_display, models, mcp_servers, max_budget, budget_duration, budget_reset_at, \
    spend, rpm_limit, tpm_limit, max_parallel_requests, expires_at, metadata, user_id, team_id, \
    blocked, source, created_at, updated_at) \
    SELECT $1, key_alias, $2, models, mcp_servers, max_budget, budget_duration, \
    budget_reset_at, spend, rpm_limit, tpm_limit, max_parallel_requests, expires_at, metadata, \
    user_id, team_id, blocked, CASE WHEN source = 'config' THEN 'api' ELSE source END, \
    created_at, $3 FROM gatehouse_keys WHERE token_hash = $4";

pub(crate) const TOMBSTONE_UPSERT: &str = "INSERT INTO gatehouse_key_tombstones \
    (token_hash, deleted_at) VALUES ($1, $2) \
    ON CONFLICT (token_hash) DO UPDATE SET deleted_at = excluded.deleted_at";

/// Records that a config-declared key was revoked; `$1` hash, `$2` alias, `$3` kind,
/// `$4` now. A delete after a block overwrites it (the stricter revocation wins).
pub(crate) const REVOCATION_UPSERT: &str = "INSERT INTO gatehouse_key_revocations \
    (token_hash, key_alias, kind, revoked_at) VALUES ($1, $2, $3, $4) \
    ON CONFLICT (token_hash) DO UPDATE SET key_alias = excluded.key_alias, \
    kind = excluded.kind, revoked_at = excluded.revoked_at";

/// Tombstones only need to outlive the slowest replica's refresh; a week is generous.
pub(crate) const TOMBSTONE_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// Rows per multi-row INSERT: 11 binds per spend row stays far below both backends'
/// bind-parameter limits (SQLite 32766, Postgres 65535).
pub(crate) const LOG_CHUNK: usize = 500;

/// A key record in column form, ready to bind in `KEY_COLS` order.
pub(crate) struct EncodedKey {
    pub token_hash: String,
    pub key_alias: Option<String>,
    pub key_prefix_display: String,
    pub models: String,
    pub mcp_servers: Option<String>,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<i64>,
    pub spend: f64,
    pub rpm_limit: Option<i64>,
    pub tpm_limit: Option<i64>,
    pub max_parallel_requests: Option<i64>,
    pub expires_at: Option<i64>,
    pub metadata: String,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub blocked: bool,
    pub source: &'static str,
    pub created_at: i64,
    pub updated_at: i64,
}

impl EncodedKey {
    pub fn new(r: &KeyRecord) -> Result<EncodedKey, StoreError> {
        Ok(EncodedKey {
            token_hash: r.token_hash.clone(),
            key_alias: r.key_alias.clone(),
            key_prefix_display: r.key_prefix_display.clone(),
            models: json_text(&r.models)?,
            mcp_servers: r.mcp_servers.as_ref().map(json_text).transpose()?,
            max_budget: r.max_budget,
            budget_duration: r.budget_duration.clone(),
            budget_reset_at: opt_to_ms(r.budget_reset_at),
            spend: r.spend,
            rpm_limit: opt_i64("rpm_limit", r.rpm_limit)?,
            tpm_limit: opt_i64("tpm_limit", r.tpm_limit)?,
            max_parallel_requests: opt_i64("max_parallel_requests", r.max_parallel_requests)?,
            expires_at: opt_to_ms(r.expires_at),
            metadata: json_text(&r.metadata)?,
            user_id: r.user_id.clone(),
            team_id: r.team_id.clone(),
            blocked: r.blocked,
            source: r.source.as_str(),
            created_at: to_ms(r.created_at),
            updated_at: to_ms(r.updated_at),
        })
    }
}

pub(crate) fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::invalid("json", e.to_string()))
}

pub(crate) fn opt_i64(field: &str, v: Option<u64>) -> Result<Option<i64>, StoreError> {
    v.map(|n| i64::try_from(n).map_err(|_| StoreError::invalid(field, "too large")))
        .transpose()
}

pub(crate) fn to_i64(field: &str, v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::invalid(field, "too large"))
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    column: &'static str,
    hash: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt {
        column,
        hash: hash.to_string(),
        source,
    })
}

pub(crate) fn parse_opt_json(
    column: &'static str,
    id: &str,
    text: Option<String>,
) -> Result<Value, StoreError> {
    match text {
        Some(t) => parse_json(column, id, &t),
        None => Ok(Value::Null),
    }
}

pub(crate) fn now_ms() -> i64 {
    to_ms(chrono::Utc::now())
}

/// Advisory lock ids of scheduled jobs (Postgres): `"gh-budgt"` in ASCII. Far from the
/// migration lock's id; operators' own advisory locks are unlikely to collide.
pub const BUDGET_RESET_JOB: i64 = 0x6768_2d62_7564_6774;
