#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! What replicas over one Postgres rely on: change notifications reach another process's
//! cache within a second, scheduled work runs on one replica at a time, and spend added
//! on the request path survives a refresh until the writer has stored it.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Backend, run};
use gatehouse_store::{
    KeyCache, KeyRecord, KeySource, KeyUpdate, SpendRow, SpendWriter, SpendWriterConfig,
};
use sqlx::Connection;

fn record(key: &str) -> KeyRecord {
    KeyRecord::new(key, KeySource::Api, Utc::now())
}

#[tokio::test]
async fn a_change_through_one_store_reaches_another_cache_within_a_second() {
    run(Backend::Postgres, |db| {
        Box::pin(async move {
            let here = db.open().await;
            let there = db.open().await;
            let cache = KeyCache::load(there.clone()).await.unwrap();
            // A periodic refresh far beyond the test: only the notification can do it.
            let refresher = cache.spawn_refresher(Duration::from_secs(3600));
            // The listener connects in the background; give it its first round.
            tokio::time::sleep(Duration::from_millis(300)).await;

            let rec = record("sk-notified");
            let hash = rec.token_hash.clone();
            here.insert(&rec).await.unwrap();
            let seen = wait(|| cache.lookup(&hash).is_some()).await;
            assert!(seen < Duration::from_secs(1), "insert seen after {seen:?}");

            let block = KeyUpdate {
                blocked: Some(true),
                ..KeyUpdate::default()
            };
            here.update(&hash, &block).await.unwrap();
            let seen = wait(|| cache.lookup(&hash).is_some_and(|k| k.blocked)).await;
            assert!(seen < Duration::from_secs(1), "block seen after {seen:?}");

            here.add_spend_many(&[(hash.clone(), 2.5)]).await.unwrap();
            let seen = wait(|| cache.lookup(&hash).is_some_and(|k| k.spend == 2.5)).await;
            assert!(seen < Duration::from_secs(1), "spend seen after {seen:?}");

            here.delete(&hash).await.unwrap();
            let seen = wait(|| cache.lookup(&hash).is_none()).await;
            assert!(seen < Duration::from_secs(1), "delete seen after {seen:?}");
            refresher.stop().await;
        })
    })
    .await;
}

async fn wait(mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(5), "never happened");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn budget_resets_wait_while_another_replica_holds_the_job() {
    run(Backend::Postgres, |db| {
        Box::pin(async move {
            let store = db.open().await;
            let mut rec = record("sk-reset");
            rec.spend = 3.0;
            rec.budget_duration = Some("1d".into());
            rec.budget_reset_at = Some(Utc::now() - chrono::Duration::seconds(5));
            let hash = rec.token_hash.clone();
            store.insert(&rec).await.unwrap();

            // Another replica is doing the job.
            let mut other = sqlx::postgres::PgConnection::connect(&db.url)
                .await
                .unwrap();
            sqlx::query("SELECT pg_advisory_lock($1)")
                .bind(gatehouse_store::BUDGET_RESET_JOB)
                .execute(&mut other)
                .await
                .unwrap();
            assert_eq!(store.reset_budgets(Utc::now()).await.unwrap(), 0);
            assert_eq!(store.get_by_hash(&hash).await.unwrap().unwrap().spend, 3.0);

            sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(gatehouse_store::BUDGET_RESET_JOB)
                .execute(&mut other)
                .await
                .unwrap();
            assert_eq!(store.reset_budgets(Utc::now()).await.unwrap(), 1);
            let after = store.get_by_hash(&hash).await.unwrap().unwrap();
            assert_eq!(after.spend, 0.0);
            assert!(after.budget_reset_at > Some(Utc::now()));
        })
    })
    .await;
}

fn spend(key_hash: &str, i: usize, cost: f64) -> SpendRow {
    SpendRow {
        request_id: format!("req-{i}"),
        key_hash: key_hash.into(),
        model: "m".into(),
        deployment: None,
        prompt_tokens: 1,
        completion_tokens: 1,
        cost,
        latency_ms: 1,
        status: "success".into(),
        mcp_calls: serde_json::Value::Null,
        cache_hit: false,
        created_at: Utc::now(),
    }
}

