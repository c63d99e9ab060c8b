#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may (project rule); covers helpers too
//! URL dispatch and connection options (backend-specific, outside the shared suite).

mod common;

use gatehouse_store::{KeyFilter, KeyRecord, KeySource, PostgresStore, StoreError, generate_key};

#[tokio::test]
async fn unsupported_scheme_is_refused_without_echoing_secrets() {
    let err = gatehouse_store::open("mysql://root:hunter2@db/gatehouse")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedUrl(_)));
    let msg = err.to_string();
    assert!(msg.contains("mysql"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
}

#[tokio::test]
async fn in_memory_sqlite_keeps_data_across_pooled_queries() {
    let store = gatehouse_store::open("sqlite::memory:").await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    assert_eq!(store.schema_version().await.unwrap(), 7);
    for i in 0..20 {
        let mut rec = KeyRecord::new(&generate_key(), KeySource::Api, chrono::Utc::now());
        rec.key_alias = Some(format!("m{i}"));
        store.insert(&rec).await.unwrap();
    }
    assert_eq!(
        store
            .list(1, 50, &KeyFilter::default())
            .await
            .unwrap()
            .total,
        20
    );
}

#[tokio::test]
async fn sqlite_file_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/wal.db", dir.path().display());
    let store = gatehouse_store::SqliteStore::connect(&url, &Default::default())
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert!(dir.path().join("wal.db").exists());
}

async fn tls_case(db: common::TestDb) {
    let url = format!("{}?sslmode=require&application_name=gatehouse-test", db.url);
    let store = PostgresStore::connect(&url, &common::test_options())
        .await
        .unwrap();
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(ssl, "sslmode=require must encrypt");
    let app: String = sqlx::query_scalar("SELECT current_setting('application_name')")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(app, "gatehouse-test");

    // verify-full checks the server certificate against the web PKI roots; the local
    // server's self-signed certificate must be rejected, not silently accepted.
    let strict = format!("{}?sslmode=verify-full", db.url);
    let err = PostgresStore::connect(&strict, &common::test_options())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Connect {
                backend: "postgres",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn postgres_url_options_sslmode_and_application_name() {
    common::run(common::Backend::Postgres, |db| Box::pin(tls_case(db))).await;
}
