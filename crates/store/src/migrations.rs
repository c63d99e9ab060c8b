//! Versioned schema migrations, shared by both backends.
//!
//! Each migration runs in its own transaction together with the row that records it, so a
//! failure leaves the schema at the previous version. Concurrency between replicas is the
//! backend's job: Postgres holds an advisory lock around the whole run, SQLite runs it
//! inside `BEGIN IMMEDIATE` (one writer at a time, others wait on the busy timeout).

/// SQL differences between the backends that the schema needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    fn serial_pk(self) -> &'static str {
        match self {
            Dialect::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
            Dialect::Postgres => "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        }
    }
}

pub(crate) struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: fn(Dialect) -> String,
}

/// The migrations table itself is created outside the versioned list (idempotently).
pub(crate) const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS gatehouse_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "keys",
        sql: keys_v1,
    },
    Migration {
        version: 2,
        name: "spend_and_audit_logs",
        sql: logs_v2,
    },
    Migration {
        version: 3,
        name: "log_listings",
        sql: listing_v3,
    },
    Migration {
        version: 4,
        name: "config_key_revocations",
        sql: revocations_v4,
    },
    Migration {
        version: 5,
        name: "key_change_notifications",
        sql: key_notify_v5,
    },
    Migration {
        version: 6,
        name: "spend_cache_hits",
        sql: cache_hits_v6,
    },
    Migration {
        version: 7,
        name: "spend_notifications",
        sql: spend_notify_v7,
    },
];

pub(crate) fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

// Instants are BIGINT Unix milliseconds and JSON is TEXT so one set of queries serves both
// backends; SQLite maps BIGINT / DOUBLE PRECISION / BOOLEAN to its own affinities.
fn keys_v1(_: Dialect) -> String {
    "CREATE TABLE gatehouse_keys (
        token_hash TEXT PRIMARY KEY,
        key_alias TEXT,
        key_prefix_display TEXT NOT NULL,
        models TEXT NOT NULL DEFAULT '[]',
        mcp_servers TEXT,
        max_budget DOUBLE PRECISION,
        budget_duration TEXT,
        budget_reset_at BIGINT,
        spend DOUBLE PRECISION NOT NULL DEFAULT 0,
        rpm_limit BIGINT,
        tpm_limit BIGINT,
        max_parallel_requests BIGINT,
        expires_at BIGINT,
        metadata TEXT NOT NULL DEFAULT '{}',
        user_id TEXT,
        team_id TEXT,
        blocked BOOLEAN NOT NULL DEFAULT FALSE,
        source TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX gatehouse_keys_by_created ON gatehouse_keys (created_at DESC, token_hash);
    CREATE INDEX gatehouse_keys_by_updated ON gatehouse_keys (updated_at);
    CREATE INDEX gatehouse_keys_by_user ON gatehouse_keys (user_id, created_at DESC);
    CREATE INDEX gatehouse_keys_by_team ON gatehouse_keys (team_id, created_at DESC);
    CREATE INDEX gatehouse_keys_by_alias ON gatehouse_keys (key_alias);
    CREATE INDEX gatehouse_keys_by_reset ON gatehouse_keys (budget_reset_at)
        WHERE budget_reset_at IS NOT NULL;
    CREATE TABLE gatehouse_key_tombstones (
        token_hash TEXT PRIMARY KEY,
        deleted_at BIGINT NOT NULL
    );
    CREATE INDEX gatehouse_key_tombstones_by_time ON gatehouse_key_tombstones (deleted_at);"
        .to_string()
}

fn logs_v2(d: Dialect) -> String {
    let pk = d.serial_pk();
    format!(
        "CREATE TABLE gatehouse_spend_logs (
            {pk},
            request_id TEXT NOT NULL,
            key_hash TEXT NOT NULL,
            model TEXT NOT NULL,
            deployment TEXT,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            cost DOUBLE PRECISION NOT NULL,
            latency_ms BIGINT NOT NULL,
            status TEXT NOT NULL,
            mcp_calls TEXT,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX gatehouse_spend_by_key ON gatehouse_spend_logs (key_hash, created_at);
        CREATE INDEX gatehouse_spend_by_time ON gatehouse_spend_logs (created_at);
        CREATE TABLE gatehouse_audit_logs (
            {pk},
            key_hash TEXT NOT NULL,
            request_id TEXT,
            server TEXT NOT NULL,
            tool TEXT NOT NULL,
            duration_ms BIGINT NOT NULL,
            outcome TEXT NOT NULL,
            args_size BIGINT NOT NULL,
            result_size BIGINT NOT NULL,
            created_at BIGINT NOT NULL
        );
        CREATE INDEX gatehouse_audit_by_key ON gatehouse_audit_logs (key_hash, created_at);
        CREATE INDEX gatehouse_audit_by_time ON gatehouse_audit_logs (created_at);"
    )
}