#[tokio::test]
async fn spend_not_yet_written_survives_refreshes_and_is_counted_once() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        run(backend, |db| {
            Box::pin(async move {
                let store = db.open().await;
                let rec = record("sk-spender");
                let hash = rec.token_hash.clone();
                store.insert(&rec).await.unwrap();
                let cache = KeyCache::load(store.clone()).await.unwrap();
                let writer = SpendWriter::spawn_with_cache(
                    store.clone(),
                    Some(cache.clone()),
                    SpendWriterConfig {
                        flush_interval: Duration::from_secs(3600),
                        ..SpendWriterConfig::default()
                    },
                );
                for i in 0..4 {
                    assert!(writer.try_log(spend(&hash, i, 0.25)));
                }
                assert_eq!(cache.lookup(&hash).unwrap().spend, 1.0, "counted at once");
                // Another replica's spend lands in the database meanwhile.
                store.add_spend_many(&[(hash.clone(), 2.0)]).await.unwrap();
                cache.refresh().await.unwrap();
                assert_eq!(
                    cache.lookup(&hash).unwrap().spend,
                    3.0,
                    "the refresh keeps what this replica has not written yet"
                );
                // Written at shutdown: the database has it, and the cache counts it once.
                writer.shutdown().await;
                assert_eq!(store.get_by_hash(&hash).await.unwrap().unwrap().spend, 3.0);
                assert_eq!(cache.unflushed_spend(), 0.0);
                cache.refresh().await.unwrap();
                assert_eq!(cache.lookup(&hash).unwrap().spend, 3.0);
            })
        })
        .await;
    }
}

