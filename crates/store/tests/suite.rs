#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may (project rule); covers helpers too
//! The store test suite, run on SQLite and on Postgres (see `common`).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use gatehouse_config::schema::VirtualKeyConfig;
use gatehouse_store::{
    AuditQuery, AuditRow, Cursor, KeyCache, KeyFilter, KeyRecord, KeySource, KeyStore, KeyUpdate,
    LogFilter, Revocation, SpendQuery, SpendRow, SpendWriter, SpendWriterConfig, StatusFilter,
    StoreError, generate_key, hash_key,
};
use serde_json::json;

use common::TestDb;

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    crate::common::run(crate::common::Backend::Sqlite, |db| Box::pin(crate::cases::$case(db))).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    crate::common::run(crate::common::Backend::Postgres, |db| Box::pin(crate::cases::$case(db))).await;
                }
            )*
        }
    };
}

suite!(
    migrations_are_idempotent,
    concurrent_migrations_from_two_pools,
    failed_migration_names_itself,
    newer_schema_is_refused,
    config_keys_upsert_and_survive_recreate,
    revoked_config_keys_stay_revoked,
    update_delete_regenerate,
    expiry_and_blocked_are_stored,
    list_paginates_1000_keys,
    spend_writer_batches_and_flushes_on_shutdown,
    spend_writer_counts_drops_when_full,
    spend_logs_filter_by_key_and_time,
    sql_in_aliases_is_stored_verbatim,
    concurrent_updates_of_one_key,
    budgets_reset_when_due,
    cache_follows_other_replicas_and_survives_outage,
    litellm_export_imports,
    pages_filter_and_follow_cursors_without_gaps,
    listings_stay_fast_at_a_million_rows,
    migration_3_fills_the_minute_rollup_from_existing_rows,
);

/// The newest schema version.
const LATEST: i64 = 7;

fn ts(s: &str) -> DateTime<Utc> {
    gatehouse_store::parse_instant("test", s).unwrap()
}

fn api_key(alias: &str, created: DateTime<Utc>) -> (String, KeyRecord) {
    let key = generate_key();
    let mut rec = KeyRecord::new(&key, KeySource::Api, created);
    rec.key_alias = Some(alias.to_string());
    (key, rec)
}

fn spend_row(key_hash: &str, i: usize, cost: f64, at: DateTime<Utc>) -> SpendRow {
    SpendRow {
        request_id: format!("req-{i}"),
        key_hash: key_hash.to_string(),
        model: "gpt-4o".into(),
        deployment: Some("openai/gpt-4o".into()),
        prompt_tokens: 10 + i as u64,
        completion_tokens: 5,
        cost,
        latency_ms: 12,
        status: "success".into(),
        mcp_calls: if i.is_multiple_of(2) {
            json!([{"server": "fs", "tool": "read"}])
        } else {
            json!(null)
        },
        cache_hit: i.is_multiple_of(3),
        created_at: at,
    }
}

mod cases {
    use super::*;

