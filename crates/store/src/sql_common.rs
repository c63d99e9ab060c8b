// The `KeyStore` implementation shared by the SQLite and Postgres backends.
//
// This file is `include!`d by `sqlite.rs` and `postgres.rs`, each of which defines
// `Db` (the sqlx database type), `Store` (its store struct with a `pool` field) and
// `begin_write` (how that backend opens a write transaction). The SQL is written once
// with `$N` placeholders, which both drivers accept.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gatehouse_config::schema::VirtualKeyConfig;
use sqlx::{Database, QueryBuilder, Row};

use crate::queries::{
    CONFIG_UPSERT_SET, EncodedKey, KEY_COLS, KEY_PLACEHOLDERS, LOG_CHUNK, REGENERATE_COPY,
    REVOCATION_UPSERT, TOMBSTONE_TTL_MS, TOMBSTONE_UPSERT, json_text, now_ms, opt_i64, parse_json, parse_opt_json,
    to_i64, to_u64,
};
use crate::time::{add_budget_duration, from_ms, opt_from_ms, to_ms};
use crate::{
    AuditRow, ConfigSyncReport, KeyChanges, KeyFilter, KeyPage, KeyRecord, KeySource, KeyStore,
    KeyUpdate, LogFilter, Revocation, RevokedConfigKey, SpendRow, StoreError,
};

type DbRow = <Db as Database>::Row;
type DbQuery<'q> = sqlx::query::Query<'q, Db, <Db as Database>::Arguments<'q>>;

fn bind_key(q: DbQuery<'_>, e: EncodedKey) -> DbQuery<'_> {
    q.bind(e.token_hash)
        .bind(e.key_alias)
        .bind(e.key_prefix_display)
        .bind(e.models)
        .bind(e.mcp_servers)
        .bind(e.max_budget)
        .bind(e.budget_duration)
        .bind(e.budget_reset_at)
        .bind(e.spend)
        .bind(e.rpm_limit)
        .bind(e.tpm_limit)
        .bind(e.max_parallel_requests)
        .bind(e.expires_at)
        .bind(e.metadata)
        .bind(e.user_id)
        .bind(e.team_id)
        .bind(e.blocked)
        .bind(e.source)
        .bind(e.created_at)
        .bind(e.updated_at)
}

fn key_from_row(row: &DbRow) -> Result<KeyRecord, StoreError> {
    let hash: String = row.try_get("token_hash")?;
    let models: String = row.try_get("models")?;
    let mcp: Option<String> = row.try_get("mcp_servers")?;
    let metadata: String = row.try_get("metadata")?;
    let source: String = row.try_get("source")?;
    let u = |v: Option<i64>| v.map(to_u64);
    Ok(KeyRecord {
        key_alias: row.try_get("key_alias")?,
        key_prefix_display: row.try_get("key_prefix_display")?,
        models: parse_json("models", &hash, &models)?,
        mcp_servers: mcp
            .map(|m| parse_json("mcp_servers", &hash, &m))
            .transpose()?,
        max_budget: row.try_get("max_budget")?,
        budget_duration: row.try_get("budget_duration")?,
        budget_reset_at: opt_from_ms(row.try_get("budget_reset_at")?),
        spend: row.try_get("spend")?,
        rpm_limit: u(row.try_get("rpm_limit")?),
        tpm_limit: u(row.try_get("tpm_limit")?),
        max_parallel_requests: u(row.try_get("max_parallel_requests")?),
        expires_at: opt_from_ms(row.try_get("expires_at")?),
        metadata: parse_json("metadata", &hash, &metadata)?,
        user_id: row.try_get("user_id")?,
        team_id: row.try_get("team_id")?,
        blocked: row.try_get("blocked")?,
        source: KeySource::parse(&source),
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
        token_hash: hash,
    })
}

fn spend_from_row(row: &DbRow) -> Result<SpendRow, StoreError> {
    let request_id: String = row.try_get("request_id")?;
    let mcp: Option<String> = row.try_get("mcp_calls")?;
    Ok(SpendRow {
        key_hash: row.try_get("key_hash")?,
        model: row.try_get("model")?,
        deployment: row.try_get("deployment")?,
        prompt_tokens: to_u64(row.try_get("prompt_tokens")?),
        completion_tokens: to_u64(row.try_get("completion_tokens")?),
        cost: row.try_get("cost")?,
        latency_ms: to_u64(row.try_get("latency_ms")?),
        status: row.try_get("status")?,
        mcp_calls: parse_opt_json("mcp_calls", &request_id, mcp)?,
        cache_hit: row.try_get("cache_hit")?,
        created_at: from_ms(row.try_get("created_at")?),
        request_id,
    })
}

fn audit_from_row(row: &DbRow) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        key_hash: row.try_get("key_hash")?,
        request_id: row.try_get("request_id")?,
        server: row.try_get("server")?,
        tool: row.try_get("tool")?,
        duration_ms: to_u64(row.try_get("duration_ms")?),
        outcome: row.try_get("outcome")?,
        args_size: to_u64(row.try_get("args_size")?),
        result_size: to_u64(row.try_get("result_size")?),
        created_at: from_ms(row.try_get("created_at")?),
    })
}