/// Indexes for the paged listings (`listing.rs`): each filter column, then the keyset
/// `(created_at, id)`. They replace v2's `(key_hash, created_at)` and `(created_at)`, which
/// they cover. Errors get a partial index: they are few, and `status <> 'success'`
/// cannot use an ordinary one. `gatehouse_spend_minutes` is the per-minute rollup the
/// overview charts read (filled from existing rows here, then by every spend batch).
fn listing_v3(_: Dialect) -> String {
    "DROP INDEX gatehouse_spend_by_key;
    DROP INDEX gatehouse_spend_by_time;
    DROP INDEX gatehouse_audit_by_key;
    DROP INDEX gatehouse_audit_by_time;
    CREATE INDEX gatehouse_spend_page ON gatehouse_spend_logs (created_at, id);
    CREATE INDEX gatehouse_spend_page_by_key ON gatehouse_spend_logs (key_hash, created_at, id);
    CREATE INDEX gatehouse_spend_page_by_model ON gatehouse_spend_logs (model, created_at, id);
    CREATE INDEX gatehouse_spend_page_by_status ON gatehouse_spend_logs (status, created_at, id);
    CREATE INDEX gatehouse_spend_page_errors ON gatehouse_spend_logs (created_at, id)
        WHERE status <> 'success';
    CREATE INDEX gatehouse_audit_page ON gatehouse_audit_logs (created_at, id);
    CREATE INDEX gatehouse_audit_page_by_key ON gatehouse_audit_logs (key_hash, created_at, id);
    CREATE INDEX gatehouse_audit_page_by_tool ON gatehouse_audit_logs (server, tool, created_at, id);
    CREATE INDEX gatehouse_audit_page_by_outcome ON gatehouse_audit_logs (outcome, created_at, id);
    CREATE TABLE gatehouse_spend_minutes (
        minute BIGINT PRIMARY KEY,
        requests BIGINT NOT NULL,
        errors BIGINT NOT NULL,
        cost DOUBLE PRECISION NOT NULL,
        latency_ms_sum BIGINT NOT NULL
    );
    INSERT INTO gatehouse_spend_minutes (minute, requests, errors, cost, latency_ms_sum)
        SELECT (created_at / 60000) * 60000, COUNT(*),
               SUM(CASE WHEN status <> 'success' THEN 1 ELSE 0 END), SUM(cost), SUM(latency_ms)
        FROM gatehouse_spend_logs GROUP BY (created_at / 60000) * 60000;"
        .to_string()
}

/// Config-declared keys blocked or deleted through the API. Unlike tombstones (which only
/// tell other replicas' caches, and expire) these last: the start-up re-seed of
/// `virtual_keys` reads them so a revoked key does not come back.
fn revocations_v4(_: Dialect) -> String {
    "CREATE TABLE gatehouse_key_revocations (
        token_hash TEXT PRIMARY KEY,
        key_alias TEXT,
        kind TEXT NOT NULL,
        revoked_at BIGINT NOT NULL
    )"
    .to_string()
}

/// Postgres tells every listening replica when a key row changes (insert, update — spend
/// included — or delete), so caches refresh within milliseconds instead of waiting for
/// the periodic refresh. One statement-level trigger: a batch touching many keys sends one
/// notification, and Postgres folds identical notifications of one transaction into one.
/// The payload is empty: listeners re-read by watermark, which also covers anything they
/// missed while disconnected. SQLite (one process) has nothing to notify.
fn key_notify_v5(d: Dialect) -> String {
    match d {
        Dialect::Sqlite => "SELECT 1".to_string(),
        Dialect::Postgres => format!(
            "CREATE OR REPLACE FUNCTION gatehouse_keys_notify() RETURNS trigger AS $$
            BEGIN
                PERFORM pg_notify('{KEY_CHANNEL}', '');
                RETURN NULL;
            END
            $$ LANGUAGE plpgsql;
            DROP TRIGGER IF EXISTS gatehouse_keys_changed ON gatehouse_keys;
            CREATE TRIGGER gatehouse_keys_changed
                AFTER INSERT OR UPDATE OR DELETE ON gatehouse_keys
                FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_keys_notify();"
        ),
    }
}

/// The `LISTEN` channel of `key_notify_v5`.
pub(crate) const KEY_CHANNEL: &str = "gatehouse_keys";
/// The channel a spend batch announces its keys' new spend on (`add_spend_many`).
pub(crate) const SPEND_CHANNEL: &str = "gatehouse_spend";
/// The transaction setting with which a spend batch tells the trigger to stay quiet.
pub(crate) const SPEND_ONLY_SETTING: &str = "gatehouse.spend_only";

/// A spend batch (`add_spend_many`, one every few hundred milliseconds per busy replica)
/// no longer makes every replica re-read its changed keys: it sets `SPEND_ONLY_SETTING`
/// for its transaction, which silences the key trigger, and announces each key's new
/// spend on `SPEND_CHANNEL` itself; listeners update their caches from the payload. Every
/// other key change still notifies as before.
fn spend_notify_v7(d: Dialect) -> String {
    match d {
        Dialect::Sqlite => "SELECT 1".to_string(),
        Dialect::Postgres => format!(
            "CREATE OR REPLACE FUNCTION gatehouse_keys_notify() RETURNS trigger AS $$
            BEGIN
                IF current_setting('{SPEND_ONLY_SETTING}', true) IS DISTINCT FROM 'on' THEN
                    PERFORM pg_notify('{KEY_CHANNEL}', '');
                END IF;
                RETURN NULL;
            END
            $$ LANGUAGE plpgsql;"
        ),
    }
}

/// Answers served from the response cache are logged at $0 and marked, so spend reports
/// can tell them from free models.
fn cache_hits_v6(dialect: Dialect) -> String {
    let column = match dialect {
        Dialect::Sqlite => "INTEGER NOT NULL DEFAULT 0",
        Dialect::Postgres => "BOOLEAN NOT NULL DEFAULT FALSE",
    };
    format!("ALTER TABLE gatehouse_spend_logs ADD COLUMN cache_hit {column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_strictly_increase() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "migration {} out of order", m.name);
            last = m.version;
        }
        assert_eq!(latest_version(), last);
    }
}
