#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The response cache through the real binary over the faithful mock, which counts the
//! upstream calls: a repeated request is answered without one, in memory or through the
//! real Redis (shared by two gateway processes), with LiteLLM's per-request controls, a
//! $0 spend row marked as a hit, streams replayed whole, and broken answers never stored.
//! Tests needing Redis fail when it is not running at 127.0.0.1:6379.

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, client};
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-cache";

async fn mock() -> MockServer {
    MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap()
}

/// A config with an OpenAI-compatible and an Anthropic model over `mock`, the cache as
/// `cache_params` (YAML flow mapping) says.
fn config(mock: &MockServer, cache_params: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}/v1", api_key: sk-up}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-sonnet-4-5-20250929, api_base: "{base}", api_key: sk-up}}
  - model_name: embed
    litellm_params: {{model: openai/text-embedding-3-small, api_base: "{base}/v1", api_key: sk-up}}
litellm_settings:
  cache: true
  cache_params: {cache_params}
general_settings:
  master_key: {MASTER}
"#,
        base = mock.url()
    )
}

fn chat(text: &str) -> Value {
    json!({"model": "gpt", "messages": [{"role": "user", "content": text}]})
}

fn upstream_calls(mock: &MockServer) -> usize {
    mock.requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count()
}

async fn post(gw: &Gateway, path: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", gw.url))
        .bearer_auth(MASTER)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Status, the cache-key header and the body text.
async fn ask(gw: &Gateway, path: &str, body: &Value) -> (u16, Option<String>, String) {
    let resp = post(gw, path, body).await;
    let status = resp.status().as_u16();
    let key = resp
        .headers()
        .get("x-litellm-cache-key")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, key, resp.text().await.unwrap())
}

#[tokio::test]
async fn a_repeated_chat_is_answered_from_memory_at_no_cost() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "{type: local}"));
    let (s1, k1, first) = ask(&gw, "/v1/chat/completions", &chat("remember me")).await;
    assert_eq!((s1, k1), (200, None), "{first}");
    // Same question in another key order and with request bookkeeping that changes nothing.
    let same = json!({"messages": [{"content": "remember me", "role": "user"}], "model": "gpt",
        "user": "someone-else", "metadata": {"tags": ["a"]}});
    let resp = post(&gw, "/v1/chat/completions", &same).await;
    assert_eq!(resp.status(), 200);
    let key = resp.headers()["x-litellm-cache-key"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(key.len(), 64, "a SHA-256 hex key: {key}");
    assert_eq!(resp.headers()["x-litellm-response-cost"], "0.0000000000");
    let second = resp.text().await.unwrap();
    assert_eq!(first, second, "the stored answer, byte for byte");
    assert_eq!(upstream_calls(&mock), 1, "the hit made no upstream call");

    // What changes the answer is a different entry.
    let mut warmer = chat("remember me");
    warmer["temperature"] = json!(0.9);
    let (_, k, _) = ask(&gw, "/v1/chat/completions", &warmer).await;
    assert_eq!(k, None);
    assert_eq!(upstream_calls(&mock), 2);

    // The spend rows: the miss costs what it cost, the hit $0 and marked.
    let rows = spend_rows(&gw, 3).await;
    let hits: Vec<&Value> = rows.iter().filter(|r| r["cache_hit"] == "True").collect();
    assert_eq!(hits.len(), 1, "{rows:?}");
    assert_eq!(hits[0]["spend"], 0.0);
    assert_eq!(hits[0]["total_tokens"], 0);
    assert_eq!(hits[0]["status"], "success");
    assert_eq!(
        rows.iter().filter(|r| r["cache_hit"] == "False").count(),
        2,
        "{rows:?}"
    );
}