    pub async fn migration_3_fills_the_minute_rollup_from_existing_rows(db: TestDb) {
        // A database at version 2 with spend rows written before the rollup existed.
        db.open().await.close().await;
        db.exec(
            "DELETE FROM gatehouse_migrations WHERE version >= 3;
             DROP TABLE gatehouse_key_revocations;
             ALTER TABLE gatehouse_spend_logs DROP COLUMN cache_hit;
             DROP TABLE gatehouse_spend_minutes;
             DROP INDEX gatehouse_spend_page; DROP INDEX gatehouse_spend_page_by_key;
             DROP INDEX gatehouse_spend_page_by_model; DROP INDEX gatehouse_spend_page_by_status;
             DROP INDEX gatehouse_spend_page_errors; DROP INDEX gatehouse_audit_page;
             DROP INDEX gatehouse_audit_page_by_key; DROP INDEX gatehouse_audit_page_by_tool;
             DROP INDEX gatehouse_audit_page_by_outcome;
             CREATE INDEX gatehouse_spend_by_key ON gatehouse_spend_logs (key_hash, created_at);
             CREATE INDEX gatehouse_spend_by_time ON gatehouse_spend_logs (created_at);
             CREATE INDEX gatehouse_audit_by_key ON gatehouse_audit_logs (key_hash, created_at);
             CREATE INDEX gatehouse_audit_by_time ON gatehouse_audit_logs (created_at);
             INSERT INTO gatehouse_spend_logs (request_id, key_hash, model, prompt_tokens,
                 completion_tokens, cost, latency_ms, status, created_at) VALUES
               ('a', 'k', 'm', 1, 1, 0.5, 10, 'success', 1779999960000),
               ('b', 'k', 'm', 1, 1, 0.25, 20, 'error:timeout', 1779999990000),
               ('c', 'k', 'm', 1, 1, 1.0, 30, 'success', 1780000050000);",
        )
        .await;
        let store = db.open().await;
        assert_eq!(store.schema_version().await.unwrap(), LATEST);
        let t0 = chrono::DateTime::from_timestamp_millis(1_779_999_960_000).unwrap();
        let buckets = store.spend_buckets(t0, 60).await.unwrap();
        let got: Vec<(u64, u64)> = buckets.iter().map(|b| (b.requests, b.errors)).collect();
        assert_eq!(got, [(2, 1), (1, 0)], "{buckets:?}");
        assert!((buckets[0].cost - 0.75).abs() < 1e-9);
        assert!((buckets[0].latency_ms_avg - 15.0).abs() < 1e-9);
        // And the pages use the new indexes from here on.
        let page = store
            .spend_page(&SpendQuery {
                key_hash: Some("k".into()),
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.rows.len(), 2);
        assert!(page.next.is_some());
    }

    pub async fn pages_filter_and_follow_cursors_without_gaps(db: TestDb) {
        let store = db.open().await;
        let t0 = ts("2026-05-01T00:00:00Z");
        // 45 rows, three per instant: ties on created_at must still page without loss.
        let rows: Vec<SpendRow> = (0..45)
            .map(|i| {
                let mut r = spend_row(
                    if i % 3 == 0 { "ka" } else { "kb" },
                    i,
                    0.5,
                    t0 + chrono::Duration::seconds((i / 3) as i64),
                );
                r.model = if i % 5 == 0 {
                    "claude".into()
                } else {
                    "gpt-4o".into()
                };
                if i % 9 == 0 {
                    r.status = "error:timeout".into();
                }
                r
            })
            .collect();
        store.insert_spend_batch(&rows).await.unwrap();
        let mut seen = Vec::new();
        let mut after: Option<Cursor> = None;
        loop {
            let page = store
                .spend_page(&SpendQuery {
                    after,
                    limit: 7,
                    ..Default::default()
                })
                .await
                .unwrap();
            assert!(page.rows.len() <= 7);
            seen.extend(page.rows.iter().map(|r| r.request_id.clone()));
            match page.next {
                Some(c) => after = Some(Cursor::parse(&c.to_string()).unwrap()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 45, "every row once: {seen:?}");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 45);
        assert_eq!(seen[0], "req-44", "newest first");

        let count = |q: SpendQuery| {
            let store = store.clone();
            async move { store.spend_page(&q).await.unwrap().rows }
        };
        let ka = count(SpendQuery {
            key_hash: Some("ka".into()),
            limit: 500,
            ..Default::default()
        })
        .await;
        assert_eq!(ka.len(), 15);
        assert!(ka.iter().all(|r| r.key_hash == "ka"));
        let claude = count(SpendQuery {
            model: Some("claude".into()),
            limit: 500,
            ..Default::default()
        })
        .await;
        assert_eq!(claude.len(), 9);
        let errors = count(SpendQuery {
            status: Some(StatusFilter::Errors),
            limit: 500,
            ..Default::default()
        })
        .await;
        assert_eq!(errors.len(), 5);
        assert!(errors.iter().all(|r| r.status == "error:timeout"));
        let ok = count(SpendQuery {
            status: Some(StatusFilter::Is("success".into())),
            limit: 500,
            ..Default::default()
        })
        .await;
        assert_eq!(ok.len(), 40);
        let window = count(SpendQuery {
            from: Some(t0 + chrono::Duration::seconds(5)),
            to: Some(t0 + chrono::Duration::seconds(7)),
            key_hash: Some("kb".into()),
            limit: 500,
            ..Default::default()
        })
        .await;
        assert_eq!(window.len(), 4, "two instants x two kb rows");

        // Per-minute totals: all 45 rows fell in the first minute. Two more batches two
        // minutes later add to one row of the rollup.
        for i in 0..2 {
            let mut late = spend_row("kc", 100 + i, 1.0, t0 + chrono::Duration::minutes(2));
            late.latency_ms = 30;
            store.insert_spend_batch(&[late]).await.unwrap();
        }
        let buckets = store.spend_buckets(t0, 60).await.unwrap();
        assert_eq!(buckets.len(), 2, "{buckets:?}");
        assert_eq!(buckets[0].start, t0);
        assert_eq!((buckets[0].requests, buckets[0].errors), (45, 5));
        assert!((buckets[0].cost - 22.5).abs() < 1e-9);
        assert!((buckets[0].latency_ms_avg - 12.0).abs() < 1e-9);
        assert_eq!(buckets[1].start, t0 + chrono::Duration::minutes(2));
        assert_eq!((buckets[1].requests, buckets[1].errors), (2, 0));
        assert!((buckets[1].latency_ms_avg - 30.0).abs() < 1e-9);
        // Coarser buckets sum the minutes; a later start leaves the first minute out.
        let hour = store.spend_buckets(t0, 3600).await.unwrap();
        assert_eq!(hour.len(), 1);
        assert_eq!(hour[0].requests, 47);
        let later = store
            .spend_buckets(t0 + chrono::Duration::minutes(1), 60)
            .await
            .unwrap();
        assert_eq!(later.iter().map(|b| b.requests).sum::<u64>(), 2);

        let audit: Vec<AuditRow> = (0..12)
            .map(|i| AuditRow {
                key_hash: if i < 6 { "ka".into() } else { "kb".into() },
                request_id: Some(format!("req-{i}")),
                server: if i % 2 == 0 { "fs".into() } else { "ev".into() },
                tool: if i % 4 == 0 {
                    "read".into()
                } else {
                    "echo".into()
                },
                duration_ms: 3,
                outcome: if i == 11 { "error".into() } else { "ok".into() },
                args_size: 10,
                result_size: 20,
                created_at: t0 + chrono::Duration::seconds(i as i64),
            })
            .collect();
        store.insert_audit_batch(&audit).await.unwrap();
        let page = store
            .audit_page(&AuditQuery {
                server: Some("fs".into()),
                tool: Some("read".into()),
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.rows.len(), 2);
        assert_eq!(page.rows[0].request_id.as_deref(), Some("req-8"));
        let rest = store
            .audit_page(&AuditQuery {
                server: Some("fs".into()),
                tool: Some("read".into()),
                after: page.next,
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rest.rows.len(), 1);
        assert!(rest.next.is_none());
        let failed = store
            .audit_page(&AuditQuery {
                outcome: Some("error".into()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(failed.rows.len(), 1);
        let kb = store
            .audit_page(&AuditQuery {
                key_hash: Some("kb".into()),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(kb.rows.len(), 6);
    }

    /// 1,000,000 spend rows and 1,000,000 audit rows (inserted by SQL, not through the
    /// writer, to keep the test short): the first page, a page deep in the table reached
    /// by cursor, and each filter answer in milliseconds.
    pub async fn listings_stay_fast_at_a_million_rows(db: TestDb) {
        let store = db.open().await;
        let t0: i64 = 1_780_000_000_000;
        let (spend_src, audit_src) = match db.backend {
            common::Backend::Sqlite => (
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) \
                 SELECT i FROM n",
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) \
                 SELECT i FROM n",
            ),
            common::Backend::Postgres => (
                "SELECT i FROM generate_series(1, 1000000) AS g(i)",
                "SELECT i FROM generate_series(1, 1000000) AS g(i)",
            ),
        };
        let started = std::time::Instant::now();
        db.exec(&format!(
            "INSERT INTO gatehouse_spend_logs (request_id, key_hash, model, deployment, \
             prompt_tokens, completion_tokens, cost, latency_ms, status, mcp_calls, created_at) \
             SELECT 'req-' || i, 'key-' || (i % 100), 'model-' || (i % 10), NULL, 10, 5, 0.001, \
             i % 500, CASE WHEN i % 1000 = 0 THEN 'error:upstream' ELSE 'success' END, NULL, \
             {t0} + i * 10 FROM ({spend_src}) AS s"
        ))
        .await;
        db.exec(&format!(
            "INSERT INTO gatehouse_audit_logs (key_hash, request_id, server, tool, duration_ms, \
             outcome, args_size, result_size, created_at) \
             SELECT 'key-' || (i % 100), 'req-' || i, 'srv' || (i % 20), 'tool' || (i % 7), 3, \
             CASE WHEN i % 500 = 0 THEN 'error' ELSE 'ok' END, 10, 20, {t0} + i * 10 \
             FROM ({audit_src}) AS s"
        ))
        .await;
        if db.backend == common::Backend::Postgres {
            db.exec("ANALYZE gatehouse_spend_logs; ANALYZE gatehouse_audit_logs")
                .await;
        }
        eprintln!("inserted 2,000,000 rows in {:?}", started.elapsed());

        /// Best of three (the machine is shared; the first read may be cold), under `max`.
        async fn timed<T, F, Fut>(what: &str, max_ms: u64, f: F) -> T
        where
            F: Fn() -> Fut,
            Fut: std::future::Future<Output = T>,
        {
            let mut best = Duration::MAX;
            let mut out = None;
            for _ in 0..3 {
                let t = std::time::Instant::now();
                out = Some(f().await);
                best = best.min(t.elapsed());
            }
            eprintln!("{what}: {best:?}");
            assert!(best < Duration::from_millis(max_ms), "{what} took {best:?}");
            out.unwrap()
        }
        let q = |q: SpendQuery| {
            let store = store.clone();
            async move { store.spend_page(&q).await.unwrap() }
        };
        let first = timed("spend page 1", 100, || {
            q(SpendQuery {
                limit: 50,
                ..Default::default()
            })
        })
        .await;
        assert_eq!(first.rows.len(), 50);
        assert_eq!(first.rows[0].request_id, "req-1000000");
        // A cursor 900,000 rows deep.
        let deep = Cursor {
            created_at_ms: t0 + 100_000 * 10,
            id: i64::MAX,
        };
        let page = timed("spend page at row 900,000", 100, || {
            q(SpendQuery {
                after: Some(deep),
                limit: 50,
                ..Default::default()
            })
        })
        .await;
        // Rows strictly before the cursor: the one at its instant has a smaller id.
        assert_eq!(page.rows[0].request_id, "req-100000");
        let by_key = timed("spend by key", 100, || {
            q(SpendQuery {
                key_hash: Some("key-7".into()),
                limit: 50,
                ..Default::default()
            })
        })
        .await;
        assert!(by_key.rows.iter().all(|r| r.key_hash == "key-7") && by_key.rows.len() == 50);
        let by_key_deep = timed("spend by key, next page", 100, || {
            q(SpendQuery {
                key_hash: Some("key-7".into()),
                after: by_key.next,
                limit: 50,
                ..Default::default()
            })
        })
        .await;
        assert_eq!(by_key_deep.rows.len(), 50);
        let by_model = timed("spend by model", 100, || {
            q(SpendQuery {
                model: Some("model-3".into()),
                limit: 50,
                ..Default::default()
            })
        })
        .await;
        assert_eq!(by_model.rows.len(), 50);
        let errors = timed("spend errors", 100, || {
            q(SpendQuery {
                status: Some(StatusFilter::Errors),
                limit: 50,
                ..Default::default()
            })
        })
        .await;
        assert_eq!(errors.rows.len(), 50);
        assert!(errors.rows.iter().all(|r| r.status == "error:upstream"));
        let window = timed("spend by key in a time window", 100, || {
            q(SpendQuery {
                key_hash: Some("key-7".into()),
                from: Some(chrono::DateTime::from_timestamp_millis(t0 + 500_000 * 10).unwrap()),
                to: Some(chrono::DateTime::from_timestamp_millis(t0 + 600_000 * 10).unwrap()),
                limit: 50,
                ..Default::default()
            })
        })
        .await;
        assert_eq!(window.rows.len(), 50);
        // (The overview's totals read the per-minute rollup, not these rows: see
        // `spend_buckets`.)

        let a = |q: AuditQuery| {
            let store = store.clone();
            async move { store.audit_page(&q).await.unwrap() }
        };
        let audit = timed("audit page 1", 100, || {
            a(AuditQuery {
                limit: 50,
                ..Default::default()
            })
        })
        .await;
        assert_eq!(audit.rows.len(), 50);
        let tool = timed("audit by server+tool", 100, || {
            a(AuditQuery {
                server: Some("srv3".into()),
                tool: Some("tool2".into()),
                limit: 50,
                ..Default::default()
            })
        })
        .await;
        assert_eq!(tool.rows.len(), 50);
        let failed = timed("audit failures", 100, || {
            a(AuditQuery {
                outcome: Some("error".into()),
                limit: 50,
                ..Default::default()
            })
        })
        .await;
        assert_eq!(failed.rows.len(), 50);
        let key = timed("audit by key, page 2", 100, || {
            a(AuditQuery {
                key_hash: Some("key-9".into()),
                after: audit.next,
                limit: 50,
                ..Default::default()
            })
        })
        .await;
        assert_eq!(key.rows.len(), 50);
    }

    pub async fn litellm_export_imports(db: TestDb) {
        let store = db.open().await;
        let rows = vec![
            json!({"token": hash_key("sk-from-litellm-1"), "key_name": "sk-...m-1", "key_alias": "legacy",
                   "spend": 3.5, "max_budget": 10.0, "models": ["gpt-4o"], "team_id": "t9",
                   "expires": null, "blocked": false, "metadata": {"src": "litellm"}}),
            json!({"token": "sk-from-litellm-2", "blocked": true}),
        ];
        let report = gatehouse_store::import_litellm(store.as_ref(), &rows)
            .await
            .unwrap();
        assert_eq!(report.imported, 2);
        // Importing again changes nothing.
        let again = gatehouse_store::import_litellm(store.as_ref(), &rows)
            .await
            .unwrap();
        assert_eq!(again.imported, 0);
        assert_eq!(again.skipped_existing.len(), 2);

        let cache = KeyCache::load(store.clone()).await.unwrap();
        let k = cache
            .lookup_key("sk-from-litellm-1")
            .expect("the client's existing key works");
        assert_eq!(
            (k.spend, k.max_budget, k.source),
            (3.5, Some(10.0), KeySource::Import)
        );
        assert_eq!(k.key_prefix_display, "sk-...m-1");
        assert_eq!(k.metadata, json!({"src": "litellm"}));
        assert!(cache.lookup_key("sk-from-litellm-2").unwrap().blocked);
        let bad = gatehouse_store::import_litellm(store.as_ref(), &[json!({"token": "zzz"})])
            .await
            .unwrap_err();
        assert!(bad.to_string().contains("row 0: token"), "{bad}");
    }

    pub async fn migrations_are_idempotent(db: TestDb) {
        let store = db.open().await;
        assert_eq!(store.schema_version().await.unwrap(), LATEST);
        let (_, rec) = api_key("kept", Utc::now());
        store.insert(&rec).await.unwrap();
        store.close().await;

        // Second and third open: nothing re-applied, data intact.
        for _ in 0..2 {
            let store = db.open().await;
            assert_eq!(store.schema_version().await.unwrap(), LATEST);
            assert!(store.get_by_hash(&rec.token_hash).await.unwrap().is_some());
            store.close().await;
        }
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM gatehouse_migrations").await,
            LATEST
        );
    }

    pub async fn concurrent_migrations_from_two_pools(db: TestDb) {
        let opts = common::test_options();
        let (a, b, c) = tokio::join!(
            gatehouse_store::open_with(&db.url, &opts),
            gatehouse_store::open_with(&db.url, &opts),
            gatehouse_store::open_with(&db.url, &opts),
        );
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        assert_eq!(a.schema_version().await.unwrap(), LATEST);
        assert_eq!(
            db.scalar("SELECT COUNT(*) FROM gatehouse_migrations").await,
            LATEST
        );
        // All pools see one schema.
        let (_, rec) = api_key("shared", Utc::now());
        a.insert(&rec).await.unwrap();
        assert!(b.get_by_hash(&rec.token_hash).await.unwrap().is_some());
        assert!(c.get_by_hash(&rec.token_hash).await.unwrap().is_some());
    }

    pub async fn failed_migration_names_itself(db: TestDb) {
        // A foreign table where migration 1 wants to create its own.
        db.exec("CREATE TABLE gatehouse_keys (unrelated INTEGER)")
            .await;
        let err = gatehouse_store::open_with(&db.url, &common::test_options())
            .await
            .unwrap_err();
        match &err {
            StoreError::Migration { version, name, .. } => {
                assert_eq!((*version, *name), (1, "keys"));
            }
            other => panic!("expected a migration error, got {other:?}"),
        }
        assert!(
            err.to_string().contains("migration 1 (keys) failed"),
            "{err}"
        );
        // Nothing was recorded as applied: once the obstacle is gone, every migration runs.
        db.exec("DROP TABLE gatehouse_keys").await;
        let store = db.open().await;
        assert_eq!(store.schema_version().await.unwrap(), LATEST);
        let (_, rec) = api_key("after-fix", Utc::now());
        store.insert(&rec).await.unwrap();
    }

    pub async fn newer_schema_is_refused(db: TestDb) {
        db.open().await.close().await;
        db.exec(
            "INSERT INTO gatehouse_migrations (version, name, applied_at) VALUES (99, 'future', 0)",
        )
        .await;
        let err = gatehouse_store::open_with(&db.url, &common::test_options())
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::SchemaTooNew {
                    found: 99,
                    supported: LATEST
                }
            ),
            "{err:?}"
        );
    }

    fn config_keys() -> Vec<VirtualKeyConfig> {
        vec![
            VirtualKeyConfig {
                api_key: "sk-config-alpha-0001".into(),
                key_alias: Some("alpha".into()),
                models: vec!["gpt-4o".into(), "claude".into()],
                mcp_servers: Some(vec!["github".into()]),
                max_budget: Some(10.0),
                budget_duration: Some("30d".into()),
                rpm_limit: Some(60),
                tpm_limit: Some(100_000),
                max_parallel_requests: Some(4),
                user_id: Some("u1".into()),
                team_id: Some("t1".into()),
                metadata: Some(json!({"owner": "ops"})),
                ..Default::default()
            },
            VirtualKeyConfig {
                api_key: "sk-config-beta-0002".into(),
                key_alias: Some("beta".into()),
                ..Default::default()
            },
        ]
    }

    pub async fn config_keys_upsert_and_survive_recreate(db: TestDb) {
        let store = db.open().await;
        let cfg = config_keys();
        let report = store.upsert_config_keys(&cfg).await.unwrap();
        assert_eq!(report.upserted, 2);
        assert!(report.orphaned.is_empty());

        let alpha_hash = hash_key("sk-config-alpha-0001");
        let alpha = store.get_by_hash(&alpha_hash).await.unwrap().unwrap();
        assert_eq!(alpha.key_alias.as_deref(), Some("alpha"));
        assert_eq!(alpha.key_prefix_display, "sk-...0001");
        assert_eq!(alpha.models, vec!["gpt-4o", "claude"]);
        assert_eq!(alpha.mcp_servers, Some(vec!["github".to_string()]));
        assert_eq!(alpha.max_budget, Some(10.0));
        assert_eq!(
            (
                alpha.rpm_limit,
                alpha.tpm_limit,
                alpha.max_parallel_requests
            ),
            (Some(60), Some(100_000), Some(4))
        );
        assert_eq!(alpha.metadata, json!({"owner": "ops"}));
        assert_eq!(alpha.source, KeySource::Config);
        let reset_at = alpha.budget_reset_at.expect("30d budget schedules a reset");
        assert!(reset_at > Utc::now() + chrono::Duration::days(29));
        let beta = store
            .get_by_hash(&hash_key("sk-config-beta-0002"))
            .await
            .unwrap()
            .unwrap();
        assert!(beta.models.is_empty() && beta.mcp_servers.is_none() && !beta.blocked);

        // Re-sync with a change: settings follow config, spend and creation survive.
        store.add_spend(&alpha_hash, 1.25).await.unwrap();
        let mut cfg2 = config_keys();
        cfg2[0].key_alias = Some("alpha-renamed".into());
        cfg2[0].rpm_limit = None;
        cfg2.truncate(1);
        let report = store.upsert_config_keys(&cfg2).await.unwrap();
        assert_eq!(report.upserted, 1);
        assert_eq!(
            report.orphaned,
            vec![(hash_key("sk-config-beta-0002"), Some("beta".to_string()))]
        );
        let alpha2 = store.get_by_hash(&alpha_hash).await.unwrap().unwrap();
        assert_eq!(alpha2.key_alias.as_deref(), Some("alpha-renamed"));
        assert_eq!(alpha2.rpm_limit, None);
        assert_eq!(alpha2.spend, 1.25);
        assert_eq!(alpha2.created_at, alpha.created_at);
        assert_eq!(
            alpha2.budget_reset_at, alpha.budget_reset_at,
            "pending reset kept"
        );
        // The key removed from config is kept, still marked as config-owned.
        let beta2 = store
            .get_by_hash(&hash_key("sk-config-beta-0002"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(beta2.source, KeySource::Config);
        store.close().await;

        // The database is lost and recreated: the next start restores config keys.
        db.recreate().await;
        let store = db.open().await;
        assert!(store.get_by_hash(&alpha_hash).await.unwrap().is_none());
        store.upsert_config_keys(&cfg).await.unwrap();
        let cache = KeyCache::load(store.clone()).await.unwrap();
        let hit = cache
            .lookup_key("sk-config-alpha-0001")
            .expect("key works again");
        assert_eq!(hit.key_alias.as_deref(), Some("alpha"));
        assert_eq!(hit.spend, 0.0);
        assert!(cache.lookup_key("sk-config-beta-0002").is_some());
        assert!(cache.lookup_key("sk-not-configured").is_none());
    }

    /// Blocking, deleting or regenerating a key declared in `virtual_keys` survives the
    /// next start-up's re-seed (a restart is a new pool on the same database).
    pub async fn revoked_config_keys_stay_revoked(db: TestDb) {
        let mut cfg = config_keys();
        cfg.push(VirtualKeyConfig {
            api_key: "sk-config-gamma-0003".into(),
            key_alias: Some("gamma".into()),
            ..Default::default()
        });
        let alpha = hash_key("sk-config-alpha-0001");
        let beta = hash_key("sk-config-beta-0002");
        let gamma = hash_key("sk-config-gamma-0003");
        let store = db.open().await;
        store.upsert_config_keys(&cfg).await.unwrap();
        let block = KeyUpdate {
            blocked: Some(true),
            ..Default::default()
        };
        store.update(&alpha, &block).await.unwrap();
        assert!(store.delete(&beta).await.unwrap());
        let (new_gamma, _) = store.regenerate(&gamma).await.unwrap();
        store.close().await;

        let store = db.open().await;
        let report = store.upsert_config_keys(&cfg).await.unwrap();
        let mut revoked: Vec<(Option<String>, Revocation)> = report
            .revoked
            .iter()
            .map(|r| (r.key_alias.clone(), r.revocation))
            .collect();
        revoked.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            revoked,
            vec![
                (Some("alpha".into()), Revocation::Blocked),
                (Some("beta".into()), Revocation::Deleted),
                (Some("gamma".into()), Revocation::Deleted),
            ]
        );
        assert_eq!(
            report.upserted, 1,
            "only alpha is re-seeded (still blocked)"
        );
        let cache = KeyCache::load(store.clone()).await.unwrap();
        assert!(
            cache.lookup(&alpha).unwrap().blocked,
            "config cannot unblock"
        );
        assert!(cache.lookup(&beta).is_none(), "deleted stays deleted");
        assert!(
            cache.lookup(&gamma).is_none(),
            "regenerated secret stays dead"
        );
        assert!(cache.lookup_key(&new_gamma).is_some());

        // Unblocking and re-creating the same key undo the revocations.
        let unblock = KeyUpdate {
            blocked: Some(false),
            ..Default::default()
        };
        store.update(&alpha, &unblock).await.unwrap();
        store
            .insert(&KeyRecord::new(
                "sk-config-beta-0002",
                KeySource::Api,
                Utc::now(),
            ))
            .await
            .unwrap();
        let report = store.upsert_config_keys(&cfg).await.unwrap();
        assert_eq!(report.revoked.len(), 1, "{:?}", report.revoked);
        assert_eq!(report.revoked[0].key_alias.as_deref(), Some("gamma"));
        assert!(!store.get_by_hash(&alpha).await.unwrap().unwrap().blocked);
        assert!(store.get_by_hash(&beta).await.unwrap().is_some());

        // Keys from the API leave no revocation behind.
        let (_, rec) = api_key("api", Utc::now());
        store.insert(&rec).await.unwrap();
        store.update(&rec.token_hash, &block).await.unwrap();
        assert_eq!(
            store.upsert_config_keys(&cfg).await.unwrap().revoked.len(),
            1
        );
        store.close().await;
    }

    pub async fn update_delete_regenerate(db: TestDb) {
        let store = db.open().await;
        let (key, mut rec) = api_key("dev", Utc::now());
        rec.max_budget = Some(5.0);
        rec.models = vec!["gpt-4o".into()];
        store.insert(&rec).await.unwrap();
        assert!(matches!(
            store.insert(&rec).await,
            Err(StoreError::AlreadyExists)
        ));

        let updated = store
            .update(
                &rec.token_hash,
                &KeyUpdate {
                    key_alias: Some(Some("dev-2".into())),
                    models: Some(vec!["a".into(), "b".into()]),
                    max_budget: Some(None),
                    mcp_servers: Some(Some(vec![])),
                    metadata: Some(json!({"note": "x"})),
                    tpm_limit: Some(Some(500)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(updated.key_alias.as_deref(), Some("dev-2"));
        assert_eq!(updated.models, vec!["a", "b"]);
        assert_eq!(updated.max_budget, None);
        assert_eq!(updated.mcp_servers, Some(vec![]));
        assert_eq!(updated.tpm_limit, Some(500));
        assert!(updated.updated_at >= rec.updated_at);
        assert_eq!(
            store.get_by_hash(&rec.token_hash).await.unwrap().unwrap(),
            updated
        );
        assert!(matches!(
            store.update("missing", &KeyUpdate::default()).await,
            Err(StoreError::NotFound)
        ));

        // Regenerate keeps settings and spend under a new secret.
        store.add_spend(&rec.token_hash, 0.5).await.unwrap();
        let (new_key, new_rec) = store.regenerate(&rec.token_hash).await.unwrap();
        assert_ne!(new_key, key);
        assert_eq!(new_rec.token_hash, hash_key(&new_key));
        assert_eq!(
            new_rec.key_prefix_display,
            format!("sk-...{}", &new_key[new_key.len() - 4..])
        );
        assert_eq!(new_rec.key_alias.as_deref(), Some("dev-2"));
        assert_eq!(new_rec.models, vec!["a", "b"]);
        assert_eq!(new_rec.spend, 0.5);
        assert_eq!(new_rec.created_at, rec.created_at);
        assert!(store.get_by_hash(&rec.token_hash).await.unwrap().is_none());
        assert!(matches!(
            store.regenerate(&rec.token_hash).await,
            Err(StoreError::NotFound)
        ));

        assert!(store.delete(&new_rec.token_hash).await.unwrap());
        assert!(
            store
                .get_by_hash(&new_rec.token_hash)
                .await
                .unwrap()
                .is_none()
        );
        assert!(!store.delete(&new_rec.token_hash).await.unwrap());
        assert!(matches!(
            store.add_spend(&new_rec.token_hash, 1.0).await,
            Err(StoreError::NotFound)
        ));
    }

    pub async fn expiry_and_blocked_are_stored(db: TestDb) {
        let store = db.open().await;
        let now = Utc::now();
        let (_, mut rec) = api_key("old", now);
        rec.expires_at = Some(ts("2020-01-01T00:00:00Z"));
        rec.blocked = true;
        store.insert(&rec).await.unwrap();
        let got = store.get_by_hash(&rec.token_hash).await.unwrap().unwrap();
        assert_eq!(got.expires_at, Some(ts("2020-01-01T00:00:00Z")));
        assert!(got.blocked && got.is_expired(now) && !got.is_usable(now));

        let cfg = vec![VirtualKeyConfig {
            api_key: "sk-expiring".into(),
            expires: Some("2999-12-31".into()),
            blocked: Some(true),
            ..Default::default()
        }];
        store.upsert_config_keys(&cfg).await.unwrap();
        let got = store
            .get_by_hash(&hash_key("sk-expiring"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.expires_at, Some(ts("2999-12-31T00:00:00Z")));
        assert!(got.blocked && !got.is_expired(now));

        // Unblock and clear expiry.
        let got = store
            .update(
                &rec.token_hash,
                &KeyUpdate {
                    blocked: Some(false),
                    expires_at: Some(None),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(!got.blocked && got.expires_at.is_none() && got.is_usable(now));

        // A bad date in config is rejected with the entry named, not the key.
        let bad = vec![VirtualKeyConfig {
            api_key: "sk-secret-value".into(),
            key_alias: Some("bad".into()),
            expires: Some("next tuesday".into()),
            ..Default::default()
        }];
        let err = store
            .upsert_config_keys(&bad)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("virtual_keys[0] (bad).expires"), "{err}");
        assert!(!err.contains("sk-secret-value"), "{err}");
    }

    pub async fn list_paginates_1000_keys(db: TestDb) {
        let store = db.open().await;
        let base = ts("2026-01-01T00:00:00Z");
        let mut all = HashSet::new();
        for i in 0..1000 {
            let (_, mut rec) = api_key(&format!("k{i}"), base + chrono::Duration::seconds(i));
            rec.team_id = Some(if i % 2 == 0 { "even" } else { "odd" }.to_string());
            all.insert(rec.token_hash.clone());
            store.insert(&rec).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut last_created: Option<DateTime<Utc>> = None;
        for page in 1..=10 {
            let p = store.list(page, 100, &KeyFilter::default()).await.unwrap();
            assert_eq!(
                (p.total, p.page, p.page_size, p.keys.len()),
                (1000, page, 100, 100)
            );
            for k in &p.keys {
                if let Some(prev) = last_created {
                    assert!(k.created_at < prev, "newest first");
                }
                last_created = Some(k.created_at);
                seen.push(k.token_hash.clone());
            }
        }
        assert_eq!(seen.len(), 1000);
        assert_eq!(
            seen.iter().cloned().collect::<HashSet<_>>(),
            all,
            "every key exactly once"
        );
        assert_eq!(
            store
                .list(1, 100, &KeyFilter::default())
                .await
                .unwrap()
                .keys[0]
                .key_alias
                .as_deref(),
            Some("k999")
        );
        assert!(
            store
                .list(11, 100, &KeyFilter::default())
                .await
                .unwrap()
                .keys
                .is_empty()
        );

        let even = KeyFilter {
            team_id: Some("even".into()),
            ..Default::default()
        };
        let p = store.list(3, 200, &even).await.unwrap();
        assert_eq!(p.total, 500);
        assert_eq!(p.keys.len(), 100);
        assert!(p.keys.iter().all(|k| k.team_id.as_deref() == Some("even")));
        let alias = KeyFilter {
            key_alias: Some("k7".into()),
            ..Default::default()
        };
        assert_eq!(store.list(1, 10, &alias).await.unwrap().total, 1);
        let cfg = KeyFilter {
            source: Some(KeySource::Config),
            ..Default::default()
        };
        assert_eq!(store.list(1, 10, &cfg).await.unwrap().total, 0);
    }

    pub async fn spend_writer_batches_and_flushes_on_shutdown(db: TestDb) {
        let store = db.open().await;
        let keys: Vec<KeyRecord> = (0..3)
            .map(|i| api_key(&format!("w{i}"), Utc::now()).1)
            .collect();
        for k in &keys {
            store.insert(k).await.unwrap();
        }
        let writer = SpendWriter::spawn(
            store.clone(),
            SpendWriterConfig {
                batch_size: 64,
                // Only full batches and shutdown flush in this test.
                flush_interval: Duration::from_secs(3600),
                ..Default::default()
            },
        );
        let now = Utc::now();
        for i in 0..1000 {
            assert!(writer.try_log(spend_row(&keys[i % 3].token_hash, i, 0.25, now)));
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        for i in 0..10 {
            assert!(writer.try_audit(AuditRow {
                key_hash: keys[0].token_hash.clone(),
                request_id: Some(format!("req-{i}")),
                server: "github".into(),
                tool: "search_issues".into(),
                duration_ms: 40 + i,
                outcome: "ok".into(),
                args_size: 120,
                result_size: 4096,
                created_at: now,
            }));
        }
        writer.shutdown().await;
        writer.shutdown().await; // idempotent
        let stats = writer.stats();
        assert_eq!(
            (stats.dropped, stats.spend_written, stats.audit_written),
            (0, 1000, 10)
        );
        assert!(
            !writer.try_log(spend_row("x", 0, 1.0, now)),
            "closed after shutdown"
        );
        assert_eq!(writer.dropped(), 1);

        let rows = store
            .spend_logs(&LogFilter {
                limit: 5000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), 1000, "no row lost");
        let ids: HashSet<_> = rows.iter().map(|r| r.request_id.clone()).collect();
        assert_eq!(ids.len(), 1000);
        let r0 = rows.iter().find(|r| r.request_id == "req-0").unwrap();
        assert_eq!(
            r0,
            &spend_row(&keys[0].token_hash, 0, 0.25, ts(&now.to_rfc3339())).with_ms_precision()
        );
        // Batch costs reached the keys' running totals.
        for (i, k) in keys.iter().enumerate() {
            let n = (0..1000).filter(|j| j % 3 == i).count() as f64;
            let spend = store
                .get_by_hash(&k.token_hash)
                .await
                .unwrap()
                .unwrap()
                .spend;
            assert!((spend - 0.25 * n).abs() < 1e-9, "key {i}: {spend}");
        }
        let audit = store
            .audit_logs(&LogFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(audit.len(), 10);
        assert!(
            audit
                .iter()
                .all(|a| a.tool == "search_issues" && a.result_size == 4096)
        );
    }

    pub async fn spend_writer_counts_drops_when_full(db: TestDb) {
        let store = db.open().await;
        let writer = SpendWriter::spawn(
            store.clone(),
            SpendWriterConfig {
                queue_capacity: 4,
                apply_key_spend: false,
                ..Default::default()
            },
        );
        let now = Utc::now();
        // No await between sends: the writer task cannot drain the queue meanwhile.
        let accepted = (0..10)
            .filter(|&i| writer.try_log(spend_row("k", i, 0.0, now)))
            .count();
        assert_eq!(accepted, 4);
        assert_eq!(writer.dropped(), 6);
        writer.shutdown().await;
        assert_eq!(writer.stats().spend_written, 4);
        assert_eq!(
            store.spend_logs(&LogFilter::default()).await.unwrap().len(),
            4
        );
    }

    pub async fn spend_logs_filter_by_key_and_time(db: TestDb) {
        let store = db.open().await;
        let t0 = ts("2026-05-01T00:00:00Z");
        let rows: Vec<SpendRow> = (0..30)
            .map(|i| {
                spend_row(
                    if i < 20 { "ka" } else { "kb" },
                    i,
                    0.1,
                    t0 + chrono::Duration::minutes(i as i64),
                )
            })
            .collect();
        store.insert_spend_batch(&rows).await.unwrap();
        let ka = store
            .spend_logs(&LogFilter {
                key_hash: Some("ka".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ka.len(), 20);
        assert_eq!(ka[0].request_id, "req-19", "newest first");
        let window = store
            .spend_logs(&LogFilter {
                from: Some(t0 + chrono::Duration::minutes(10)),
                to: Some(t0 + chrono::Duration::minutes(25)),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(window.len(), 15);
        assert!(
            window
                .iter()
                .all(|r| r.created_at >= t0 + chrono::Duration::minutes(10)
                    && r.created_at < t0 + chrono::Duration::minutes(25))
        );
        let limited = store
            .spend_logs(&LogFilter {
                limit: 3,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            limited
                .iter()
                .map(|r| r.request_id.as_str())
                .collect::<Vec<_>>(),
            ["req-29", "req-28", "req-27"]
        );
        assert_eq!(
            limited[1].mcp_calls,
            json!([{"server": "fs", "tool": "read"}])
        );
        assert_eq!(limited[0].mcp_calls, json!(null));
    }

    pub async fn sql_in_aliases_is_stored_verbatim(db: TestDb) {
        let store = db.open().await;
        let nasty = [
            "'; DROP TABLE keys; --",
            "Robert'); DROP TABLE gatehouse_keys;--",
            "\" OR 1=1 --",
            "$1 $2 ? ?1 :name @x",
            "naïve 🔑 \\ \n\t",
        ];
        for alias in nasty {
            let (_, mut rec) = api_key(alias, Utc::now());
            rec.user_id = Some(alias.to_string());
            rec.metadata = json!({ "note": alias });
            store.insert(&rec).await.unwrap();
            let got = store.get_by_hash(&rec.token_hash).await.unwrap().unwrap();
            assert_eq!(got.key_alias.as_deref(), Some(alias));
            assert_eq!(got.user_id.as_deref(), Some(alias));
            assert_eq!(got.metadata, json!({ "note": alias }));
            let filter = KeyFilter {
                key_alias: Some(alias.to_string()),
                ..Default::default()
            };
            let page = store.list(1, 10, &filter).await.unwrap();
            assert_eq!(page.total, 1, "{alias:?}");
        }
        assert_eq!(
            store
                .list(1, 10, &KeyFilter::default())
                .await
                .unwrap()
                .total,
            nasty.len() as u64
        );
    }

    pub async fn concurrent_updates_of_one_key(db: TestDb) {
        let store = db.open().await;
        let (_, rec) = api_key("hot", Utc::now());
        store.insert(&rec).await.unwrap();
        let hash = rec.token_hash.clone();
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = store.clone();
            let hash = hash.clone();
            tasks.push(tokio::spawn(async move {
                match i {
                    7 => store
                        .update(
                            &hash,
                            &KeyUpdate {
                                rpm_limit: Some(Some(77)),
                                ..Default::default()
                            },
                        )
                        .await
                        .map(|_| ()),
                    13 => store
                        .update(
                            &hash,
                            &KeyUpdate {
                                key_alias: Some(Some("renamed".into())),
                                ..Default::default()
                            },
                        )
                        .await
                        .map(|_| ()),
                    21 => store.add_spend_many(&[(hash.clone(), 0.5)]).await,
                    _ => store.add_spend(&hash, 0.5).await,
                }
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let got = store.get_by_hash(&hash).await.unwrap().unwrap();
        assert!((got.spend - 38.0 * 0.5).abs() < 1e-9, "spend {}", got.spend);
        assert_eq!(got.rpm_limit, Some(77));
        assert_eq!(got.key_alias.as_deref(), Some("renamed"));
    }

    pub async fn budgets_reset_when_due(db: TestDb) {
        let store = db.open().await;
        let now = ts("2026-06-01T12:00:00Z");
        let (_, mut due) = api_key("due", now);
        due.budget_duration = Some("1h".into());
        due.budget_reset_at = Some(now - chrono::Duration::minutes(1));
        due.spend = 5.0;
        let (_, mut later) = api_key("later", now);
        later.budget_duration = Some("1d".into());
        later.budget_reset_at = Some(now + chrono::Duration::hours(3));
        later.spend = 2.0;
        store.insert(&due).await.unwrap();
        store.insert(&later).await.unwrap();

        assert_eq!(store.reset_budgets(now).await.unwrap(), 1);
        let d = store.get_by_hash(&due.token_hash).await.unwrap().unwrap();
        assert_eq!(d.spend, 0.0);
        assert_eq!(d.budget_reset_at, Some(now + chrono::Duration::hours(1)));
        assert_eq!(
            store
                .get_by_hash(&later.token_hash)
                .await
                .unwrap()
                .unwrap()
                .spend,
            2.0
        );
        assert_eq!(store.reset_budgets(now).await.unwrap(), 0, "not twice");

        // Setting a duration through update schedules the next reset.
        let u = store
            .update(
                &later.token_hash,
                &KeyUpdate {
                    budget_duration: Some(Some("2w".into())),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let next = u.budget_reset_at.unwrap();
        assert!(next > Utc::now() + chrono::Duration::days(13));
        assert!(matches!(
            store
                .update(
                    &later.token_hash,
                    &KeyUpdate {
                        budget_duration: Some(Some("soon".into())),
                        ..Default::default()
                    }
                )
                .await,
            Err(StoreError::Invalid { .. })
        ));
    }

    pub async fn cache_follows_other_replicas_and_survives_outage(db: TestDb) {
        let ours = db.open().await;
        let theirs = db.open().await; // another replica's pool on the same database
        let (key_a, rec_a) = api_key("a", Utc::now());
        ours.insert(&rec_a).await.unwrap();
        let cache = KeyCache::load(ours.clone()).await.unwrap();
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.lookup_key(&key_a).unwrap().key_alias.as_deref(),
            Some("a")
        );

        // Local write-through is visible at once.
        let upd = KeyUpdate {
            blocked: Some(true),
            ..Default::default()
        };
        cache.update(&rec_a.token_hash, &upd).await.unwrap();
        assert!(cache.lookup(&rec_a.token_hash).unwrap().blocked);

        // Another replica adds, changes and deletes keys: visible after a refresh.
        let (key_b, rec_b) = api_key("b", Utc::now());
        theirs.insert(&rec_b).await.unwrap();
        assert!(
            cache.lookup_key(&key_b).is_none(),
            "no database read on a miss"
        );
        theirs
            .update(
                &rec_a.token_hash,
                &KeyUpdate {
                    key_alias: Some(Some("a2".into())),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(cache.refresh().await.unwrap() >= 2);
        assert!(cache.lookup_key(&key_b).is_some());
        assert_eq!(
            cache
                .lookup(&rec_a.token_hash)
                .unwrap()
                .key_alias
                .as_deref(),
            Some("a2")
        );
        theirs.delete(&rec_b.token_hash).await.unwrap();
        let (new_key, _) = theirs.regenerate(&rec_a.token_hash).await.unwrap();
        cache.refresh().await.unwrap();
        assert!(cache.lookup_key(&key_b).is_none(), "deleted elsewhere");
        assert!(cache.lookup_key(&key_a).is_none(), "regenerated elsewhere");
        assert!(cache.lookup_key(&new_key).unwrap().blocked);

        // The periodic refresher picks up changes without being asked.
        let handle = cache.spawn_refresher(Duration::from_millis(50));
        let (key_c, rec_c) = api_key("c", Utc::now());
        theirs.insert(&rec_c).await.unwrap();
        let mut found = false;
        for _ in 0..100 {
            if cache.lookup_key(&key_c).is_some() {
                found = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(found, "refresher picked up the new key");
        handle.stop().await;

        // Database gone: refresh fails, lookups keep answering from memory.
        ours.close().await;
        assert!(cache.refresh().await.is_err());
        assert_eq!(cache.consecutive_failures(), 1);
        assert!(cache.lookup_key(&new_key).is_some());
        assert!(cache.lookup_key(&key_c).is_some());
        let _: &Arc<dyn KeyStore> = cache.store();
    }
}

trait MsPrecision {
    fn with_ms_precision(self) -> Self;
}

impl MsPrecision for SpendRow {
    /// Stored instants keep millisecond precision.
    fn with_ms_precision(mut self) -> Self {
        self.created_at =
            DateTime::from_timestamp_millis(self.created_at.timestamp_millis()).unwrap();
        self
    }
}
