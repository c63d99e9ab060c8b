//! Test harness: every case runs once on a fresh SQLite file and once on a fresh
//! Postgres database (`CREATE DATABASE gh_test_<random>`, dropped afterwards).
//!
//! Postgres is expected at `postgres://postgres@127.0.0.1:5432/` (override with
//! `GATEHOUSE_TEST_PG_URL`); if it is unreachable the Postgres tests fail, not skip.

#![allow(dead_code)]

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use gatehouse_store::{KeyStore, StoreOptions};
use rand::RngCore;
use sqlx::postgres::PgConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Executor, Row};

pub type BoxedCase = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    admin_url: String,
    name: String,
    _dir: Option<Arc<tempfile::TempDir>>,
}

fn pg_base() -> String {
    std::env::var("GATEHOUSE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/".to_string())
}

/// `base` with its database path replaced by `name` (query string kept).
fn with_database(base: &str, name: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let after_scheme = head.find("://").map_or(0, |i| i + 3);
    let authority_end = head[after_scheme..]
        .find('/')
        .map_or(head.len(), |i| after_scheme + i);
    let mut url = format!("{}/{}", &head[..authority_end], name);
    if let Some(q) = query {
        url.push('?');
        url.push_str(q);
    }
    url
}

pub fn test_options() -> StoreOptions {
    StoreOptions {
        max_connections: 5,
        ..StoreOptions::default()
    }
}

impl TestDb {
    pub async fn open(&self) -> Arc<dyn KeyStore> {
        gatehouse_store::open_with(&self.url, &test_options())
            .await
            .expect("open store")
    }

    /// Runs raw SQL on its own connection (outside the store under test).
    pub async fn exec(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let opts = SqliteConnectOptions::from_str(&self.url)
                    .unwrap()
                    .create_if_missing(true);
                let mut c = SqliteConnection::connect_with(&opts).await.unwrap();
                c.execute(sqlx::raw_sql(sql)).await.unwrap();
                c.close().await.unwrap();
            }
            Backend::Postgres => {
                let mut c = PgConnection::connect(&self.url).await.unwrap();
                c.execute(sqlx::raw_sql(sql)).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }

    /// One BIGINT value from raw SQL.
    pub async fn scalar(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Sqlite => {
                let opts = SqliteConnectOptions::from_str(&self.url).unwrap();
                let mut c = SqliteConnection::connect_with(&opts).await.unwrap();
                let v: i64 = c.fetch_one(sqlx::query(sql)).await.unwrap().get(0);
                c.close().await.unwrap();
                v
            }
            Backend::Postgres => {
                let mut c = PgConnection::connect(&self.url).await.unwrap();
                let v: i64 = c.fetch_one(sqlx::query(sql)).await.unwrap().get(0);
                c.close().await.unwrap();
                v
            }
        }
    }

    /// Throws the database away and creates an empty one at the same URL.
    pub async fn recreate(&self) {
        match self.backend {
            Backend::Sqlite => {
                // Drop every table rather than delete the file: a connection of the
                // closed pool may still be finishing its close, and SQLite's last close
                // removes `<db>-wal` by path, which would hit the new file's log.
                let opts = SqliteConnectOptions::from_str(&self.url).unwrap();
                let mut c = SqliteConnection::connect_with(&opts).await.unwrap();
                let tables: Vec<String> = c
                    .fetch_all(sqlx::query(
                        "SELECT name FROM sqlite_master WHERE type = 'table' \
                         AND name NOT LIKE 'sqlite_%'",
                    ))
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                assert!(!tables.is_empty());
                for t in tables {
                    c.execute(sqlx::raw_sql(&format!("DROP TABLE \"{t}\"")))
                        .await
                        .unwrap();
                }
                c.close().await.unwrap();
            }
            Backend::Postgres => {
                let mut admin = PgConnection::connect(&self.admin_url).await.unwrap();
                admin
                    .execute(sqlx::raw_sql(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE); ",
                        self.name
                    )))
                    .await
                    .unwrap();
                admin
                    .execute(sqlx::raw_sql(&format!("CREATE DATABASE {}", self.name)))
                    .await
                    .unwrap();
                admin.close().await.unwrap();
            }
        }
    }
}

fn random_suffix() -> String {
    let mut b = [0u8; 8];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Runs `body` against a fresh database of `backend`, then removes the database
/// (also when `body` panics; the panic is re-raised afterwards).
pub async fn run<F>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> BoxedCase,
{
    match backend {
        Backend::Sqlite => {
            let dir = Arc::new(tempfile::tempdir().unwrap());
            let url = format!("sqlite://{}/gatehouse-test.db", dir.path().display());
            let db = TestDb {
                backend,
                url,
                admin_url: String::new(),
                name: String::new(),
                _dir: Some(dir.clone()),
            };
            let result = tokio::spawn(body(db)).await;
            drop(dir);
            if let Err(e) = result {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        Backend::Postgres => {
            let base = pg_base();
            let admin_url = with_database(&base, "postgres");
            let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
                panic!("Postgres must be reachable at {admin_url} for the store tests: {e}")
            });
            let name = format!("gh_test_{}", random_suffix());
            admin
                .execute(sqlx::raw_sql(&format!("CREATE DATABASE {name}")))
                .await
                .unwrap();
            let db = TestDb {
                backend,
                url: with_database(&base, &name),
                admin_url: admin_url.clone(),
                name: name.clone(),
                _dir: None,
            };
            let result = tokio::spawn(body(db)).await;
            admin
                .execute(sqlx::raw_sql(&format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await
                .unwrap();
            admin.close().await.unwrap();
            if let Err(e) = result {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

#[test]
fn database_name_replaces_path() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/", "x"),
        "postgres://postgres@127.0.0.1:5432/x"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "y"),
        "postgres://u:p@h/y?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "z"), "postgres://h/z");
}