async fn spend_rows(gw: &Gateway, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows: Value = client()
            .get(format!("{}/spend/logs?limit=100", gw.url))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(rows) = rows.as_array()
            && rows.len() >= want
        {
            return rows.clone();
        }
        assert!(Instant::now() < deadline, "spend rows missing: {rows}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn streams_are_stored_whole_and_replayed_as_valid_streams() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "{type: local}"));
    let mut body = chat("stream me twice");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (_, k1, first) = ask(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(k1, None);
    let resp = post(&gw, "/v1/chat/completions", &body).await;
    assert!(resp.headers().contains_key("x-litellm-cache-key"));
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let second = resp.text().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(upstream_calls(&mock), 1);
    // A valid stream: role, content, finish, usage, [DONE].
    let events: Vec<Value> = second
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Echo: stream me twice");
    assert!(
        events
            .iter()
            .any(|e| e["choices"][0]["finish_reason"] == "stop")
    );
    assert!(events.last().unwrap()["usage"]["completion_tokens"].as_u64() > Some(0));
    assert!(second.ends_with("data: [DONE]\n\n"));

    // The whole answer is its own entry: a non-streaming ask goes upstream.
    let (_, k, _) = ask(&gw, "/v1/chat/completions", &chat("stream me twice")).await;
    assert_eq!(k, None);
    assert_eq!(upstream_calls(&mock), 2);
}

#[tokio::test]
async fn cut_and_errored_answers_are_never_stored() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "{type: local}"));
    let mut body = chat("break me");
    body["stream"] = json!(true);
    for reply in [
        Reply::DropMidStream {
            text: "a long answer that will be cut".into(),
            after_chunks: 2,
        },
        Reply::ErrorMidStream {
            text: "a long answer that will fail".into(),
            after_chunks: 2,
        },
    ] {
        mock.push_reply(reply);
        let (status, key, text) = ask(&gw, "/v1/chat/completions", &body).await;
        assert_eq!((status, key), (200, None), "{text}");
    }
    // An upstream error status is not stored either (a 400 is not retried elsewhere).
    mock.push_reply(Reply::Error {
        status: 400,
        body_json: json!({"error": {"message": "bad", "type": "invalid_request_error",
            "param": null, "code": null}}),
    });
    let (status, _, _) = ask(&gw, "/v1/chat/completions", &chat("break me")).await;
    assert_eq!(status, 400);
    // Nothing was stored: both ask upstream again and now get (and store) real answers.
    let (_, key, text) = ask(&gw, "/v1/chat/completions", &body).await;
    assert_eq!(key, None, "{text}");
    let (_, key, _) = ask(&gw, "/v1/chat/completions", &chat("break me")).await;
    assert_eq!(key, None);
    assert_eq!(upstream_calls(&mock), 5);
    let (_, key, _) = ask(&gw, "/v1/chat/completions", &body).await;
    assert!(key.is_some());
    assert_eq!(upstream_calls(&mock), 5);
}

#[tokio::test]
async fn per_request_controls_as_litellm_reads_them() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "{type: local, namespace: team}"));
    let q = chat("controlled");
    let (_, key, _) = ask(&gw, "/v1/chat/completions", &q).await;
    assert_eq!(key, None);
    let (_, key, _) = ask(&gw, "/v1/chat/completions", &q).await;
    let key = key.unwrap();
    assert!(key.starts_with("team:"), "the configured namespace: {key}");
    assert_eq!(upstream_calls(&mock), 1);

    let with = |cache: Value| {
        let mut b = q.clone();
        b["cache"] = cache;
        b
    };
    // no-cache: asked upstream, and the body's `cache` never reaches it.
    ask(
        &gw,
        "/v1/chat/completions",
        &with(json!({"no-cache": true})),
    )
    .await;
    assert_eq!(upstream_calls(&mock), 2);
    assert!(mock.last_request().unwrap().body.get("cache").is_none());
    // The Cache-Control header says the same.
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(MASTER)
        .header("cache-control", "no-cache")
        .json(&q)
        .send()
        .await
        .unwrap();
    assert!(!resp.headers().contains_key("x-litellm-cache-key"));
    assert_eq!(upstream_calls(&mock), 3);
    // s-maxage: an answer older than that is not good enough.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, key, _) = ask(&gw, "/v1/chat/completions", &with(json!({"s-maxage": 1}))).await;
    assert_eq!(key, None);
    assert_eq!(upstream_calls(&mock), 4);
    // Another namespace is another cache.
    let (_, key, _) = ask(
        &gw,
        "/v1/chat/completions",
        &with(json!({"namespace": "other"})),
    )
    .await;
    assert_eq!(key, None);
    let (_, key, _) = ask(
        &gw,
        "/v1/chat/completions",
        &with(json!({"namespace": "other"})),
    )
    .await;
    assert!(key.unwrap().starts_with("other:"));
    assert_eq!(upstream_calls(&mock), 5);

    // no-store: answered, never kept.
    let fresh = |cache: Value| {
        let mut b = chat("not kept");
        b["cache"] = cache;
        b
    };
    ask(
        &gw,
        "/v1/chat/completions",
        &fresh(json!({"no-store": true})),
    )
    .await;
    let (_, key, _) = ask(&gw, "/v1/chat/completions", &fresh(json!({}))).await;
    assert_eq!(key, None);
    assert_eq!(upstream_calls(&mock), 7);
    // ttl: gone after it.
    ask(&gw, "/v1/chat/completions", &with_ttl("short-lived", 1)).await;
    let (_, key, _) = ask(&gw, "/v1/chat/completions", &with_ttl("short-lived", 1)).await;
    assert!(key.is_some());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (_, key, _) = ask(&gw, "/v1/chat/completions", &with_ttl("short-lived", 1)).await;
    assert_eq!(key, None);
    assert_eq!(upstream_calls(&mock), 9);

    // A malformed control is the client's error, in the client's dialect.
    let (status, _, text) = ask(&gw, "/v1/chat/completions", &with(json!("yes"))).await;
    assert_eq!(status, 400);
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["param"], "cache", "{err}");
}

