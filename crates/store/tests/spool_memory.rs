#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! A dead replica's spool of many megabytes is adopted and written with bounded memory:
//! memory never holds more than the writer's window of rows plus a few read chunks,
//! however large the file. Its own binary, because it reads the process's peak resident
//! memory (reset just before, through /proc/self/clear_refs).

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::Utc;
use gatehouse_store::{SpendRow, SpendWriter, SpendWriterConfig};

/// A field of /proc/self/status in KiB (`VmRSS:`, `VmHWM:`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

const ROWS: usize = 20_000;

fn row(i: usize) -> SpendRow {
    SpendRow {
        request_id: format!("adopted-{i}"),
        key_hash: "k".repeat(64),
        model: "gpt-4o-mini".into(),
        deployment: Some("openai/gpt-4o-mini".into()),
        prompt_tokens: 12,
        completion_tokens: 34,
        cost: 0.0,
        latency_ms: 5,
        status: "success".into(),
        // About two kilobytes per line, as a request with a few tool calls logs.
        mcp_calls: serde_json::json!([{"server": "fs", "tool": "read", "args": "x".repeat(1800)}]),
        cache_hit: false,
        created_at: Utc::now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spool_of_many_megabytes_is_adopted_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    // A replica that died with 20,000 rows unwritten, the last one cut off mid-line.
    let orphan = spool.join("spend-1-0-0.jsonl");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&orphan).unwrap());
    for i in 0..ROWS {
        serde_json::to_writer(&mut out, &row(i)).unwrap();
        out.write_all(b"\n").unwrap();
    }
    out.write_all(br#"{"request_id":"cut-off","key_h"#).unwrap();
    out.into_inner().unwrap().sync_all().unwrap();
    let size = std::fs::metadata(&orphan).unwrap().len();
    assert!(size > 35 << 20, "{size} bytes");

    let url = format!("sqlite://{}", dir.path().join("g.db").display());
    let store = gatehouse_store::open(&url).await.unwrap();
    // The peak resident size starts over from here.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let baseline = status_kib("VmRSS:");
    let writer = SpendWriter::spawn(
        store.clone(),
        SpendWriterConfig {
            spool_dir: Some(spool.clone()),
            flush_interval: Duration::from_millis(10),
            batch_size: 500,
            max_pending: 500,
            ..SpendWriterConfig::default()
        },
    );
    let started = Instant::now();
    while writer.stats().spend_written < ROWS as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{:?}",
            writer.stats()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    writer.shutdown().await;
    let peak = (status_kib("VmHWM:").saturating_sub(baseline)) << 10;
    let stats = writer.stats();
    assert_eq!(stats.spend_written, ROWS as u64, "{stats:?}");
    assert_eq!(stats.adopted, ROWS as u64, "the cut-off line is skipped");
    assert_eq!((stats.spooled, stats.dropped), (0, 0), "{stats:?}");
    assert!(!orphan.exists(), "the orphan is gone once adopted");
    // 500 rows of two kilobytes in memory, the database's batch, read chunks, the
    // allocator's per-thread arenas: some megabytes, not the file's forty (reading it
    // whole, as adoption once did, took more than the file's size).
    assert!(
        peak < size / 2,
        "peak resident memory +{} MiB while adopting a {} MiB spool",
        peak >> 20,
        size >> 20
    );
    eprintln!(
        "adopted {ROWS} rows ({} MiB) in {:?}, peak resident memory +{} MiB",
        size >> 20,
        started.elapsed(),
        peak >> 20
    );
}