fn map_insert_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::AlreadyExists,
        _ => StoreError::Database(e),
    }
}

fn push_key_filter(qb: &mut QueryBuilder<'_, Db>, f: &KeyFilter) {
    qb.push(" WHERE 1 = 1");
    if let Some(v) = &f.user_id {
        qb.push(" AND user_id = ").push_bind(v.clone());
    }
    if let Some(v) = &f.team_id {
        qb.push(" AND team_id = ").push_bind(v.clone());
    }
    if let Some(v) = &f.key_alias {
        qb.push(" AND key_alias = ").push_bind(v.clone());
    }
    if let Some(v) = f.source {
        qb.push(" AND source = ").push_bind(v.as_str());
    }
}

fn push_log_filter(qb: &mut QueryBuilder<'_, Db>, f: &LogFilter) {
    qb.push(" WHERE 1 = 1");
    if let Some(v) = &f.key_hash {
        qb.push(" AND key_hash = ").push_bind(v.clone());
    }
    if let Some(v) = f.from {
        qb.push(" AND created_at >= ").push_bind(to_ms(v));
    }
    if let Some(v) = f.to {
        qb.push(" AND created_at < ").push_bind(to_ms(v));
    }
    qb.push(" ORDER BY created_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(f.limit));
}

/// Applies the changed columns of `u` to the `SET` list.
fn push_key_update(
    qb: &mut QueryBuilder<'_, Db>,
    u: &KeyUpdate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if let Some(v) = &u.key_alias {
        qb.push(", key_alias = ").push_bind(v.clone());
    }
    if let Some(v) = &u.models {
        qb.push(", models = ").push_bind(json_text(v)?);
    }
    if let Some(v) = &u.mcp_servers {
        qb.push(", mcp_servers = ")
            .push_bind(v.as_ref().map(json_text).transpose()?);
    }
    if let Some(v) = u.max_budget {
        qb.push(", max_budget = ").push_bind(v);
    }
    if let Some(v) = &u.budget_duration {
        qb.push(", budget_duration = ").push_bind(v.clone());
        if u.budget_reset_at.is_none() {
            // A new duration starts a new period now; clearing it stops resets.
            let next = v
                .as_deref()
                .map(|d| add_budget_duration(now, d))
                .transpose()?;
            qb.push(", budget_reset_at = ").push_bind(next.map(to_ms));
        }
    }
    if let Some(v) = u.budget_reset_at {
        qb.push(", budget_reset_at = ").push_bind(v.map(to_ms));
    }
    if let Some(v) = u.spend {
        qb.push(", spend = ").push_bind(v);
    }
    if let Some(v) = u.rpm_limit {
        qb.push(", rpm_limit = ")
            .push_bind(opt_i64("rpm_limit", v)?);
    }
    if let Some(v) = u.tpm_limit {
        qb.push(", tpm_limit = ")
            .push_bind(opt_i64("tpm_limit", v)?);
    }
    if let Some(v) = u.max_parallel_requests {
        qb.push(", max_parallel_requests = ")
            .push_bind(opt_i64("max_parallel_requests", v)?);
    }
    if let Some(v) = u.expires_at {
        qb.push(", expires_at = ").push_bind(v.map(to_ms));
    }
    if let Some(v) = &u.metadata {
        qb.push(", metadata = ").push_bind(json_text(v)?);
    }
    if let Some(v) = &u.user_id {
        qb.push(", user_id = ").push_bind(v.clone());
    }
    if let Some(v) = &u.team_id {
        qb.push(", team_id = ").push_bind(v.clone());
    }
    if let Some(v) = u.blocked {
        qb.push(", blocked = ").push_bind(v);
    }
    Ok(())
}

/// Remembers that the config-declared key `hash` was revoked, so the next start-up's
/// re-seed of `virtual_keys` does not restore it. Keys from the API need no record: only
/// the config brings keys back.
async fn record_revocation(
    conn: &mut <Db as Database>::Connection,
    hash: &str,
    alias: Option<&str>,
    kind: Revocation,
) -> Result<(), StoreError> {
    sqlx::query(REVOCATION_UPSERT)
        .bind(hash)
        .bind(alias)
        .bind(kind.as_str())
        .bind(now_ms())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The source and alias of a key, if it exists.
async fn source_and_alias(
    conn: &mut <Db as Database>::Connection,
    hash: &str,
) -> Result<Option<(KeySource, Option<String>)>, StoreError> {
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT source, key_alias FROM gatehouse_keys WHERE token_hash = $1")
            .bind(hash)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(s, a)| (KeySource::parse(&s), a)))
}