fn with_ttl(text: &str, ttl: u64) -> Value {
    let mut b = chat(text);
    b["cache"] = json!({"ttl": ttl});
    b
}

#[tokio::test]
async fn default_off_caches_only_requests_that_opt_in_and_only_listed_apis() {
    let mock = mock().await;
    let gw = Gateway::start(&config(
        &mock,
        "{type: local, mode: default_off, supported_call_types: [acompletion, anthropic_messages]}",
    ));
    let q = chat("opt in");
    ask(&gw, "/v1/chat/completions", &q).await;
    let (_, key, _) = ask(&gw, "/v1/chat/completions", &q).await;
    assert_eq!(key, None, "not opted in");
    assert_eq!(upstream_calls(&mock), 2);
    let mut opted = q.clone();
    opted["cache"] = json!({"use-cache": true});
    ask(&gw, "/v1/chat/completions", &opted).await;
    let (_, key, _) = ask(&gw, "/v1/chat/completions", &opted).await;
    assert!(key.is_some());
    assert_eq!(upstream_calls(&mock), 3);

    // Anthropic Messages is listed: its answers are cached, streamed or not.
    for stream in [false, true] {
        let m = json!({"model": "claude", "max_tokens": 32, "stream": stream,
            "messages": [{"role": "user", "content": "messages cached"}],
            "cache": {"use-cache": true}});
        let (_, k1, a) = ask(&gw, "/v1/messages", &m).await;
        let (_, k2, b) = ask(&gw, "/v1/messages", &m).await;
        assert_eq!(k1, None);
        assert!(k2.is_some(), "stream={stream}: {b}");
        assert_eq!(a, b);
        if stream {
            assert!(b.contains("event: message_stop"), "{b}");
        }
    }
    assert_eq!(upstream_calls(&mock), 5);
    // Embeddings are not listed: never cached.
    let e = json!({"model": "embed", "input": "vectors", "cache": {"use-cache": true}});
    ask(&gw, "/v1/embeddings", &e).await;
    let (status, key, _) = ask(&gw, "/v1/embeddings", &e).await;
    assert_eq!((status, key), (200, None));
    assert_eq!(upstream_calls(&mock), 7);
}

#[tokio::test]
async fn embeddings_and_responses_are_cached() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "{type: local}"));
    let e = json!({"model": "embed", "input": ["one", "two"]});
    let (_, _, a) = ask(&gw, "/v1/embeddings", &e).await;
    let (_, key, b) = ask(&gw, "/v1/embeddings", &e).await;
    assert!(key.is_some());
    assert_eq!(a, b);
    let r = json!({"model": "gpt", "input": "responses cached", "store": false});
    let (_, _, a) = ask(&gw, "/v1/responses", &r).await;
    let (_, key, b) = ask(&gw, "/v1/responses", &r).await;
    assert!(key.is_some(), "{b}");
    assert_eq!(a, b);
    assert_eq!(upstream_calls(&mock), 2);
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

fn redis_alive() {
    let mut conn = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:6379".parse().unwrap(),
        Duration::from_secs(2),
    )
    .expect("Redis must be running at 127.0.0.1:6379 for this test");
    use std::io::{Read, Write};
    conn.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
}

