#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Upstream garbage that today is relayed as a success or drops the connection: these
//! assert the 502s (and the in-band stream error) issue 12 asks for.
//!
//! PENDING the request pipeline rewrite (the lead's, issues 11/12): this file is not a test
//! target yet (Cargo does not look into `tests/pending/`). Enable it with, in
//! `crates/gatehouse/Cargo.toml`:
//! `[[test]] name = "garbage_upstream" path = "tests/pending/garbage_upstream.rs"`.
//! Failing on main at the time of writing (5): array plain (200 `[1,2,3]` relayed),
//! array tool loop (connection dropped), truncated JSON plain (200 relayed), HTML plain
//! (200 relayed), stream without `[DONE]` (no in-band error).

#[path = "../common/mod.rs"]
mod common;
#[path = "../garbage/mod.rs"]
mod garbage;

use common::Gateway;
use garbage::*;
use serde_json::json;

#[tokio::test]
async fn array_on_the_plain_path_is_a_502() {
    garbage_is_a_502(Garbage::Array, plain()).await;
}

#[tokio::test]
async fn array_on_the_tool_loop_path_is_a_502() {
    garbage_is_a_502(Garbage::Array, tool_loop()).await;
}

#[tokio::test]
async fn truncated_json_on_the_plain_path_is_a_502() {
    garbage_is_a_502(Garbage::Truncated, plain()).await;
}

#[tokio::test]
async fn html_on_the_plain_path_is_a_502() {
    garbage_is_a_502(Garbage::Html, plain()).await;
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