#[tokio::test]
async fn rows_a_writer_could_not_store_are_written_by_the_next_one() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        run(backend, |db| {
            Box::pin(async move {
                let store = db.open().await;
                let rec = record("sk-spooled");
                let hash = rec.token_hash.clone();
                store.insert(&rec).await.unwrap();
                let spool = tempfile::tempdir().unwrap();
                let config = SpendWriterConfig {
                    spool_dir: Some(spool.path().to_path_buf()),
                    flush_interval: Duration::from_secs(3600),
                    batch_size: 10_000,
                    // Memory holds 8; the rest wait on disk only.
                    max_pending: 8,
                    ..SpendWriterConfig::default()
                };
                let first = SpendWriter::spawn(store.clone(), config.clone());
                for i in 0..30 {
                    assert!(first.try_log(spend(&hash, i, 0.5)));
                }
                // The spool's thread appends them within moments.
                let started = Instant::now();
                while first.stats().spooled < 30 {
                    assert!(
                        started.elapsed() < Duration::from_secs(1),
                        "{:?}",
                        first.stats()
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                assert_eq!(first.stats().spooled, 30);
                // The database goes away before anything was written, and the writer stops.
                store.close().await;
                first.shutdown().await;
                let stats = first.stats();
                assert_eq!((stats.spend_written, stats.dropped), (0, 0), "{stats:?}");
                drop(first);
                assert_eq!(
                    db.scalar("SELECT COUNT(*) FROM gatehouse_spend_logs").await,
                    0
                );

                let store = db.open().await;
                let second = SpendWriter::spawn(
                    store.clone(),
                    SpendWriterConfig {
                        flush_interval: Duration::from_millis(50),
                        ..config
                    },
                );
                assert_eq!(second.stats().adopted, 30);
                let started = Instant::now();
                while second.stats().spooled > 0 {
                    assert!(
                        started.elapsed() < Duration::from_secs(5),
                        "{:?}",
                        second.stats()
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                second.shutdown().await;
                assert_eq!(
                    db.scalar("SELECT COUNT(*) FROM gatehouse_spend_logs").await,
                    30
                );
                let distinct = db
                    .scalar("SELECT COUNT(DISTINCT request_id) FROM gatehouse_spend_logs")
                    .await;
                assert_eq!(distinct, 30, "each row once");
                assert_eq!(store.get_by_hash(&hash).await.unwrap().unwrap().spend, 15.0);
            })
        })
        .await;
    }
}

/// What spend propagation costs: two replicas (store, cache, refresher, spend writer
/// flushing every 250 ms as the binary does on Postgres) both serving a steady load over
/// many keys. Each spend batch tells the other replica the keys' new spend in the change
/// signal itself, so no replica re-reads keys because spend moved; the spend is still
/// visible on the other replica within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_reaches_the_other_replica_without_re_reading_keys() {
    run(Backend::Postgres, |db| {
        Box::pin(async move {
            const KEYS: usize = 50;
            const RATE: u64 = 200; // requests per second per replica
            const SECONDS: u64 = 3;
            let setup = db.open().await;
            let mut hashes = Vec::new();
            for i in 0..KEYS {
                let rec = record(&format!("sk-load-{i}"));
                hashes.push(rec.token_hash.clone());
                setup.insert(&rec).await.unwrap();
            }
            let mut replicas = Vec::new();
            for _ in 0..2 {
                let store = db.open().await;
                let cache = KeyCache::load(store.clone()).await.unwrap();
                // Far beyond the test: every read below comes from a change signal.
                let refresher = cache.spawn_refresher(Duration::from_secs(3600));
                let writer = SpendWriter::spawn_with_cache(
                    store,
                    Some(cache.clone()),
                    SpendWriterConfig {
                        flush_interval: Duration::from_millis(250),
                        ..SpendWriterConfig::default()
                    },
                );
                replicas.push((cache, refresher, writer));
            }
            // Both listeners connected (each reads once as it does).
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before: Vec<_> = replicas.iter().map(|r| r.0.activity()).collect();
            let started = Instant::now();
            let mut sent = 0u64;
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            while started.elapsed() < Duration::from_secs(SECONDS) {
                tick.tick().await;
                for _ in 0..RATE / 100 {
                    for (r, (_, _, writer)) in replicas.iter().enumerate() {
                        let key = &hashes[(sent as usize + r) % KEYS];
                        assert!(writer.try_log(spend(key, sent as usize, 0.01)));
                    }
                    sent += 1;
                }
            }
            let took = started.elapsed().as_secs_f64();
            // The last batches are written within a flush interval; from then on,
            // everything spent, on both replicas, is seen by both within a second.
            let total = sent as f64 * 2.0 * 0.01;
            let written = Instant::now();
            while replicas.iter().map(|r| r.2.stats().spend_written).sum::<u64>() < 2 * sent {
                assert!(written.elapsed() < Duration::from_secs(5), "writers stuck");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let visible = Instant::now();
            for (cache, _, _) in &replicas {
                loop {
                    let seen: f64 = hashes.iter().map(|h| cache.lookup(h).unwrap().spend).sum();
                    if (seen - total).abs() < 1e-6 {
                        break;
                    }
                    // Under a second on a quiet machine (measured 0.3 s); the bound
                    // leaves room for the whole suite running beside it on two cores.
                    assert!(
                        visible.elapsed() < Duration::from_secs(2),
                        "spend seen {seen}, spent {total}, {:?}",
                        cache.activity()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            let reads: Vec<_> = replicas
                .iter()
                .zip(&before)
                .map(|(r, b)| {
                    let a = r.0.activity();
                    (a.reads - b.reads, a.rows_read - b.rows_read, a.spend_updates - b.spend_updates)
                })
                .collect();
            eprintln!(
                "{} req/s per replica over {KEYS} keys for {took:.1} s: (reads, rows read, spend updates applied) per replica {reads:?}; {:.1} reads/s",
                RATE,
                reads.iter().map(|r| r.0).sum::<u64>() as f64 / took
            );
            for (reads, _, updates) in &reads {
                assert!(*reads <= 1, "re-reads for spend: {reads:?}");
                assert!(*updates > 0, "spend arrived in the signal");
            }
            for (_, refresher, writer) in replicas {
                writer.shutdown().await;
                refresher.stop().await;
            }
        })
    })
    .await;
}
