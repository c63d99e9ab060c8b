#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may unwrap/panic (project rule); this covers the helpers too
mod common;

use common::*;
use gatehouse_testkit::embedding_for;
use serde_json::{Value, json};

async fn embed(s: &gatehouse_testkit::MockServer, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/embeddings", s.url()))
        .bearer_auth("sk")
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn float_embeddings_are_deterministic_unit_vectors() {
    let s = server().await;
    let v: Value = embed(
        &s,
        json!({"model": "text-embedding-3-small", "input": ["hello world", "bye"]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["model"], "text-embedding-3-small");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    let e0: Vec<f32> = serde_json::from_value(data[0]["embedding"].clone()).unwrap();
    assert_eq!(e0.len(), 1536);
    assert_eq!(e0, embedding_for("hello world", 1536));
    let norm: f32 = e0.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3);
    let e1: Vec<f32> = serde_json::from_value(data[1]["embedding"].clone()).unwrap();
    assert_ne!(e0, e1);
    assert_eq!(v["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
}

#[tokio::test]
async fn base64_and_dimensions() {
    let s = server().await;
    let v: Value = embed(
        &s,
        json!({"model": "text-embedding-3-large", "input": "hi", "encoding_format": "base64", "dimensions": 8}),
    )
    .await
    .json()
    .await
    .unwrap();
    let b64 = v["data"][0]["embedding"].as_str().unwrap();
    // 8 floats = 32 bytes = 44 base64 chars with padding.
    assert_eq!(b64.len(), 44);
    let decoded = decode_b64(b64);
    let floats: Vec<f32> = decoded
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(floats, embedding_for("hi", 8));
}

fn decode_b64(s: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        bits = (bits << 6) | alphabet.iter().position(|a| *a == c).unwrap() as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

#[tokio::test]
async fn embedding_validation() {
    let s = server().await;
    let resp = embed(&s, json!({"model": "text-embedding-3-small"})).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "input");

    let resp = embed(
        &s,
        json!({"model": "text-embedding-ada-002", "input": "x", "dimensions": 10}),
    )
    .await;
    assert_eq!(resp.status(), 400);

    let resp = embed(
        &s,
        json!({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "encoding_format");
}

#[tokio::test]
async fn unknown_route_is_openai_404() {
    let s = server().await;
    let resp = client()
        .post(format!("{}/v1/nope", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "Invalid URL (POST /v1/nope)");
}
