#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Upstreams answering garbage (see `garbage/mod.rs`): a clear 502 where the gateway reads
//! the answer itself (tool loop), an in-band error for a stream cut before `[DONE]`, no
//! endless wait or buffering for an endless body, and a live server whatever the plain
//! path relays. The stricter 502s of the plain path wait in `pending/garbage_upstream.rs`.

mod common;
mod garbage;

use std::time::{Duration, Instant};

use common::Gateway;
use garbage::*;
use serde_json::json;

#[tokio::test]
async fn html_on_the_tool_loop_path_is_a_502() {
    garbage_is_a_502(Garbage::Html, tool_loop()).await;
}

#[tokio::test]
async fn truncated_json_on_the_tool_loop_path_is_a_502() {
    garbage_is_a_502(Garbage::Truncated, tool_loop()).await;
}

#[tokio::test]
async fn an_endless_body_ends_in_a_timeout_and_bounded_memory() {
    let gw = Gateway::start(&config(&upstream(Garbage::Endless).await));
    let started = Instant::now();
    let (status, text) = chat(&gw, plain()).await;
    assert!(
        matches!(status, 502 | 504),
        "{status}: {}",
        &text[..text.len().min(300)]
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_alive(&gw).await;
    // The gateway did not keep the garbage: its resident memory stays small.
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.pid())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(rss_kb < 200 * 1024, "RSS {rss_kb} kB after an endless body");
}

#[tokio::test]
async fn garbage_on_the_plain_path_never_kills_the_server() {
    for g in [Garbage::Array, Garbage::Truncated, Garbage::Html] {
        let gw = Gateway::start(&config(&upstream(g).await));
        for _ in 0..3 {
            let _ = chat(&gw, plain()).await;
        }
        assert_alive(&gw).await;
    }
}

#[tokio::test]
async fn array_on_the_tool_loop_path_is_a_502() {
    garbage_is_a_502(Garbage::Array, tool_loop()).await;
}

#[tokio::test]
async fn a_stream_without_done_ends_with_an_in_band_error() {
    let gw = Gateway::start(&config(&upstream(Garbage::StreamWithoutDone).await));
    let mut body = plain();
    body["stream"] = json!(true);
    let (status, text) = chat(&gw, body).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Hel"), "{text}");
    assert!(
        text.contains("\"error\""),
        "no in-band error at the end: {text}"
    );
    assert_alive(&gw).await;
}
