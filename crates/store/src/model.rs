//! The records the store reads and writes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a key came from. Config keys are re-upserted at every start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeySource {
    Config,
    Api,
    Import,
}

impl KeySource {
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::Config => "config",
            KeySource::Api => "api",
            KeySource::Import => "import",
        }
    }

    /// Unknown values (a newer build wrote them) read as `Api`: the most restrictive
    /// assumption, since config sync never touches API keys.
    pub fn parse(s: &str) -> KeySource {
        match s {
            "config" => KeySource::Config,
            "import" => KeySource::Import,
            _ => KeySource::Api,
        }
    }
}

/// One virtual key. Only the hash of the key is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// sha256 hex of the full key (LiteLLM's `token` column).
    pub token_hash: String,
    pub key_alias: Option<String>,
    /// `sk-...abcd`, for listings.
    pub key_prefix_display: String,
    /// Allowed model names; empty means all models.
    pub models: Vec<String>,
    /// Allowed MCP servers; `None` means all servers.
    pub mcp_servers: Option<Vec<String>>,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub budget_reset_at: Option<DateTime<Utc>>,
    pub spend: f64,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub max_parallel_requests: Option<u64>,
    pub expires_at: Option<DateTime<Utc>>,
    pub metadata: Value,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub blocked: bool,
    pub source: KeySource,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl KeyRecord {
    /// A fresh record for `key` with no limits; set fields before `insert`.
    /// Instants are truncated to milliseconds, the precision the store keeps.
    pub fn new(key: &str, source: KeySource, now: DateTime<Utc>) -> KeyRecord {
        let now = crate::time::from_ms(crate::time::to_ms(now));
        KeyRecord {
            token_hash: crate::hash_key(key),
            key_alias: None,
            key_prefix_display: crate::keygen::prefix_display(key),
            models: Vec::new(),
            mcp_servers: None,
            max_budget: None,
            budget_duration: None,
            budget_reset_at: None,
            spend: 0.0,
            rpm_limit: None,
            tpm_limit: None,
            max_parallel_requests: None,
            expires_at: None,
            metadata: Value::Object(Default::default()),
            user_id: None,
            team_id: None,
            blocked: false,
            source,
            created_at: now,
            updated_at: now,
        }
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    pub fn over_budget(&self) -> bool {
        self.max_budget.is_some_and(|b| self.spend >= b)
    }

    /// Not blocked, not expired, not over budget.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        !self.blocked && !self.is_expired(now) && !self.over_budget()
    }

    /// Whether `model` is allowed (empty list = all).
    pub fn allows_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|m| m == model || m == "*")
    }
}

/// A partial update. Outer `None` leaves a field alone; `Some(None)` clears a nullable one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyUpdate {
    pub key_alias: Option<Option<String>>,
    pub models: Option<Vec<String>>,
    pub mcp_servers: Option<Option<Vec<String>>>,
    pub max_budget: Option<Option<f64>>,
    /// Setting a duration also schedules the next reset (unless `budget_reset_at` is given).
    pub budget_duration: Option<Option<String>>,
    pub budget_reset_at: Option<Option<DateTime<Utc>>>,
    pub spend: Option<f64>,
    pub rpm_limit: Option<Option<u64>>,
    pub tpm_limit: Option<Option<u64>>,
    pub max_parallel_requests: Option<Option<u64>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub metadata: Option<Value>,
    pub user_id: Option<Option<String>>,
    pub team_id: Option<Option<String>>,
    pub blocked: Option<bool>,
}

/// Filters for `list`; all given filters must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KeyFilter {
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub key_alias: Option<String>,
    pub source: Option<KeySource>,
}

/// One page of keys, newest first (ties broken by hash, so pages are stable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyPage {
    pub keys: Vec<KeyRecord>,
    /// Number of keys matching the filter.
    pub total: u64,
    /// 1-based.
    pub page: u32,
    pub page_size: u32,
}

/// What changed since a watermark (for `KeyCache` refreshes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyChanges {
    pub upserted: Vec<KeyRecord>,
    /// Hashes of keys deleted (or regenerated away).
    pub deleted: Vec<String>,
    /// Highest `updated_at` / deletion time seen, in Unix ms (the next watermark).
    pub high_water_ms: i64,
}

/// Result of syncing config keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigSyncReport {
    /// Keys upserted from the config.
    pub upserted: usize,
    /// Keys with source "config" that are no longer in the config, as (hash, alias). They
    /// are kept (see `KeyStore::upsert_config_keys`); the caller should log them.
    pub orphaned: Vec<(String, Option<String>)>,
    /// Keys in the config that were blocked or deleted through the API: blocked ones were
    /// re-seeded still blocked, deleted ones not at all. The caller should log them.
    pub revoked: Vec<RevokedConfigKey>,
}

/// A config-declared key revoked through the API (see [`ConfigSyncReport::revoked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedConfigKey {
    pub token_hash: String,
    pub key_alias: Option<String>,
    pub revocation: Revocation,
}

/// How a config-declared key was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// `/key/block` or `/key/update {"blocked": true}`; undone by `/key/unblock`.
    Blocked,
    /// `/key/delete` or `/key/regenerate` (the old secret); undone by generating the same
    /// key again with `/key/generate`.
    Deleted,
}

impl Revocation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::Deleted => "deleted",
        }
    }

    /// Unknown values read as `Deleted`: the stricter revocation.
    pub fn parse(s: &str) -> Self {
        if s == "blocked" {
            Self::Blocked
        } else {
            Self::Deleted
        }
    }
}

/// One LLM request's usage, written off the request path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendRow {
    pub request_id: String,
    pub key_hash: String,
    pub model: String,
    pub deployment: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: f64,
    pub latency_ms: u64,
    /// e.g. "success", "error", "cancelled".
    pub status: String,
    /// MCP tool calls made while serving the request (JSON array), or null.
    pub mcp_calls: Value,
    /// Served from the response cache (no upstream call, $0).
    #[serde(default)]
    pub cache_hit: bool,
    pub created_at: DateTime<Utc>,
}

/// One MCP tool execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Hash of the key that made the call.
    pub key_hash: String,
    pub request_id: Option<String>,
    pub server: String,
    pub tool: String,
    pub duration_ms: u64,
    /// e.g. "ok", "error", "timeout", "denied".
    pub outcome: String,
    pub args_size: u64,
    pub result_size: u64,
    pub created_at: DateTime<Utc>,
}

/// Filter for spend and audit reads. Newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogFilter {
    pub key_hash: Option<String>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
}

impl Default for LogFilter {
    fn default() -> Self {
        LogFilter {
            key_hash: None,
            from: None,
            to: None,
            limit: 100,
        }
    }
}