#[tokio::test]
async fn two_gateways_share_answers_through_redis() {
    redis_alive();
    let mock = mock().await;
    let ns = format!("gh-test-{}", uuid_like());
    let cfg = config(
        &mock,
        &format!("{{type: redis, host: 127.0.0.1, port: 6379, namespace: {ns}, ttl: 60}}"),
    );
    let one = Gateway::start(&cfg);
    let two = Gateway::start(&cfg);
    for stream in [false, true] {
        let mut q = chat("shared between replicas");
        q["stream"] = json!(stream);
        let (_, key, a) = ask(&one, "/v1/chat/completions", &q).await;
        assert_eq!(key, None);
        // The write is queued off the request path; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        let (key, b) = loop {
            let (_, key, b) = ask(&two, "/v1/chat/completions", &q).await;
            if key.is_some() || Instant::now() > deadline {
                break (key, b);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let key = key.expect("replica two answered from replica one's entry");
        assert!(key.starts_with(&format!("{ns}:")));
        assert_eq!(a, b, "stream={stream}");
    }
    let calls = upstream_calls(&mock);
    assert!(
        calls <= 4,
        "at most the misses before the entry landed went upstream: {calls}"
    );
    let health: Value = client()
        .get(format!("{}/health", two.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["cache"]["type"], "redis");
    assert_eq!(health["cache"]["status"], "healthy");
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// A Redis of the test's own on a free port, so the test can stop it.
struct OwnRedis {
    child: std::process::Child,
    port: u16,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        OwnRedis { child, port }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn redis_down_serves_uncached_and_says_so_once() {
    let mut redis = OwnRedis::start();
    let mock = mock().await;
    let gw = Gateway::start(&config(
        &mock,
        &format!("{{type: redis, host: 127.0.0.1, port: {}}}", redis.port),
    ));
    let q = chat("while redis lives");
    ask(&gw, "/v1/chat/completions", &q).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while ask(&gw, "/v1/chat/completions", &q).await.1.is_none() {
        assert!(Instant::now() < deadline, "never served from Redis");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    let before = upstream_calls(&mock);
    for i in 0..5 {
        let (status, key, text) = ask(&gw, "/v1/chat/completions", &q).await;
        assert_eq!(
            (status, key),
            (200, None),
            "request {i} with Redis down: {text}"
        );
        assert!(text.contains("Echo: while redis lives"), "{text}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(upstream_calls(&mock), before + 5);
    let health: Value = client()
        .get(format!("{}/health", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["cache"]["status"], "unavailable", "{health}");
    let logs = gw.logs();
    assert_eq!(
        logs.matches("Redis response cache unavailable").count(),
        1,
        "said once:\n{logs}"
    );
}

// ---------------------------------------------------------------------------------------
// Server-side tool execution
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn tool_loop_answers_are_cached_only_when_every_tool_called_is_cacheable() {
    let mock = mock().await;
    let cfg = format!(
        r#"
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}/v1", api_key: sk-up}}
mcp_servers:
  ev:
    transport: stdio
    command: node
    args: ["{everything}", "stdio"]
litellm_settings:
  cache: true
  cache_params: {{type: local, cacheable_tools: [ev/get-sum]}}
general_settings:
  master_key: {MASTER}
"#,
        base = mock.url(),
        everything = common::everything()
    );
    let gw = Gateway::start(&cfg);
    let ask_tools = |prompt: &str| {
        let body = json!({"model": "gpt", "messages": [{"role": "user", "content": prompt}]});
        let url = format!("{}/v1/chat/completions", gw.url);
        async move {
            let resp = client()
                .post(url)
                .bearer_auth(MASTER)
                .header("x-mcp-servers", "ev")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let hit = resp.headers().contains_key("x-litellm-cache-key");
            let body: Value = resp.json().await.unwrap();
            (hit, body)
        }
    };
    // A tool marked cacheable: the second ask is a hit, no model round, no tool call.
    let sum = r#"CALL ev-get-sum {"a": 2, "b": 3}"#;
    let (hit, first) = ask_tools(sum).await;
    assert!(!hit);
    assert_eq!(first["mcp_calls"][0]["tool"], "get-sum", "{first}");
    assert!(
        first["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains('5')
    );
    let calls = upstream_calls(&mock);
    let (hit, second) = ask_tools(sum).await;
    assert!(hit);
    assert_eq!(first, second);
    assert_eq!(upstream_calls(&mock), calls);

    // A tool not listed (side effects are the operator's to vouch for): never stored.
    let echo = r#"CALL ev-echo {"message": "side effect"}"#;
    ask_tools(echo).await;
    let calls = upstream_calls(&mock);
    let (hit, body) = ask_tools(echo).await;
    assert!(!hit, "{body}");
    assert_eq!(
        upstream_calls(&mock),
        calls + 2,
        "both model rounds ran again"
    );
}
