//! The embedded backend: one SQLite file in WAL mode (or a private in-memory database).

use std::str::FromStr;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::StoreOptions;
use crate::migrations::{CREATE_MIGRATIONS_TABLE, Dialect, MIGRATIONS, latest_version};

type Db = sqlx::Sqlite;
type Store = SqliteStore;
const BACKEND: &str = "sqlite";

/// SQLite-backed `KeyStore`.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// Write transactions take the write lock up front (`BEGIN IMMEDIATE`): a deferred
/// transaction that reads first can fail with SQLITE_BUSY when it later needs to write,
/// without the busy timeout helping.
async fn begin_write(pool: &SqlitePool) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

impl SqliteStore {
    /// Opens (creating if missing) `sqlite://PATH` or `sqlite::memory:` and migrates it.
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<SqliteStore, StoreError> {
        let connect = |source| StoreError::Connect {
            backend: BACKEND,
            source,
        };
        let memory = url.contains(":memory:") || url.contains("mode=memory");
        let mut co = SqliteConnectOptions::from_str(url)
            .map_err(connect)?
            .create_if_missing(true)
            .busy_timeout(opts.busy_timeout)
            .foreign_keys(true);
        let pool_opts = if memory {
            // Every connection to `:memory:` shares one database that dies with the last
            // connection, so keep exactly one alive for the pool's lifetime.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            co = co
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            SqlitePoolOptions::new().max_connections(opts.max_connections.max(1))
        };
        let pool = pool_opts
            .acquire_timeout(opts.acquire_timeout)
            .connect_with(co)
            .await
            .map_err(connect)?;
        migrate(&pool).await?;
        Ok(SqliteStore { pool })
    }

    /// The underlying pool (tests, diagnostics).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// All pending migrations in one `BEGIN IMMEDIATE` transaction: a second process
/// opening the same file waits, then finds nothing left to do.
async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut tx = begin_write(pool).await?;
    // `Executor::execute(conn, raw_sql(..))` rather than `raw_sql(..).execute(conn)`: the
    // latter's generic async fn makes this future fail rustc's `Send` inference in callers
    // ("implementation of `Executor` is not general enough"); `send_checks` guards it.
    sqlx::Executor::execute(&mut *tx, sqlx::raw_sql(CREATE_MIGRATIONS_TABLE)).await?;
    let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM gatehouse_migrations")
        .fetch_one(&mut *tx)
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
        let sql = (m.sql)(Dialect::Sqlite);
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
        tracing::info!(
            version = m.version,
            name = m.name,
            "applied sqlite migration"
        );
    }
    tx.commit().await?;
    Ok(())
}

/// `BEGIN IMMEDIATE` already made this transaction the only writer.
async fn try_job_lock(_: &mut sqlx::Transaction<'static, Db>, _: i64) -> Result<bool, StoreError> {
    Ok(true)
}

/// One process per file: there is no other replica to hear from.
async fn key_change_listener(
    _: &SqliteStore,
) -> Result<Option<crate::KeyChangeListener>, StoreError> {
    Ok(None)
}

/// Nobody to tell (see `key_change_listener`).
async fn spend_only(_: &mut sqlx::Transaction<'static, Db>) -> Result<(), StoreError> {
    Ok(())
}

async fn announce_spend(
    _: &mut sqlx::Transaction<'static, Db>,
    _: &SqliteStore,
    _: &[(&str, f64)],
) -> Result<(), StoreError> {
    Ok(())
}

include!("sql_common.rs");
include!("listing_sql.rs");
