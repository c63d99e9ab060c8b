#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Upstream garbage that today is relayed as a success or drops the connection: these
//! assert the 502s (and the in-band stream error) issue 12 asks for.
//!

mod common;
mod garbage;

use garbage::*;

#[tokio::test]
async fn array_on_the_plain_path_is_a_502() {
    garbage_is_a_502(Garbage::Array, plain()).await;
}

#[tokio::test]
async fn truncated_json_on_the_plain_path_is_a_502() {
    garbage_is_a_502(Garbage::Truncated, plain()).await;
}

#[tokio::test]
async fn html_on_the_plain_path_is_a_502() {
    garbage_is_a_502(Garbage::Html, plain()).await;
}
