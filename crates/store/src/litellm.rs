//! Importing keys exported from LiteLLM's `LiteLLM_VerificationToken` table.
//!
//! LiteLLM stores `sha256(key)` hex in `token`, the same hash as `hash_key`, so imported
//! keys keep working for their clients. Accepts one JSON object per row, e.g. from
//! `SELECT row_to_json(t) FROM "LiteLLM_VerificationToken" t`.
//! Not carried over: LiteLLM's MCP/object permissions (a separate table; imported keys
//! allow every MCP server), aliases, per-model budgets, and team/org membership rules.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::time::parse_instant;
use crate::{KeyRecord, KeySource, KeyStore, StoreError, hash_key, keygen::prefix_display};

/// Outcome of `import_litellm`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub imported: usize,
    /// Hashes that already existed (left untouched).
    pub skipped_existing: Vec<String>,
}

/// Inserts every row as a key with source "import"; existing hashes are skipped.
/// A malformed row aborts with an error naming its index (rows before it stay imported).
pub async fn import_litellm(
    store: &dyn KeyStore,
    rows: &[Value],
) -> Result<ImportReport, StoreError> {
    let now = Utc::now();
    let mut records = Vec::with_capacity(rows.len());
    let mut malformed = None;
    for (i, row) in rows.iter().enumerate() {
        match record_from_litellm(row, now) {
            Ok(rec) => records.push(rec),
            Err(e) => {
                malformed = Some(match e {
                    StoreError::Invalid { field, reason } => StoreError::Invalid {
                        field: format!("row {i}: {field}"),
                        reason,
                    },
                    other => other,
                });
                break;
            }
        }
    }
    let skipped_existing = store.insert_many(&records).await?;
    if let Some(e) = malformed {
        return Err(e);
    }
    Ok(ImportReport {
        imported: records.len() - skipped_existing.len(),
        skipped_existing,
    })
}

/// One exported row as a key record (source "import").
pub fn record_from_litellm(row: &Value, now: DateTime<Utc>) -> Result<KeyRecord, StoreError> {
    let obj = row
        .as_object()
        .ok_or_else(|| StoreError::invalid("row", "is not a JSON object"))?;
    let token = str_field(obj, "token").ok_or_else(|| StoreError::invalid("token", "missing"))?;
    let (token_hash, display) = if is_sha256_hex(token) {
        let display = str_field(obj, "key_name")
            .map(str::to_string)
            .unwrap_or_else(|| format!("...{}", &token[token.len() - 4..]));
        (token.to_ascii_lowercase(), display)
    } else if token.starts_with("sk-") {
        // Some exports (and old LiteLLM versions) hold the plaintext key.
        (hash_key(token), prefix_display(token))
    } else {
        return Err(StoreError::invalid(
            "token",
            "is neither a sha256 hex hash nor an sk- key",
        ));
    };
    let mut rec = KeyRecord::new("", KeySource::Import, now);
    rec.token_hash = token_hash;
    rec.key_prefix_display = display;
    rec.key_alias = str_field(obj, "key_alias").map(str::to_string);
    rec.models = match obj.get("models") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|m| m.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    rec.spend = num_field(obj, "spend")?.unwrap_or(0.0);
    rec.max_budget = num_field(obj, "max_budget")?;
    rec.budget_duration = str_field(obj, "budget_duration").map(str::to_string);
    rec.budget_reset_at = time_field(obj, "budget_reset_at")?;
    rec.rpm_limit = count_field(obj, "rpm_limit")?;
    rec.tpm_limit = count_field(obj, "tpm_limit")?;
    rec.max_parallel_requests = count_field(obj, "max_parallel_requests")?;
    rec.expires_at = time_field(obj, "expires")?;
    rec.metadata = match obj.get("metadata") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        // Exports through text columns carry the JSON as a string.
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|e| StoreError::invalid("metadata", e.to_string()))?
        }
        _ => Value::Object(Map::new()),
    };
    rec.user_id = str_field(obj, "user_id").map(str::to_string);
    rec.team_id = str_field(obj, "team_id").map(str::to_string);
    rec.blocked = obj.get("blocked").and_then(Value::as_bool).unwrap_or(false);
    if let Some(t) = time_field(obj, "created_at")? {
        rec.created_at = t;
    }
    rec.updated_at = now;
    Ok(rec)
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn str_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    obj.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Numbers may arrive as JSON numbers or as decimal strings (Prisma's BigDecimal).
fn num_field(obj: &Map<String, Value>, name: &str) -> Result<Option<f64>, StoreError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| StoreError::invalid(name, format!("{s:?} is not a number"))),
        Some(other) => Err(StoreError::invalid(name, format!("unexpected {other}"))),
    }
}

fn count_field(obj: &Map<String, Value>, name: &str) -> Result<Option<u64>, StoreError> {
    match num_field(obj, name)? {
        None => Ok(None),
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= 9.0e15 => Ok(Some(n as u64)),
        Some(n) => Err(StoreError::invalid(
            name,
            format!("{n} is not a non-negative integer"),
        )),
    }
}

fn time_field(obj: &Map<String, Value>, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    match str_field(obj, name) {
        Some(s) => parse_instant(name, s).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_a_litellm_row() {
        let now = parse_instant("t", "2026-01-01").unwrap();
        let row = json!({
            "token": hash_key("sk-legacy"),
            "key_name": "sk-...gacy",
            "key_alias": "legacy",
            "spend": "1.5",
            "max_budget": 20,
            "expires": "2027-01-01T00:00:00",
            "models": ["gpt-4o", 3],
            "user_id": "u", "team_id": null,
            "max_parallel_requests": 2, "tpm_limit": 1000, "rpm_limit": null,
            "metadata": "{\"a\":1}",
            "blocked": null,
            "budget_duration": "30d",
            "budget_reset_at": "2026-02-01 00:00:00.000",
            "created_at": "2025-06-01T10:00:00.000Z"
        });
        let r = record_from_litellm(&row, now).unwrap();
        assert_eq!(r.token_hash, hash_key("sk-legacy"));
        assert_eq!(r.key_prefix_display, "sk-...gacy");
        assert_eq!(r.spend, 1.5);
        assert_eq!(r.max_budget, Some(20.0));
        assert_eq!(r.models, vec!["gpt-4o"]);
        assert_eq!(
            (r.max_parallel_requests, r.tpm_limit, r.rpm_limit),
            (Some(2), Some(1000), None)
        );
        assert_eq!(r.metadata, json!({"a": 1}));
        assert_eq!(
            r.expires_at,
            Some(parse_instant("t", "2027-01-01").unwrap())
        );
        assert_eq!(
            r.created_at,
            parse_instant("t", "2025-06-01T10:00:00Z").unwrap()
        );
        assert_eq!(r.source, KeySource::Import);
        assert!(!r.blocked);
    }

    #[test]
    fn plaintext_tokens_are_hashed_and_junk_rejected() {
        let now = Utc::now();
        let r = record_from_litellm(&json!({"token": "sk-plain-1234"}), now).unwrap();
        assert_eq!(r.token_hash, hash_key("sk-plain-1234"));
        assert_eq!(r.key_prefix_display, "sk-...1234");
        assert!(record_from_litellm(&json!({"token": "nope"}), now).is_err());
        assert!(record_from_litellm(&json!({"key_alias": "x"}), now).is_err());
        assert!(record_from_litellm(&json!({"token": "sk-a", "rpm_limit": -1}), now).is_err());
    }
}