#[async_trait]
impl KeyStore for Store {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn schema_version(&self) -> Result<i64, StoreError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM gatehouse_migrations")
            .fetch_one(&self.pool)
            .await?;
        Ok(v.unwrap_or(0))
    }

    async fn insert(&self, key: &KeyRecord) -> Result<(), StoreError> {
        let enc = EncodedKey::new(key)?;
        let mut tx = begin_write(&self.pool).await?;
        let sql = format!("INSERT INTO gatehouse_keys ({KEY_COLS}) VALUES ({KEY_PLACEHOLDERS})");
        bind_key(sqlx::query(&sql), enc)
            .execute(&mut *tx)
            .await
            .map_err(map_insert_error)?;
        // A hash that comes back after a delete must not stay deleted in caches, nor at
        // the next start-up's config re-seed.
        sqlx::query("DELETE FROM gatehouse_key_tombstones WHERE token_hash = $1")
            .bind(&key.token_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM gatehouse_key_revocations WHERE token_hash = $1")
            .bind(&key.token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_many(&self, keys: &[KeyRecord]) -> Result<Vec<String>, StoreError> {
        // A transaction per key made a 100,000-key import wait on 100,000 commits (each a
        // WAL flush on Postgres); a chunk per transaction keeps each one short.
        const CHUNK: usize = 1_000;
        let sql = format!(
            "INSERT INTO gatehouse_keys ({KEY_COLS}) VALUES ({KEY_PLACEHOLDERS}) \
             ON CONFLICT (token_hash) DO NOTHING"
        );
        let mut taken = Vec::new();
        for chunk in keys.chunks(CHUNK) {
            let mut tx = begin_write(&self.pool).await?;
            for key in chunk {
                let added = bind_key(sqlx::query(&sql), EncodedKey::new(key)?)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if added == 0 {
                    taken.push(key.token_hash.clone());
                    continue;
                }
                // As `insert`: a hash that comes back is no longer deleted or revoked.
                sqlx::query("DELETE FROM gatehouse_key_tombstones WHERE token_hash = $1")
                    .bind(&key.token_hash)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM gatehouse_key_revocations WHERE token_hash = $1")
                    .bind(&key.token_hash)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        }
        Ok(taken)
    }

    async fn upsert_config_keys(
        &self,
        keys: &[VirtualKeyConfig],
    ) -> Result<ConfigSyncReport, StoreError> {
        let now = Utc::now();
        let mut records = keys
            .iter()
            .enumerate()
            .map(|(i, k)| crate::config_keys::record_from_config(i, k, now))
            .collect::<Result<Vec<_>, _>>()?;
        // Hash order: replicas syncing at once lock rows in the same order.
        records.sort_by(|a, b| a.token_hash.cmp(&b.token_hash));
        let sql = format!(
            "INSERT INTO gatehouse_keys ({KEY_COLS}) VALUES ({KEY_PLACEHOLDERS}) \
             ON CONFLICT (token_hash) DO UPDATE SET {CONFIG_UPSERT_SET}"
        );
        let mut tx = begin_write(&self.pool).await?;
        let revocations: std::collections::HashMap<String, Revocation> =
            sqlx::query_as::<_, (String, String)>(
                "SELECT token_hash, kind FROM gatehouse_key_revocations",
            )
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|(h, k)| (h, Revocation::parse(&k)))
            .collect();
        let mut revoked = Vec::new();
        for rec in &mut records {
            if let Some(&revocation) = revocations.get(&rec.token_hash) {
                revoked.push(RevokedConfigKey {
                    token_hash: rec.token_hash.clone(),
                    key_alias: rec.key_alias.clone(),
                    revocation,
                });
                match revocation {
                    // Deleted stays deleted: not re-inserted, no tombstone cleared.
                    Revocation::Deleted => continue,
                    // The config cannot unblock what the API blocked.
                    Revocation::Blocked => rec.blocked = true,
                }
            }
            bind_key(sqlx::query(&sql), EncodedKey::new(rec)?)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM gatehouse_key_tombstones WHERE token_hash = $1")
                .bind(&rec.token_hash)
                .execute(&mut *tx)
                .await?;
        }
        let configured: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT token_hash, key_alias FROM gatehouse_keys WHERE source = 'config'",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let current: std::collections::HashSet<&str> =
            records.iter().map(|r| r.token_hash.as_str()).collect();
        let orphaned = configured
            .into_iter()
            .filter(|(h, _)| !current.contains(h.as_str()))
            .collect();
        Ok(ConfigSyncReport {
            upserted: records.len() - revoked.iter().filter(|r| r.revocation == Revocation::Deleted).count(),
            orphaned,
            revoked,
        })
    }

    async fn get_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLS} FROM gatehouse_keys WHERE token_hash = $1");
        let row = sqlx::query(&sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    async fn update(&self, hash: &str, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        let now = Utc::now();
        let mut qb = QueryBuilder::<Db>::new("UPDATE gatehouse_keys SET updated_at = ");
        qb.push_bind(to_ms(now));
        push_key_update(&mut qb, update, now)?;
        qb.push(" WHERE token_hash = ").push_bind(hash.to_string());
        qb.push(" RETURNING ").push(KEY_COLS);
        let mut tx = begin_write(&self.pool).await?;
        let row = qb.build().fetch_optional(&mut *tx).await?;
        let rec = match row {
            Some(r) => key_from_row(&r)?,
            None => return Err(StoreError::NotFound),
        };
        if rec.source == KeySource::Config {
            match update.blocked {
                Some(true) => {
                    record_revocation(
                        &mut tx,
                        hash,
                        rec.key_alias.as_deref(),
                        Revocation::Blocked,
                    )
                    .await?;
                }
                Some(false) => {
                    sqlx::query(
                        "DELETE FROM gatehouse_key_revocations \
                         WHERE token_hash = $1 AND kind = 'blocked'",
                    )
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {}
            }
        }
        tx.commit().await?;
        Ok(rec)
    }

    async fn delete(&self, hash: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = begin_write(&self.pool).await?;
        let existing = source_and_alias(&mut tx, hash).await?;
        let gone = sqlx::query("DELETE FROM gatehouse_keys WHERE token_hash = $1")
            .bind(hash)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if let Some((KeySource::Config, alias)) = &existing {
            record_revocation(&mut tx, hash, alias.as_deref(), Revocation::Deleted).await?;
        }
        if gone {
            sqlx::query(TOMBSTONE_UPSERT)
                .bind(hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM gatehouse_key_tombstones WHERE deleted_at < $1")
            .bind(now - TOMBSTONE_TTL_MS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(gone)
    }

    async fn regenerate(&self, old_hash: &str) -> Result<(String, KeyRecord), StoreError> {
        let key = crate::generate_key();
        let new_hash = crate::hash_key(&key);
        let now = now_ms();
        let mut tx = begin_write(&self.pool).await?;
        let existing = source_and_alias(&mut tx, old_hash).await?;
        let copied = sqlx::query(REGENERATE_COPY)
            .bind(&new_hash)
            .bind(crate::keygen::prefix_display(&key))
            .bind(now)
            .bind(old_hash)
            .execute(&mut *tx)
            .await
            .map_err(map_insert_error)?
            .rows_affected();
        if copied == 0 {
            return Err(StoreError::NotFound);
        }
        sqlx::query("DELETE FROM gatehouse_keys WHERE token_hash = $1")
            .bind(old_hash)
            .execute(&mut *tx)
            .await?;
        sqlx::query(TOMBSTONE_UPSERT)
            .bind(old_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        // The old secret of a config key is still in config.yaml: it must not come back.
        if let Some((KeySource::Config, alias)) = &existing {
            record_revocation(&mut tx, old_hash, alias.as_deref(), Revocation::Deleted).await?;
        }
        let sql = format!("SELECT {KEY_COLS} FROM gatehouse_keys WHERE token_hash = $1");
        let row = sqlx::query(&sql)
            .bind(&new_hash)
            .fetch_one(&mut *tx)
            .await?;
        let rec = key_from_row(&row)?;
        tx.commit().await?;
        Ok((key, rec))
    }

    async fn list(
        &self,
        page: u32,
        page_size: u32,
        filter: &KeyFilter,
    ) -> Result<KeyPage, StoreError> {
        let page = page.max(1);
        let page_size = page_size.clamp(1, 1000);
        let mut count = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM gatehouse_keys");
        push_key_filter(&mut count, filter);
        let total: i64 = count.build_query_scalar().fetch_one(&self.pool).await?;

        let mut qb = QueryBuilder::<Db>::new("SELECT ");
        qb.push(KEY_COLS).push(" FROM gatehouse_keys");
        push_key_filter(&mut qb, filter);
        qb.push(" ORDER BY created_at DESC, token_hash ASC LIMIT ")
            .push_bind(i64::from(page_size))
            .push(" OFFSET ")
            .push_bind(i64::from(page - 1) * i64::from(page_size));
        let rows = qb.build().fetch_all(&self.pool).await?;
        Ok(KeyPage {
            keys: rows.iter().map(key_from_row).collect::<Result<_, _>>()?,
            total: to_u64(total),
            page,
            page_size,
        })
    }

    async fn all_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!("SELECT {KEY_COLS} FROM gatehouse_keys");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn changes_since(&self, watermark_ms: i64) -> Result<KeyChanges, StoreError> {
        let sql = format!("SELECT {KEY_COLS} FROM gatehouse_keys WHERE updated_at >= $1");
        let rows = sqlx::query(&sql)
            .bind(watermark_ms)
            .fetch_all(&self.pool)
            .await?;
        let upserted = rows
            .iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let deleted: Vec<(String, i64)> = sqlx::query_as(
            "SELECT token_hash, deleted_at FROM gatehouse_key_tombstones WHERE deleted_at >= $1",
        )
        .bind(watermark_ms)
        .fetch_all(&self.pool)
        .await?;
        let high_water_ms = upserted
            .iter()
            .map(|k| to_ms(k.updated_at))
            .chain(deleted.iter().map(|(_, t)| *t))
            .max()
            .unwrap_or(watermark_ms)
            .max(watermark_ms);
        Ok(KeyChanges {
            upserted,
            deleted: deleted.into_iter().map(|(h, _)| h).collect(),
            high_water_ms,
        })
    }

    async fn add_spend(&self, hash: &str, cost: f64) -> Result<(), StoreError> {
        if self.add_spend_sorted(&[(hash, cost)]).await? == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn add_spend_many(&self, costs: &[(String, f64)]) -> Result<(), StoreError> {
        if costs.is_empty() {
            return Ok(());
        }
        // Rows are locked in hash order so two writers never wait on each other in a cycle.
        let mut sorted: Vec<(&str, f64)> = costs.iter().map(|(h, c)| (h.as_str(), *c)).collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        self.add_spend_sorted(&sorted).await.map(|_| ())
    }

    async fn reset_budgets(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let now_ms = to_ms(now);
        let mut tx = begin_write(&self.pool).await?;
        // One replica at a time: the others find the job taken and skip this round.
        if !try_job_lock(&mut tx, crate::queries::BUDGET_RESET_JOB).await? {
            return Ok(0);
        }
        let due: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT token_hash, budget_duration, budget_reset_at FROM gatehouse_keys \
             WHERE budget_reset_at IS NOT NULL AND budget_reset_at <= $1 ORDER BY token_hash",
        )
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut reset = 0;
        for (hash, duration, old) in due {
            let next = match duration.as_deref().map(|d| add_budget_duration(now, d)) {
                Some(Ok(t)) => Some(to_ms(t)),
                Some(Err(e)) => {
                    tracing::warn!(key_hash = %hash, error = %e, "unparseable budget_duration; resets stop");
                    None
                }
                None => None,
            };
            // The `budget_reset_at = old` guard makes a concurrent reset by another
            // replica a no-op instead of a second reset.
            reset += sqlx::query(
                "UPDATE gatehouse_keys SET spend = 0, budget_reset_at = $1, updated_at = $2 \
                 WHERE token_hash = $3 AND budget_reset_at = $4",
            )
            .bind(next)
            .bind(now_ms)
            .bind(&hash)
            .bind(old)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(reset)
    }

    async fn insert_spend_batch(&self, rows: &[SpendRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut encoded = Vec::with_capacity(rows.len());
        for r in rows {
            let mcp = if r.mcp_calls.is_null() {
                None
            } else {
                Some(json_text(&r.mcp_calls)?)
            };
            encoded.push((
                r,
                to_i64("prompt_tokens", r.prompt_tokens)?,
                to_i64("completion_tokens", r.completion_tokens)?,
                to_i64("latency_ms", r.latency_ms)?,
                mcp,
            ));
        }
        let mut tx = begin_write(&self.pool).await?;
        for chunk in encoded.chunks(LOG_CHUNK) {
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO gatehouse_spend_logs (request_id, key_hash, model, deployment, \
                 prompt_tokens, completion_tokens, cost, latency_ms, status, mcp_calls, cache_hit, created_at) ",
            );
            qb.push_values(chunk, |mut b, (r, pt, ct, lat, mcp)| {
                b.push_bind(r.request_id.clone())
                    .push_bind(r.key_hash.clone())
                    .push_bind(r.model.clone())
                    .push_bind(r.deployment.clone())
                    .push_bind(*pt)
                    .push_bind(*ct)
                    .push_bind(r.cost)
                    .push_bind(*lat)
                    .push_bind(r.status.clone())
                    .push_bind(mcp.clone())
                    .push_bind(r.cache_hit)
                    .push_bind(to_ms(r.created_at));
            });
            qb.build().execute(&mut *tx).await?;
        }
        add_minute_totals(&mut tx, rows).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn spend_logs(&self, filter: &LogFilter) -> Result<Vec<SpendRow>, StoreError> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT request_id, key_hash, model, deployment, prompt_tokens, completion_tokens, \
             cost, latency_ms, status, mcp_calls, cache_hit, created_at FROM gatehouse_spend_logs",
        );
        push_log_filter(&mut qb, filter);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(spend_from_row).collect()
    }

    async fn insert_audit_batch(&self, rows: &[AuditRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut encoded = Vec::with_capacity(rows.len());
        for r in rows {
            encoded.push((
                r,
                to_i64("duration_ms", r.duration_ms)?,
                to_i64("args_size", r.args_size)?,
                to_i64("result_size", r.result_size)?,
            ));
        }
        let mut tx = begin_write(&self.pool).await?;
        for chunk in encoded.chunks(LOG_CHUNK) {
            let mut qb = QueryBuilder::<Db>::new(
                "INSERT INTO gatehouse_audit_logs (key_hash, request_id, server, tool, \
                 duration_ms, outcome, args_size, result_size, created_at) ",
            );
            qb.push_values(chunk, |mut b, (r, dur, args, res)| {
                b.push_bind(r.key_hash.clone())
                    .push_bind(r.request_id.clone())
                    .push_bind(r.server.clone())
                    .push_bind(r.tool.clone())
                    .push_bind(*dur)
                    .push_bind(r.outcome.clone())
                    .push_bind(*args)
                    .push_bind(*res)
                    .push_bind(to_ms(r.created_at));
            });
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn audit_logs(&self, filter: &LogFilter) -> Result<Vec<AuditRow>, StoreError> {
        let mut qb = QueryBuilder::<Db>::new(
            "SELECT key_hash, request_id, server, tool, duration_ms, outcome, args_size, \
             result_size, created_at FROM gatehouse_audit_logs",
        );
        push_log_filter(&mut qb, filter);
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn key_change_listener(
        &self,
    ) -> Result<Option<crate::KeyChangeListener>, StoreError> {
        key_change_listener(self).await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

impl Store {
    /// Adds costs to keys' spend in one transaction, in the given (hash) order; returns
    /// how many keys were there. `updated_at` never goes back: two replicas' batches
    /// commit in either order, and a refresh skips a row older than what it has. Each
    /// key's new spend is announced to the other replicas (`announce_spend`) instead of
    /// the generic change signal, so they need not re-read it.
    async fn add_spend_sorted(&self, costs: &[(&str, f64)]) -> Result<usize, StoreError> {
        let now = now_ms();
        let mut tx = begin_write(&self.pool).await?;
        spend_only(&mut tx).await?;
        let mut spent = Vec::with_capacity(costs.len());
        for (hash, cost) in costs {
            // Keys deleted meanwhile are skipped: their spend stays in the logs.
            let total: Option<f64> = sqlx::query_scalar(
                "UPDATE gatehouse_keys SET spend = spend + $1, \
                 updated_at = CASE WHEN updated_at > $2 THEN updated_at ELSE $2 END \
                 WHERE token_hash = $3 RETURNING spend",
            )
            .bind(*cost)
            .bind(now)
            .bind(*hash)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(total) = total {
                spent.push((*hash, total));
            }
        }
        announce_spend(&mut tx, self, &spent).await?;
        tx.commit().await?;
        Ok(spent.len())
    }
}
