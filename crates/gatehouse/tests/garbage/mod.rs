//! A fake OpenAI-compatible upstream answering garbage, and the checks the garbage tests
//! share (`attacker_garbage.rs` runs now; `pending/garbage_upstream.rs` after the
//! pipeline rewrite).

#![allow(dead_code)]

use std::time::{Duration, Instant};

use crate::common::{Gateway, client, everything};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How the fake upstream answers every request.
#[derive(Clone, Copy)]
pub enum Garbage {
    /// 200 with a JSON array.
    Array,
    /// 200, `Content-Length` right, JSON cut in the middle.
    Truncated,
    /// 200 with an HTML page (a captive portal, a proxy's login page).
    Html,
    /// 200, chunked, never ends (throttled: 64 KiB every 10 ms).
    Endless,
    /// 200 SSE with one chunk, then the connection closes without `[DONE]`.
    StreamWithoutDone,
}

/// A raw HTTP/1.1 server answering `garbage` on 127.0.0.1; returns its base URL.
pub async fn upstream(garbage: Garbage) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // Read the request head and body (enough for our small requests).
                let mut buf = vec![0u8; 64 * 1024];
                let _ = tokio::time::timeout(Duration::from_millis(200), sock.read(&mut buf)).await;
                let head = |ct: &str, len: usize| {
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ncontent-length: {len}\r\nconnection: close\r\n\r\n"
                    )
                };
                match garbage {
                    Garbage::Array => {
                        let body = "[1,2,3]";
                        let _ = sock
                            .write_all(
                                format!("{}{body}", head("application/json", body.len()))
                                    .as_bytes(),
                            )
                            .await;
                    }
                    Garbage::Truncated => {
                        let body = r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"mess"#;
                        let _ = sock
                            .write_all(
                                format!("{}{body}", head("application/json", body.len()))
                                    .as_bytes(),
                            )
                            .await;
                    }
                    Garbage::Html => {
                        let body = "<html><body><h1>Please log in</h1></body></html>";
                        let _ = sock
                            .write_all(
                                format!("{}{body}", head("text/html", body.len())).as_bytes(),
                            )
                            .await;
                    }
                    Garbage::Endless => {
                        let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n").await;
                        let chunk = format!("10000\r\n{}\r\n", "[".repeat(0x10000));
                        let started = Instant::now();
                        // Bounded: the test never runs longer than this anyway.
                        while started.elapsed() < Duration::from_secs(30) {
                            if sock.write_all(chunk.as_bytes()).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    Garbage::StreamWithoutDone => {
                        let event = r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}"#;
                        let _ = sock.write_all(format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n{event}\n\n").as_bytes()).await;
                    }
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/v1")
}

pub fn config(base: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: bad
    litellm_params: {{model: openai/bad, api_base: "{base}", timeout: 3, stream_timeout: 3}}
mcp_servers:
  ev:
    command: node
    args: ["{ev}", "stdio"]
litellm_settings:
  num_retries: 0
"#,
        ev = everything()
    )
}

pub async fn assert_alive(gw: &Gateway) {
    let resp = client()
        .get(format!("{}/health/liveliness", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the server died: {}", gw.logs());
}

pub async fn chat(gw: &Gateway, body: Value) -> (u16, String) {
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("the gateway answered (no dropped connection)");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

pub fn plain() -> Value {
    json!({"model": "bad", "messages": [{"role": "user", "content": "hi"}]})
}

/// With an MCP tool, so the gateway runs its tool loop and reads the answer itself.
pub fn tool_loop() -> Value {
    json!({"model": "bad", "messages": [{"role": "user", "content": "hi"}],
           "tools": [{"type": "mcp", "server_label": "ev", "server_url": "litellm_proxy",
                      "require_approval": "never"}]})
}

pub async fn garbage_is_a_502(garbage: Garbage, body: Value) {
    let gw = Gateway::start(&config(&upstream(garbage).await));
    let (status, text) = chat(&gw, body).await;
    assert_eq!(status, 502, "{text}");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert!(err["error"]["message"].is_string(), "{text}");
    assert_alive(&gw).await;
}
