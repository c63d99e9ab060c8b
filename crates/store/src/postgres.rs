//! The shared backend: Postgres, for several replicas behind a load balancer.
//!
//! The URL is passed to sqlx unchanged, so everything libpq-style URLs carry works:
//! password (SCRAM-SHA-256 or md5 auth), `sslmode=disable|prefer|require|verify-ca|
//! verify-full`, `sslrootcert`, `application_name`, ...

use std::str::FromStr;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::StoreOptions;
use crate::migrations::{CREATE_MIGRATIONS_TABLE, Dialect, MIGRATIONS, latest_version};

type Db = sqlx::Postgres;
type Store = PostgresStore;
const BACKEND: &str = "postgres";

/// Session advisory lock held while migrating ("gatehous" in ASCII).
const MIGRATION_LOCK_ID: i64 = 0x6761_7465_686f_7573;

/// Postgres-backed `KeyStore`.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    /// Names this store's spend announcements, so its own listener skips them (its
    /// cache already counted that spend).
    origin: u64,
}

async fn begin_write(pool: &PgPool) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin().await
}

impl PostgresStore {
    /// Connects to `postgres://` / `postgresql://` and migrates.
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<PostgresStore, StoreError> {
        let connect = |source| StoreError::Connect {
            backend: BACKEND,
            source,
        };
        let co = PgConnectOptions::from_str(url).map_err(connect)?;
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(co)
            .await
            .map_err(connect)?;
        migrate(&pool).await?;
        Ok(PostgresStore {
            pool,
            origin: rand::random(),
        })
    }

    /// The underlying pool (tests, diagnostics).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Migrations under a session advisory lock, so replicas starting together run them
/// once; the others wait and then find nothing to do.
async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_ID)
        .execute(&mut *conn)
        .await?;
    let result = run_migrations(&mut conn).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_ID)
        .execute(&mut *conn)
        .await;
    if unlocked.is_err() {
        // Ending the session releases the lock; never return it to the pool holding it.
        drop(conn.detach());
    }
    result
}

async fn run_migrations(conn: &mut PgConnection) -> Result<(), StoreError> {
    // `Executor::execute(conn, raw_sql(..))` rather than `raw_sql(..).execute(conn)`: the
    // latter's generic async fn makes this future fail rustc's `Send` inference in callers
    // ("implementation of `Executor` is not general enough"); `send_checks` guards it.
    sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(CREATE_MIGRATIONS_TABLE)).await?;
    let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM gatehouse_migrations")
        .fetch_one(&mut *conn)
        .await?;
    let current = current.unwrap_or(0);
    if current > latest_version() {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: latest_version(),
        });
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > current) {
        let fail = |source| StoreError::Migration {
            version: m.version,
            name: m.name,
            source,
        };
        // Postgres DDL is transactional: a failed migration leaves no trace.
        let mut tx = conn.begin().await?;
        let sql = (m.sql)(Dialect::Postgres);
        sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(&sql))
            .await
            .map_err(fail)?;
        sqlx::query(
            "INSERT INTO gatehouse_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied postgres migration"
        );
    }
    Ok(())
}

/// A transaction-scoped advisory lock on a scheduled job: `false` when another replica
/// holds it (it is doing the job). Released by commit or rollback, or if that replica dies.
async fn try_job_lock(
    tx: &mut sqlx::Transaction<'static, Db>,
    job: i64,
) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
        .bind(job)
        .fetch_one(&mut **tx)
        .await?)
}

async fn key_change_listener(
    store: &PostgresStore,
) -> Result<Option<crate::KeyChangeListener>, StoreError> {
    crate::KeyChangeListener::connect(&store.pool, store.origin)
        .await
        .map(Some)
}

/// Silences the key trigger for this transaction: it only moves spend, which
/// `announce_spend` tells the other replicas itself (migration 7).
async fn spend_only(tx: &mut sqlx::Transaction<'static, Db>) -> Result<(), StoreError> {
    sqlx::query("SELECT set_config($1, 'on', true)")
        .bind(crate::migrations::SPEND_ONLY_SETTING)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Tells every listening replica the keys' new spend, delivered when (and only if) the
/// transaction commits, in commit order.
async fn announce_spend(
    tx: &mut sqlx::Transaction<'static, Db>,
    store: &PostgresStore,
    spent: &[(&str, f64)],
) -> Result<(), StoreError> {
    for payload in crate::notify::spend_payloads(store.origin, spent) {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(crate::migrations::SPEND_CHANNEL)
            .bind(payload)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

include!("sql_common.rs");
include!("listing_sql.rs");
