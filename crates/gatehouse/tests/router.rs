#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The router through the real binary: several faithful vendor mocks in one model group,
//! scripted to fail, stall or drop, and the client's view of what happens (status, body,
//! `x-litellm-*` headers) plus which mock was asked (their recorded requests).

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, client};
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-router";
const CHAT: &str = "/v1/chat/completions";

// ---------------------------------------------------------------------------------------
// Mocks, config, requests
// ---------------------------------------------------------------------------------------

async fn healthy() -> MockServer {
    MockServer::start(MockOptions::default()).await.unwrap()
}

/// A mock answering every chat request with `status` (vendor-shaped body).
async fn failing(status: u16) -> MockServer {
    MockServer::start(MockOptions {
        fail_every_n: Some(1),
        fail_status: status,
        ..MockOptions::default()
    })
    .await
    .unwrap()
}

async fn slow(latency: Duration) -> MockServer {
    MockServer::start(MockOptions {
        latency,
        ..MockOptions::default()
    })
    .await
    .unwrap()
}

/// Chat requests this mock received.
fn asked(mock: &MockServer) -> usize {
    mock.requests_to(CHAT).len()
}

/// Anthropic Messages requests this mock received.
fn asked_messages(mock: &MockServer) -> usize {
    mock.requests_to("/v1/messages").len()
}

/// One `model_list` entry: `group` served by `mock` as `openai/gpt-4o-mini`, with
/// `model_info.id: id` and extra `litellm_params` lines (`"order: 1"`).
fn member(group: &str, id: &str, mock: &MockServer, params: &[&str]) -> String {
    member_as(group, id, "openai/gpt-4o-mini", mock, params)
}

/// [`member`] with another upstream `model` (`anthropic/claude-...`).
fn member_as(group: &str, id: &str, model: &str, mock: &MockServer, params: &[&str]) -> String {
    let mut out = format!(
        "  - model_name: {group}\n    litellm_params:\n      model: {model}\n      api_base: {}\n      api_key: sk-upstream\n",
        mock.url()
    );
    for p in params {
        out.push_str(&format!("      {p}\n"));
    }
    out.push_str(&format!("    model_info:\n      id: {id}\n"));
    out
}

/// A config over `members`, with `router_settings` given as indented YAML lines.
fn config(members: &[String], router_settings: &str) -> String {
    let mut out = String::from("model_list:\n");
    for m in members {
        out.push_str(m);
    }
    if !router_settings.trim().is_empty() {
        out.push_str("router_settings:\n");
        for line in router_settings.trim_matches('\n').lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out.push_str(&format!("general_settings:\n  master_key: {MASTER}\n"));
    out
}

async fn post(gw: &Gateway, body: Value) -> reqwest::Response {
    post_at(format!("{}{CHAT}", gw.url), MASTER, &body).await
}

async fn post_at(url: String, key: &str, body: &Value) -> reqwest::Response {
    client()
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get_json(gw: &Gateway, path: &str) -> Value {
    let resp = client()
        .get(format!("{}{path}", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "GET {path}");
    resp.json().await.unwrap()
}

/// The ids `/v1/models` lists.
async fn model_ids(gw: &Gateway) -> Vec<String> {
    let models = get_json(gw, "/v1/models").await;
    models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `/spend/logs` once it has a row (rows are written off the request path).
async fn spend_rows(gw: &Gateway) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows = get_json(gw, "/spend/logs").await;
        if let Some(rows) = rows.as_array().filter(|r| !r.is_empty()) {
            return rows.clone();
        }
        assert!(Instant::now() < deadline, "no spend row");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn ask(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

fn ask_stream(model: &str, text: &str) -> Value {
    json!({"model": model, "stream": true, "messages": [{"role": "user", "content": text}]})
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", resp.headers()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Which deployment answered (`x-litellm-model-id`).
fn served_by(resp: &reqwest::Response) -> String {
    header(resp, "x-litellm-model-id")
}

/// A non-streamed answer: 200 and the mock's echo of `text`; returns the serving id.
async fn expect_answer(resp: reqwest::Response, text: &str) -> String {
    let status = resp.status();
    let id = resp
        .headers()
        .get("x-litellm-model-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        format!("Echo: {text}"),
        "{body}"
    );
    id.expect("x-litellm-model-id")
}

/// A streamed answer's `data:` payloads, in order.
fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: ").map(str::to_owned))
        .collect()
}

/// The text of a chat completion stream's deltas.
fn chat_stream_text(body: &str) -> String {
    sse_data(body)
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// A streamed answer: 200, SSE, the echo of `text` and `[DONE]` last; returns the
/// serving id and the chunks (without `[DONE]`).
async fn expect_stream(resp: reqwest::Response, text: &str) -> (String, Vec<Value>) {
    let status = resp.status();
    let id = resp
        .headers()
        .get("x-litellm-model-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let ctype = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(ctype.as_deref(), Some("text/event-stream"), "{body}");
    let events = sse_data(&body);
    assert_eq!(
        events.last().map(String::as_str),
        Some("[DONE]"),
        "stream must end with [DONE]: {body}"
    );
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap_or_else(|_| panic!("not JSON: {e}")))
        .collect();
    for c in &chunks {
        assert!(c.get("error").is_none(), "error chunk in {body}");
    }
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, format!("Echo: {text}"), "{body}");
    (id.expect("x-litellm-model-id"), chunks)
}

/// Deployment rpm/tpm windows are calendar minutes: start an rpm scenario well inside one
/// so that its requests land in the same minute.
async fn away_from_minute_boundary() {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        % 60.0;
    if secs > 50.0 {
        tokio::time::sleep(Duration::from_secs_f64(61.0 - secs)).await;
    }
}

// ---------------------------------------------------------------------------------------
// 1. A failing member is invisible to the client
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_member_answering_500_or_503_is_invisible_to_the_client() {
    for status in [500, 503] {
        let bad = failing(status).await;
        let good = healthy().await;
        // `order` makes the failing member the first one asked, every time; a high
        // `allowed_fails` keeps it in rotation.
        let gw = Gateway::start(&config(
            &[
                member("gpt-test", "bad", &bad, &["order: 1"]),
                member("gpt-test", "good", &good, &["order: 2"]),
            ],
            "allowed_fails: 1000",
        ));
        for i in 0..3 {
            let text = format!("plain {status} {i}");
            let id = expect_answer(post(&gw, ask("gpt-test", &text)).await, &text).await;
            assert_eq!(id, "good");
        }
        for i in 0..3 {
            let text = format!("streamed {status} {i}");
            let (id, _) =
                expect_stream(post(&gw, ask_stream("gpt-test", &text)).await, &text).await;
            assert_eq!(id, "good");
        }
        assert_eq!(
            asked(&bad),
            6,
            "the failing member was asked first each time"
        );
        assert_eq!(asked(&good), 6);
    }
}

// ---------------------------------------------------------------------------------------
// 2. Cooldown entry and exit
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_failing_member_cools_down_and_comes_back() {
    let flaky = healthy().await;
    flaky.push_reply(Reply::Status {
        status: 500,
        retry_after_secs: None,
    });
    flaky.push_reply(Reply::Status {
        status: 500,
        retry_after_secs: None,
    });
    let good = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "flaky", &flaky, &["order: 1"]),
            member("gpt-test", "good", &good, &["order: 2"]),
        ],
        "allowed_fails: 1\ncooldown_time: 1",
    ));
    away_from_minute_boundary().await;
    // Two failures: more than `allowed_fails: 1`, the member cools down.
    for (i, asked_so_far) in [(0, 1), (1, 2)] {
        let text = format!("warm {i}");
        let id = expect_answer(post(&gw, ask("gpt-test", &text)).await, &text).await;
        assert_eq!(id, "good");
        assert_eq!(asked(&flaky), asked_so_far);
    }
    let cooling_since = Instant::now();
    for i in 0..5 {
        let text = format!("cooling {i}");
        let id = expect_answer(post(&gw, ask("gpt-test", &text)).await, &text).await;
        assert_eq!(id, "good");
    }
    assert!(
        cooling_since.elapsed() < Duration::from_millis(900),
        "the requests during the cooldown took too long to prove anything"
    );
    assert_eq!(asked(&flaky), 2, "a cooling member is not asked");

    tokio::time::sleep(Duration::from_millis(1300)).await;
    let id = expect_answer(post(&gw, ask("gpt-test", "back")).await, "back").await;
    assert_eq!(
        id, "flaky",
        "after cooldown_time the first-tier member serves again"
    );
    assert_eq!(asked(&flaky), 3);
}

// ---------------------------------------------------------------------------------------
// 3. Every member cooling down
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_member_cooling_down_answers_503_with_retry_after() {
    let a = failing(500).await;
    let b = failing(500).await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "a", &a, &[]),
            member("gpt-test", "b", &b, &[]),
        ],
        "allowed_fails: 0\ncooldown_time: 5",
    ));
    away_from_minute_boundary().await;
    let first = post(&gw, ask("gpt-test", "x")).await;
    assert_eq!(
        first.status(),
        500,
        "the last upstream error reaches the client"
    );
    let err: Value = first.json().await.unwrap();
    assert!(err["error"]["message"].is_string(), "{err}");
    assert_eq!((asked(&a), asked(&b)), (1, 1), "both were tried");

    let second = post(&gw, ask("gpt-test", "x")).await;
    assert_eq!(second.status(), 503);
    let retry_after: u64 = header(&second, "retry-after").parse().unwrap();
    assert!(
        (1..=5).contains(&retry_after),
        "Retry-After {retry_after} must be within cooldown_time"
    );
    let err: Value = second.json().await.unwrap();
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.contains("gpt-test"), "{message}");
    assert_eq!((asked(&a), asked(&b)), (1, 1), "no cooling member is asked");
}

#[tokio::test]
async fn a_groups_only_member_never_cools_down() {
    let only = failing(500).await;
    let gw = Gateway::start(&config(
        &[member("gpt-test", "only", &only, &[])],
        "allowed_fails: 0\ncooldown_time: 30",
    ));
    for _ in 0..3 {
        let resp = post(&gw, ask("gpt-test", "x")).await;
        assert_eq!(resp.status(), 500, "the vendor's error, never a 503");
    }
    assert_eq!(asked(&only), 3, "the only member is asked every time");
}

// ---------------------------------------------------------------------------------------
// Retries
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn max_retries_retries_the_same_member_after_retry_after() {
    let limited = healthy().await;
    limited.push_reply(Reply::rate_limited(1));
    let other = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member(
                "gpt-test",
                "limited",
                &limited,
                &["order: 1", "max_retries: 1"],
            ),
            member("gpt-test", "other", &other, &["order: 2"]),
        ],
        "",
    ));
    let started = Instant::now();
    let id = expect_answer(post(&gw, ask("gpt-test", "again")).await, "again").await;
    assert_eq!(id, "limited", "the retry on the same member answered");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "the vendor's Retry-After: 1 was honoured ({:?})",
        started.elapsed()
    );
    assert_eq!((asked(&limited), asked(&other)), (2, 0));
}

#[tokio::test]
async fn num_retries_passes_over_the_group_and_retry_policy_overrides_it() {
    let flaky = healthy().await;
    for _ in 0..2 {
        flaky.push_reply(Reply::Status {
            status: 500,
            retry_after_secs: None,
        });
    }
    let gw = Gateway::start(&config(
        &[member("gpt-test", "flaky", &flaky, &[])],
        "num_retries: 2",
    ));
    let id = expect_answer(post(&gw, ask("gpt-test", "third time")).await, "third time").await;
    assert_eq!(id, "flaky");
    assert_eq!(asked(&flaky), 3, "two failures, then the answer");
    drop(gw);

    // `retry_policy` per class wins over `num_retries`: no retries on a 500.
    let flaky = healthy().await;
    flaky.push_reply(Reply::Status {
        status: 500,
        retry_after_secs: None,
    });
    let gw = Gateway::start(&config(
        &[member("gpt-test", "flaky", &flaky, &[])],
        "num_retries: 2\nretry_policy:\n  InternalServerErrorRetries: 0",
    ));
    let resp = post(&gw, ask("gpt-test", "once")).await;
    assert_eq!(resp.status(), 500);
    assert_eq!(asked(&flaky), 1);
}

// ---------------------------------------------------------------------------------------
// 4. Fallbacks
// ---------------------------------------------------------------------------------------

/// OpenAI's own body for a prompt over the context window (400).
fn openai_context_length_error() -> Value {
    json!({"error": {
        "message": "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded"
    }})
}

/// OpenAI's body for a refused prompt (400).
fn openai_content_policy_error() -> Value {
    json!({"error": {
        "message": "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
        "type": "invalid_request_error",
        "param": null,
        "code": "content_policy_violation"
    }})
}

/// A plain client mistake (400).
fn openai_bad_request() -> Value {
    json!({"error": {
        "message": "Invalid value for 'temperature': must be between 0 and 2.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "invalid_value"
    }})
}

/// `primary` (one member), and three groups it can fall back to.
struct Fallbacks {
    primary: MockServer,
    backup: MockServer,
    big: MockServer,
    safe: MockServer,
}

impl Fallbacks {
    async fn start(primary: MockServer) -> Self {
        Self {
            primary,
            backup: healthy().await,
            big: healthy().await,
            safe: healthy().await,
        }
    }

    fn members(&self) -> Vec<String> {
        vec![
            member("primary", "primary-1", &self.primary, &[]),
            member("backup", "backup-1", &self.backup, &[]),
            member("big", "big-1", &self.big, &[]),
            member("safe", "safe-1", &self.safe, &[]),
        ]
    }

    /// Every kind of fallback configured.
    fn all_configured(&self) -> String {
        config(
            &self.members(),
            "fallbacks: [{primary: [backup]}]\ncontext_window_fallbacks: [{primary: [big]}]\ncontent_policy_fallbacks: [{primary: [safe]}]",
        )
    }

    fn asked(&self) -> [usize; 4] {
        [
            asked(&self.primary),
            asked(&self.backup),
            asked(&self.big),
            asked(&self.safe),
        ]
    }
}

#[track_caller]
fn assert_fell_back_to(resp: &reqwest::Response, id: &str, group: &str) {
    let got = (
        header(resp, "x-litellm-attempted-fallbacks"),
        served_by(resp),
        header(resp, "x-litellm-model-group"),
    );
    assert_eq!(
        got,
        ("1".to_owned(), id.to_owned(), group.to_owned()),
        "(attempted fallbacks, model id, model group) of a {} answer",
        resp.status()
    );
}

#[tokio::test]
async fn config_fallbacks_answer_when_the_group_fails() {
    let f = Fallbacks::start(failing(500).await).await;
    let gw = Gateway::start(&f.all_configured());
    let resp = post(&gw, ask("primary", "rescue me")).await;
    assert_fell_back_to(&resp, "backup-1", "backup");
    expect_answer(resp, "rescue me").await;
    assert_eq!(f.asked(), [1, 1, 0, 0]);

    // A request that needs no fallback says so.
    let g = Fallbacks::start(healthy().await).await;
    let gw = Gateway::start(&g.all_configured());
    let resp = post(&gw, ask("primary", "fine")).await;
    assert_eq!(header(&resp, "x-litellm-attempted-fallbacks"), "0");
    assert_eq!(served_by(&resp), "primary-1");
    assert_eq!(header(&resp, "x-litellm-model-group"), "primary");
}

#[tokio::test]
async fn the_request_bodys_fallbacks_are_followed_and_not_forwarded() {
    let f = Fallbacks::start(failing(500).await).await;
    let gw = Gateway::start(&config(&f.members(), ""));
    // Without fallbacks the vendor's error reaches the client...
    let resp = post(&gw, ask("primary", "x")).await;
    assert_eq!(resp.status(), 500);
    // ...with the body's own list, the fallback answers.
    let mut body = ask("primary", "body fallbacks");
    body["fallbacks"] = json!(["backup"]);
    let resp = post(&gw, body).await;
    assert_fell_back_to(&resp, "backup-1", "backup");
    expect_answer(resp, "body fallbacks").await;
    let sent = f.backup.last_request().unwrap();
    assert!(
        sent.body.get("fallbacks").is_none(),
        "a router parameter must not reach the vendor: {}",
        sent.body
    );
    // LiteLLM's `[{"model": name}]` form too.
    let mut body = ask("primary", "object form");
    body["fallbacks"] = json!([{"model": "safe"}]);
    let resp = post(&gw, body).await;
    assert_fell_back_to(&resp, "safe-1", "safe");
    expect_answer(resp, "object form").await;
}

#[tokio::test]
async fn context_window_errors_go_to_context_window_fallbacks() {
    let primary = healthy().await;
    primary.push_reply(Reply::Error {
        status: 400,
        body_json: openai_context_length_error(),
    });
    let f = Fallbacks::start(primary).await;
    let gw = Gateway::start(&f.all_configured());
    let resp = post(&gw, ask("primary", "a very long prompt")).await;
    assert_fell_back_to(&resp, "big-1", "big");
    expect_answer(resp, "a very long prompt").await;
    assert_eq!(
        f.asked(),
        [1, 0, 1, 0],
        "neither retried nor the generic list"
    );
}

#[tokio::test]
async fn content_policy_errors_go_to_content_policy_fallbacks() {
    let primary = healthy().await;
    primary.push_reply(Reply::Error {
        status: 400,
        body_json: openai_content_policy_error(),
    });
    let f = Fallbacks::start(primary).await;
    let gw = Gateway::start(&f.all_configured());
    let resp = post(&gw, ask("primary", "something edgy")).await;
    assert_fell_back_to(&resp, "safe-1", "safe");
    expect_answer(resp, "something edgy").await;
    assert_eq!(f.asked(), [1, 0, 0, 1]);
}

#[tokio::test]
async fn a_plain_bad_request_is_not_fallen_back_from() {
    let primary = healthy().await;
    primary.push_reply(Reply::Error {
        status: 400,
        body_json: openai_bad_request(),
    });
    let f = Fallbacks::start(primary).await;
    let gw = Gateway::start(&f.all_configured());
    let resp = post(&gw, ask("primary", "x")).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(
        err["error"]["message"],
        openai_bad_request()["error"]["message"]
    );
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(
        f.asked(),
        [1, 0, 0, 0],
        "the client's mistake is not retried anywhere"
    );
}

// ---------------------------------------------------------------------------------------
// 5. Streams fall back before their first byte
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_stream_whose_first_member_fails_before_the_first_byte_falls_back() {
    // An error status.
    let f = Fallbacks::start(failing(503).await).await;
    let gw = Gateway::start(&f.all_configured());
    let resp = post(&gw, ask_stream("primary", "stream rescue")).await;
    assert_fell_back_to(&resp, "backup-1", "backup");
    expect_stream(resp, "stream rescue").await;
    assert_eq!(f.asked(), [1, 1, 0, 0]);

    // A 200 whose connection closes before any event.
    let primary = healthy().await;
    primary.push_reply(Reply::DropMidStream {
        text: "never seen".into(),
        after_chunks: 0,
    });
    let f = Fallbacks::start(primary).await;
    let gw = Gateway::start(&f.all_configured());
    let resp = post(&gw, ask_stream("primary", "after a cut")).await;
    let routed = (
        resp.status().as_u16(),
        header(&resp, "x-litellm-attempted-fallbacks"),
        served_by(&resp),
    );
    let body = resp.text().await.unwrap();
    assert_eq!(
        routed,
        (200, "1".to_owned(), "backup-1".to_owned()),
        "(status, attempted fallbacks, model id) when the first member's stream closed before its first event; the client got: {body:?}"
    );
    assert_eq!(chat_stream_text(&body), "Echo: after a cut", "{body:?}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body:?}");
    assert_eq!(f.asked(), [1, 1, 0, 0]);
}

#[tokio::test]
async fn a_stalled_stream_times_out_and_falls_back() {
    let f = Fallbacks::start(slow(Duration::from_secs(5)).await).await;
    let mut members = f.members();
    members[0] = member(
        "primary",
        "primary-1",
        &f.primary,
        &["stream_timeout: 0.5", "timeout: 0.5"],
    );
    let gw = Gateway::start(&config(&members, "fallbacks: [{primary: [backup]}]"));
    let started = Instant::now();
    let resp = post(&gw, ask_stream("primary", "not waiting")).await;
    assert_fell_back_to(&resp, "backup-1", "backup");
    expect_stream(resp, "not waiting").await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the stall was cut at the stream timeout ({:?})",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// 6. Wildcard routes, 7. aliases
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_wildcard_route_serves_any_model_under_its_prefix() {
    let mock = healthy().await;
    let cfg = format!(
        "model_list:\n  - model_name: \"openai/*\"\n    litellm_params:\n      model: \"openai/*\"\n      api_base: {}\n      api_key: sk-upstream\ngeneral_settings:\n  master_key: {MASTER}\n",
        mock.url()
    );
    let gw = Gateway::start(&cfg);
    expect_answer(post(&gw, ask("openai/gpt-4o-mini", "wild")).await, "wild").await;
    assert_eq!(mock.last_request().unwrap().body["model"], "gpt-4o-mini");
    let text = "wild stream";
    expect_stream(
        post(&gw, ask_stream("openai/gpt-4.1-nano", text)).await,
        text,
    )
    .await;
    assert_eq!(mock.last_request().unwrap().body["model"], "gpt-4.1-nano");

    let resp = post(&gw, ask("anthropic/claude-x", "no route")).await;
    assert_eq!(resp.status(), 404, "outside the prefix nothing matches");

    let ids = model_ids(&gw).await;
    assert!(ids.iter().any(|i| i == "openai/*"), "{ids:?}");
}

#[tokio::test]
async fn model_group_alias_serves_the_aliased_group() {
    let mock = healthy().await;
    let gw = Gateway::start(&config(
        &[member("gpt-test", "real", &mock, &[])],
        "model_group_alias:\n  gpt-4: gpt-test\n  secret-name: {model: gpt-test, hidden: true}",
    ));
    for alias in ["gpt-4", "secret-name"] {
        let resp = post(&gw, ask(alias, "aliased")).await;
        assert_eq!(header(&resp, "x-litellm-model-group"), "gpt-test");
        let id = expect_answer(resp, "aliased").await;
        assert_eq!(id, "real");
        assert_eq!(mock.last_request().unwrap().body["model"], "gpt-4o-mini");
    }
    let ids = model_ids(&gw).await;
    assert!(
        ids.iter().any(|i| i == "gpt-test") && ids.iter().any(|i| i == "gpt-4"),
        "{ids:?}"
    );
    assert!(
        !ids.iter().any(|i| i == "secret-name"),
        "a hidden alias is not listed"
    );
}

// ---------------------------------------------------------------------------------------
// 8. Strategies, order tiers, tags
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn least_busy_avoids_the_member_with_requests_in_flight() {
    // `slow` holds every request 2 s; `fast` answers at once. Once `slow` has one in
    // flight, least-busy sends everything else to `fast`.
    let slow_mock = slow(Duration::from_secs(2)).await;
    let fast = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "slow", &slow_mock, &[]),
            member("gpt-test", "fast", &fast, &[]),
        ],
        "routing_strategy: least-busy",
    ));
    let url = format!("{}{CHAT}", gw.url);
    let mut tasks = Vec::new();
    for i in 0..20u64 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 50)).await;
            let resp = post_at(url, MASTER, &ask("gpt-test", "busy?")).await;
            assert_eq!(resp.status(), 200);
            served_by(&resp)
        }));
    }
    let mut to_slow = 0;
    for t in tasks {
        if t.await.unwrap() == "slow" {
            to_slow += 1;
        }
    }
    // Simple shuffle would send about 10 of 20 there.
    assert!(to_slow <= 3, "{to_slow} of 20 went to the busy member");
    assert_eq!(asked(&slow_mock) + asked(&fast), 20);
}

#[tokio::test]
async fn latency_based_routing_prefers_the_fast_member_after_warm_up() {
    let slow_mock = slow(Duration::from_millis(300)).await;
    let fast = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "slow", &slow_mock, &[]),
            member("gpt-test", "fast", &fast, &[]),
        ],
        "routing_strategy: latency-based-routing",
    ));
    // Warm-up: each member gets measured.
    for _ in 0..4 {
        expect_answer(post(&gw, ask("gpt-test", "warm")).await, "warm").await;
    }
    assert!(asked(&slow_mock) >= 1, "an unmeasured member is tried");
    let before = asked(&slow_mock);
    let mut to_fast = 0;
    for _ in 0..20 {
        if expect_answer(post(&gw, ask("gpt-test", "go")).await, "go").await == "fast" {
            to_fast += 1;
        }
    }
    assert!(
        to_fast >= 18,
        "only {to_fast} of 20 went to the fast member"
    );
    assert!(asked(&slow_mock) - before <= 2);
}

#[tokio::test]
async fn order_tiers_send_everything_to_the_first_tier_while_it_is_healthy() {
    let first = healthy().await;
    let second = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "second", &second, &["order: 2"]),
            member("gpt-test", "first", &first, &["order: 1"]),
        ],
        "",
    ));
    for i in 0..10 {
        let text = format!("tier {i}");
        let id = expect_answer(post(&gw, ask("gpt-test", &text)).await, &text).await;
        assert_eq!(id, "first");
    }
    assert_eq!((asked(&first), asked(&second)), (10, 0));
}

#[tokio::test]
async fn tag_filtering_routes_by_the_requests_metadata_tags() {
    let free = healthy().await;
    let paid = healthy().await;
    let fallback = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "free", &free, &["tags: [free]"]),
            member("gpt-test", "paid", &paid, &["tags: [paid, premium]"]),
            member("gpt-test", "dflt", &fallback, &["tags: [default]"]),
        ],
        "enable_tag_filtering: true",
    ));
    let tagged = |tags: Value| {
        let mut body = ask("gpt-test", "tagged");
        body["metadata"] = json!({"tags": tags});
        body
    };
    for _ in 0..5 {
        let id = expect_answer(post(&gw, tagged(json!(["paid"]))).await, "tagged").await;
        assert_eq!(id, "paid");
        let id = expect_answer(post(&gw, tagged(json!(["premium"]))).await, "tagged").await;
        assert_eq!(id, "paid");
        let id = expect_answer(post(&gw, tagged(json!(["free"]))).await, "tagged").await;
        assert_eq!(id, "free");
        let id = expect_answer(post(&gw, tagged(json!(["unknown"]))).await, "tagged").await;
        assert_eq!(id, "dflt", "no member has the tag: the default member");
        let id = expect_answer(post(&gw, ask("gpt-test", "tagged")).await, "tagged").await;
        assert_eq!(id, "dflt", "an untagged request goes to the default member");
    }
    assert_eq!((asked(&free), asked(&paid), asked(&fallback)), (5, 10, 10));
    // The tags are the gateway's; OpenAI's own `metadata` takes only string values, so
    // a tag list forwarded as is would be refused by the real vendor.
    let sent = paid.last_request().unwrap();
    if let Some(meta) = sent.body.get("metadata") {
        let all_strings = meta
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string));
        assert!(
            all_strings,
            "the upstream got metadata OpenAI refuses: {}",
            sent.body
        );
    }
}

#[tokio::test]
async fn tag_filtering_without_a_matching_or_default_member_is_a_clear_400() {
    let a = healthy().await;
    let b = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "a", &a, &["tags: [team-a]"]),
            member("gpt-test", "b", &b, &["tags: [team-b]"]),
        ],
        "enable_tag_filtering: true",
    ));
    let mut body = ask("gpt-test", "x");
    body["tags"] = json!(["team-c"]);
    let resp = post(&gw, body).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"]["message"].as_str().unwrap().contains("team-c"),
        "{err}"
    );
    assert_eq!(asked(&a) + asked(&b), 0);
    // The top-level `tags` form routes too.
    let mut body = ask("gpt-test", "top level");
    body["tags"] = json!(["team-b"]);
    let id = expect_answer(post(&gw, body).await, "top level").await;
    assert_eq!(id, "b");
    assert!(
        b.last_request().unwrap().body.get("tags").is_none(),
        "`tags` is the router's, not the vendor's"
    );
}

// ---------------------------------------------------------------------------------------
// 9. Concurrency while a member cools down
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn concurrent_requests_all_succeed_while_a_member_cools_down() {
    let bad = failing(500).await;
    let good = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "bad", &bad, &[]),
            member("gpt-test", "good", &good, &[]),
        ],
        "allowed_fails: 1\ncooldown_time: 1",
    ));
    away_from_minute_boundary().await;
    let url = format!("{}{CHAT}", gw.url);
    // Three waves: into the cooldown, during it, and after it ends.
    for wave in 0..3 {
        let mut tasks = Vec::new();
        for i in 0..20 {
            let url = url.clone();
            let stream = i % 2 == 1;
            tasks.push(tokio::spawn(async move {
                let text = format!("wave {wave} request {i}");
                let body = if stream {
                    ask_stream("gpt-test", &text)
                } else {
                    ask("gpt-test", &text)
                };
                let resp = post_at(url, MASTER, &body).await;
                let id = if stream {
                    expect_stream(resp, &text).await.0
                } else {
                    expect_answer(resp, &text).await
                };
                assert_eq!(id, "good");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        if wave == 1 {
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
    }
    assert_eq!(asked(&good), 60);
    assert!(
        asked(&bad) < 60,
        "the failing member cooled down at some point ({} asks)",
        asked(&bad)
    );
}

// ---------------------------------------------------------------------------------------
// 10. Streams are billed even when the client did not ask for usage
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_stream_without_stream_options_shows_no_usage_but_is_billed() {
    let mock = healthy().await;
    let gw = Gateway::start(&config(&[member("gpt-test", "only", &mock, &[])], ""));
    let text = "count my tokens please";
    let (_, chunks) = expect_stream(post(&gw, ask_stream("gpt-test", text)).await, text).await;
    for c in &chunks {
        assert!(
            c["choices"].as_array().is_some_and(|a| !a.is_empty()),
            "a usage chunk the client did not ask for: {c}"
        );
        assert!(c.get("usage").is_none_or(Value::is_null), "{c}");
    }
    // The upstream was asked for usage so the gateway can bill it.
    assert_eq!(
        mock.last_request().unwrap().body["stream_options"]["include_usage"],
        true
    );

    let row = spend_rows(&gw).await.remove(0);
    assert!(row["prompt_tokens"].as_u64().unwrap() > 0, "{row}");
    assert!(row["completion_tokens"].as_u64().unwrap() > 0, "{row}");
    assert!(
        row["spend"].as_f64().unwrap() > 0.0,
        "gpt-4o-mini is priced: {row}"
    );
}

// ---------------------------------------------------------------------------------------
// Every inbound API routes the same way
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn messages_responses_and_translated_chat_fail_over_like_chat() {
    let claude_bad = failing(529).await;
    let claude_good = healthy().await;
    let gpt_bad = failing(500).await;
    let gpt_good = healthy().await;
    let claude = "anthropic/claude-3-5-haiku-20241022";
    let gw = Gateway::start(&config(
        &[
            member_as("claude", "claude-bad", claude, &claude_bad, &["order: 1"]),
            member_as("claude", "claude-good", claude, &claude_good, &["order: 2"]),
            member("gpt-test", "gpt-bad", &gpt_bad, &["order: 1"]),
            member("gpt-test", "gpt-good", &gpt_good, &["order: 2"]),
        ],
        "allowed_fails: 1000",
    ));
    let send = |path: &'static str, body: Value| {
        let url = format!("{}{path}", gw.url);
        async move { post_at(url, MASTER, &body).await }
    };

    // Anthropic Messages, plain and streamed.
    let resp = send(
        "/v1/messages",
        json!({"model": "claude", "max_tokens": 64, "messages": [{"role": "user", "content": "to claude"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(served_by(&resp), "claude-good");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "Echo: to claude", "{v}");
    let resp = send(
        "/v1/messages",
        json!({"model": "claude", "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "streamed claude"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(served_by(&resp), "claude-good");
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("message_stop") && !text.contains("event: error"),
        "{text}"
    );

    // Chat completions translated to an Anthropic group.
    let id = expect_answer(
        post(&gw, ask("claude", "chat to claude")).await,
        "chat to claude",
    )
    .await;
    assert_eq!(id, "claude-good");
    let (id, _) = expect_stream(
        post(&gw, ask_stream("claude", "stream to claude")).await,
        "stream to claude",
    )
    .await;
    assert_eq!(id, "claude-good");

    // The Responses API.
    let resp = send(
        "/v1/responses",
        json!({"model": "gpt-test", "input": "to responses"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(served_by(&resp), "gpt-good");
    let v: Value = resp.json().await.unwrap();
    assert!(v.to_string().contains("Echo: to responses"), "{v}");

    assert_eq!(claude_good.requests_to("/v1/messages").len(), 4);
    assert!(
        claude_bad.requests_to("/v1/messages").len() >= 4,
        "the failing member was asked first each time"
    );
}

// ---------------------------------------------------------------------------------------
// Cooldowns shared across replicas (Redis)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_cooldown_started_on_one_replica_is_honoured_by_another() {
    let bad = failing(500).await;
    let good = healthy().await;
    // Unique ids: the cooldown is shared under the deployment's id.
    let tag = format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let (bad_id, good_id) = (format!("bad-{tag}"), format!("good-{tag}"));
    let cfg = config(
        &[
            member("gpt-test", &bad_id, &bad, &["order: 1"]),
            member("gpt-test", &good_id, &good, &["order: 2"]),
        ],
        "allowed_fails: 0\ncooldown_time: 20\nredis_host: 127.0.0.1\nredis_port: 6379",
    );
    let one = Gateway::start(&cfg);
    let two = Gateway::start(&cfg);
    away_from_minute_boundary().await;
    let id = expect_answer(post(&one, ask("gpt-test", "one")).await, "one").await;
    assert_eq!(id, good_id);
    assert_eq!(asked(&bad), 1, "replica one cooled the failing member");
    let id = expect_answer(post(&one, ask("gpt-test", "one again")).await, "one again").await;
    assert_eq!(id, good_id);
    assert_eq!(asked(&bad), 1);

    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..3 {
        let text = format!("two {i}");
        let id = expect_answer(post(&two, ask("gpt-test", &text)).await, &text).await;
        assert_eq!(id, good_id);
    }
    assert_eq!(
        asked(&bad),
        1,
        "replica two still asked the member replica one cooled down"
    );
}

// ---------------------------------------------------------------------------------------
// What counts against a member, and what is waited for
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_clients_bad_request_does_not_cool_the_member_down() {
    let first = healthy().await;
    first.push_reply(Reply::Error {
        status: 400,
        body_json: openai_bad_request(),
    });
    let second = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "first", &first, &["order: 1"]),
            member("gpt-test", "second", &second, &["order: 2"]),
        ],
        "allowed_fails: 0\ncooldown_time: 30",
    ));
    let resp = post(&gw, ask("gpt-test", "bad")).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(asked(&second), 0, "a bad request is not tried elsewhere");
    let id = expect_answer(post(&gw, ask("gpt-test", "good")).await, "good").await;
    assert_eq!(
        id, "first",
        "the member that refused a bad request is still in rotation"
    );
}

#[tokio::test]
async fn allowed_fails_policy_cools_a_member_per_error_class() {
    let flaky = failing(500).await;
    let good = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "flaky", &flaky, &["order: 1"]),
            member("gpt-test", "good", &good, &["order: 2"]),
        ],
        "allowed_fails: 100\ncooldown_time: 30\nallowed_fails_policy:\n  InternalServerErrorAllowedFails: 0",
    ));
    away_from_minute_boundary().await;
    for i in 0..4 {
        let text = format!("policy {i}");
        let id = expect_answer(post(&gw, ask("gpt-test", &text)).await, &text).await;
        assert_eq!(id, "good");
    }
    assert_eq!(
        asked(&flaky),
        1,
        "one 500 is over InternalServerErrorAllowedFails: 0"
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_the_router_waits_moves_to_the_next_member_at_once() {
    let limited = healthy().await;
    limited.push_reply(Reply::rate_limited(120));
    let other = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member(
                "gpt-test",
                "limited",
                &limited,
                &["order: 1", "max_retries: 3"],
            ),
            member("gpt-test", "other", &other, &["order: 2"]),
        ],
        "",
    ));
    let started = Instant::now();
    let id = expect_answer(post(&gw, ask("gpt-test", "no wait")).await, "no wait").await;
    assert_eq!(id, "other");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a 120 s Retry-After is not waited for ({:?})",
        started.elapsed()
    );
    assert_eq!(asked(&limited), 1);
}

#[tokio::test]
async fn a_non_streamed_request_that_times_out_goes_to_the_next_member() {
    let stalled = slow(Duration::from_secs(10)).await;
    let good = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member(
                "gpt-test",
                "stalled",
                &stalled,
                &["order: 1", "timeout: 0.5"],
            ),
            member("gpt-test", "good", &good, &["order: 2"]),
        ],
        "",
    ));
    let started = Instant::now();
    let id = expect_answer(post(&gw, ask("gpt-test", "hurry")).await, "hurry").await;
    assert_eq!(id, "good");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(asked(&stalled), 1);
}

#[tokio::test]
async fn the_bodys_num_retries_retries_the_group() {
    let flaky = healthy().await;
    flaky.push_reply(Reply::Status {
        status: 503,
        retry_after_secs: None,
    });
    let gw = Gateway::start(&config(&[member("gpt-test", "flaky", &flaky, &[])], ""));
    let mut body = ask("gpt-test", "retry me");
    body["num_retries"] = json!(1);
    let id = expect_answer(post(&gw, body).await, "retry me").await;
    assert_eq!(id, "flaky");
    assert_eq!(asked(&flaky), 2);
    assert!(
        flaky
            .last_request()
            .unwrap()
            .body
            .get("num_retries")
            .is_none(),
        "a router parameter must not reach the vendor"
    );
}

// ---------------------------------------------------------------------------------------
// Capacity: rpm, weights, pre-call checks
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_members_own_rpm_spills_over_to_the_next_tier() {
    let capped = healthy().await;
    let spare = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "capped", &capped, &["order: 1", "rpm: 2"]),
            member("gpt-test", "spare", &spare, &["order: 2"]),
        ],
        "",
    ));
    away_from_minute_boundary().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let text = format!("rpm {i}");
        ids.push(expect_answer(post(&gw, ask("gpt-test", &text)).await, &text).await);
    }
    assert_eq!(ids, ["capped", "capped", "spare", "spare", "spare"]);
    assert_eq!(asked(&capped), 2, "rpm: 2 is respected");
}

#[tokio::test]
async fn a_group_over_its_rpm_is_refused_without_asking_the_vendor() {
    let capped = healthy().await;
    let gw = Gateway::start(&config(
        &[member("gpt-test", "capped", &capped, &["rpm: 1"])],
        "",
    ));
    away_from_minute_boundary().await;
    expect_answer(post(&gw, ask("gpt-test", "one")).await, "one").await;
    let resp = post(&gw, ask("gpt-test", "two")).await;
    let status = resp.status().as_u16();
    // When to come back: the minute's turn, at most 60 s away.
    let retry_after: u64 = header(&resp, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let err: Value = resp.json().await.unwrap();
    assert!(matches!(status, 429 | 503), "{status} {err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-test"),
        "{err}"
    );
    assert_eq!(asked(&capped), 1);
}

#[tokio::test]
async fn simple_shuffle_follows_weights() {
    let heavy = healthy().await;
    let light = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "heavy", &heavy, &["weight: 9"]),
            member("gpt-test", "light", &light, &["weight: 1"]),
        ],
        "routing_strategy: simple-shuffle",
    ));
    let mut to_heavy = 0;
    for _ in 0..60 {
        if expect_answer(post(&gw, ask("gpt-test", "w")).await, "w").await == "heavy" {
            to_heavy += 1;
        }
    }
    // Expected 54 of 60; an unweighted shuffle would give about 30.
    assert!(
        (44..60).contains(&to_heavy),
        "{to_heavy} of 60 went to weight 9"
    );
}

#[tokio::test]
async fn pre_call_checks_skip_members_whose_context_window_is_too_small() {
    let small = healthy().await;
    let big = healthy().await;
    let tiny = healthy().await;
    let lone = healthy().await;
    let with_window = |m: String, tokens: u64| format!("{m}      max_input_tokens: {tokens}\n");
    let gw = Gateway::start(&config(
        &[
            with_window(member("gpt-test", "small", &small, &["order: 1"]), 60),
            with_window(member("gpt-test", "big", &big, &["order: 2"]), 100_000),
            with_window(member("tiny", "tiny-1", &tiny, &[]), 60),
            with_window(member("lone", "lone-1", &lone, &[]), 60),
        ],
        "enable_pre_call_checks: true\ncontext_window_fallbacks: [{tiny: [gpt-test]}]",
    ));
    let long = "word ".repeat(400);
    let long = long.trim();
    let id = expect_answer(post(&gw, ask("gpt-test", "hi")).await, "hi").await;
    assert_eq!(id, "small", "a short prompt fits the first tier");
    let id = expect_answer(post(&gw, ask("gpt-test", long)).await, long).await;
    assert_eq!(id, "big", "a long prompt skips the small window");
    assert_eq!(asked(&small), 1);

    let resp = post(&gw, ask("tiny", long)).await;
    assert_eq!(header(&resp, "x-litellm-attempted-fallbacks"), "1");
    assert_eq!(header(&resp, "x-litellm-model-group"), "gpt-test");
    expect_answer(resp, long).await;
    assert_eq!(
        asked(&tiny),
        0,
        "the prompt was never sent where it cannot fit"
    );

    let resp = post(&gw, ask("lone", long)).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["code"], "context_length_exceeded", "{err}");
    assert_eq!(asked(&lone), 0);
}

// ---------------------------------------------------------------------------------------
// Fallback chains
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn fallbacks_are_tried_in_order_but_not_followed_further() {
    let primary = failing(500).await;
    let second = failing(500).await;
    let third = healthy().await;
    let beyond = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("primary", "primary-1", &primary, &[]),
            member("second", "second-1", &second, &[]),
            member("third", "third-1", &third, &[]),
            member("beyond", "beyond-1", &beyond, &[]),
        ],
        "fallbacks: [{primary: [second, third]}, {second: [beyond]}]",
    ));
    let resp = post(&gw, ask("primary", "chain")).await;
    assert_eq!(header(&resp, "x-litellm-attempted-fallbacks"), "2");
    assert_eq!(served_by(&resp), "third-1");
    expect_answer(resp, "chain").await;
    assert_eq!(
        (
            asked(&primary),
            asked(&second),
            asked(&third),
            asked(&beyond)
        ),
        (1, 1, 1, 0),
        "second's own fallbacks are not followed from primary's request"
    );
}

#[tokio::test]
async fn default_fallbacks_catch_a_group_without_its_own() {
    let primary = failing(503).await;
    let catch_all = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("primary", "primary-1", &primary, &[]),
            member("catch-all", "catch-1", &catch_all, &[]),
        ],
        "default_fallbacks: [catch-all]",
    ));
    let resp = post(&gw, ask("primary", "caught")).await;
    assert_eq!(header(&resp, "x-litellm-attempted-fallbacks"), "1");
    assert_eq!(served_by(&resp), "catch-1");
    expect_answer(resp, "caught").await;
}

#[tokio::test]
async fn streams_of_every_api_fall_back_when_cut_before_their_first_event() {
    let claude = "anthropic/claude-3-5-haiku-20241022";
    let claude_primary = healthy().await;
    let claude_backup = healthy().await;
    let gpt_primary = healthy().await;
    let gpt_backup = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member_as("claude", "claude-primary", claude, &claude_primary, &[]),
            member_as(
                "claude-backup",
                "claude-backup-1",
                claude,
                &claude_backup,
                &[],
            ),
            member("gpt", "gpt-primary", &gpt_primary, &[]),
            member("gpt-backup", "gpt-backup-1", &gpt_backup, &[]),
        ],
        "fallbacks: [{claude: [claude-backup]}, {gpt: [gpt-backup]}]",
    ));
    let cut = || Reply::DropMidStream {
        text: "never seen".into(),
        after_chunks: 0,
    };
    let cases = [
        (
            "/v1/chat/completions",
            ask_stream("claude", "translated chat"),
            &claude_primary,
            "claude-backup-1",
        ),
        (
            "/v1/messages",
            json!({"model": "claude", "max_tokens": 64, "stream": true,
                   "messages": [{"role": "user", "content": "messages"}]}),
            &claude_primary,
            "claude-backup-1",
        ),
        (
            "/v1/responses",
            json!({"model": "gpt", "stream": true, "input": "responses"}),
            &gpt_primary,
            "gpt-backup-1",
        ),
    ];
    let mut wrong = Vec::new();
    for (path, body, primary, backup) in cases {
        primary.push_reply(cut());
        let resp = post_at(format!("{}{path}", gw.url), MASTER, &body).await;
        let got = (
            resp.status().as_u16(),
            resp.headers()
                .get("x-litellm-model-id")
                .map(|v| v.to_str().unwrap().to_owned()),
        );
        let text = resp.text().await.unwrap_or_default();
        // Responses objects carry `"error": null`; a failure is an error event or object.
        let failed = text.contains("event: error")
            || text.contains("response.failed")
            || text.contains("\"error\":{");
        let ok = got == (200, Some(backup.to_owned())) && text.contains("Echo") && !failed;
        if !ok {
            wrong.push(format!("{path}: got {got:?}, body {text:?}"));
        }
    }
    assert!(wrong.is_empty(), "no fallback:\n{}", wrong.join("\n"));
}

#[tokio::test]
async fn a_group_whose_members_all_cool_down_still_falls_back() {
    let a = failing(500).await;
    let b = failing(500).await;
    let backup = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("primary", "a", &a, &[]),
            member("primary", "b", &b, &[]),
            member("backup", "backup-1", &backup, &[]),
        ],
        "allowed_fails: 0\ncooldown_time: 30\nfallbacks: [{primary: [backup]}]",
    ));
    away_from_minute_boundary().await;
    for i in 0..3 {
        let text = format!("cooling primary {i}");
        let resp = post(&gw, ask("primary", &text)).await;
        assert_eq!(
            header(&resp, "x-litellm-attempted-fallbacks"),
            "1",
            "request {i}"
        );
        assert_eq!(expect_answer(resp, &text).await, "backup-1");
    }
    assert_eq!(
        (asked(&a), asked(&b)),
        (1, 1),
        "cooling members are skipped, the fallback answers"
    );
}

// ---------------------------------------------------------------------------------------
// Members that cannot serve at all
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn members_with_bad_credentials_or_without_the_model_are_skipped_for_chat_and_embeddings() {
    let wrong_key = MockServer::start(MockOptions::with_api_key("sk-the-right-one"))
        .await
        .unwrap();
    let no_model = MockServer::start(MockOptions {
        models: Some(vec!["some-other-model".into()]),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let good = healthy().await;
    let embed = |group: &str, id: &str, mock: &MockServer, order: &str| {
        member_as(group, id, "openai/text-embedding-3-small", mock, &[order])
    };
    let gw = Gateway::start(&config(
        &[
            member(
                "gpt-test",
                "wrong-key",
                &wrong_key,
                &["order: 1", "max_retries: 3"],
            ),
            member(
                "gpt-test",
                "no-model",
                &no_model,
                &["order: 2", "max_retries: 3"],
            ),
            member("gpt-test", "good", &good, &["order: 3"]),
            embed("embed", "embed-wrong-key", &wrong_key, "order: 1"),
            embed("embed", "embed-no-model", &no_model, "order: 2"),
            embed("embed", "embed-good", &good, "order: 3"),
        ],
        "allowed_fails: 1000",
    ));
    let id = expect_answer(post(&gw, ask("gpt-test", "who serves")).await, "who serves").await;
    assert_eq!(id, "good");
    assert_eq!(
        (asked(&wrong_key), asked(&no_model)),
        (1, 1),
        "a member that cannot serve is not retried"
    );

    let resp = post_at(
        format!("{}/v1/embeddings", gw.url),
        MASTER,
        &json!({"model": "embed", "input": "vector please"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(served_by(&resp), "embed-good");
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["data"][0]["embedding"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{v}"
    );
    assert_eq!(wrong_key.requests_to("/v1/embeddings").len(), 1);
    assert_eq!(no_model.requests_to("/v1/embeddings").len(), 1);
}

// ---------------------------------------------------------------------------------------
// In-flight slots and spend rows
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_frees_its_slot() {
    let opts = || MockOptions {
        chunk_delay: Duration::from_millis(200),
        ..MockOptions::default()
    };
    let a = MockServer::start(opts()).await.unwrap();
    let b = MockServer::start(opts()).await.unwrap();
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "a", &a, &[]),
            member("gpt-test", "b", &b, &[]),
        ],
        "routing_strategy: least-busy",
    ));
    // Three streams of 40 words (8 s at 200 ms a chunk), left after the first chunk. An
    // odd number: were their slots kept, one member would stay busier than the other.
    let long = "word ".repeat(40);
    for _ in 0..3 {
        let resp = post(&gw, ask_stream("gpt-test", long.trim())).await;
        assert_eq!(resp.status(), 200);
        let mut resp = resp;
        assert!(resp.chunk().await.unwrap().is_some());
        drop(resp);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Both slots are free again: least-busy sees a tie and picks at random.
    let mut by = std::collections::HashMap::new();
    for i in 0..20 {
        let text = format!("after {i}");
        let id = expect_answer(post(&gw, ask("gpt-test", &text)).await, &text).await;
        *by.entry(id).or_insert(0) += 1;
    }
    assert_eq!(
        by.len(),
        2,
        "one member kept the slots of the abandoned streams: {by:?}"
    );
}

#[tokio::test]
async fn the_spend_row_of_a_fallen_back_request_names_the_deployment_that_answered() {
    let f = Fallbacks::start(failing(500).await).await;
    let gw = Gateway::start(&f.all_configured());
    let resp = post(&gw, ask("primary", "who pays")).await;
    assert_fell_back_to(&resp, "backup-1", "backup");
    let cost: f64 = header(&resp, "x-litellm-response-cost").parse().unwrap();
    expect_answer(resp, "who pays").await;
    assert!(cost > 0.0);
    spend_rows(&gw).await;
    // Give a second (wrong) row time to appear.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rows = spend_rows(&gw).await;
    assert_eq!(rows.len(), 1, "one request, one row: {rows:?}");
    assert_eq!(rows[0]["model_id"], "backup-1", "{rows:?}");
    assert_eq!(rows[0]["status"], "success", "{rows:?}");
    assert!((rows[0]["spend"].as_f64().unwrap() - cost).abs() < 1e-12);
}

// ---------------------------------------------------------------------------------------
// Fallbacks and key scopes, errors in the client's dialect, mid-stream cuts
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_keys_request_cannot_fall_back_to_a_group_the_key_may_not_use() {
    let primary = failing(500).await;
    let premium = healthy().await;
    let cfg = config(
        &[
            member("primary", "primary-1", &primary, &[]),
            member("premium", "premium-1", &premium, &[]),
        ],
        "",
    )
    .replace(
        "general_settings:\n",
        "virtual_keys:\n  - api_key: sk-limited-router\n    models: [primary]\ngeneral_settings:\n",
    );
    let gw = Gateway::start(&cfg);
    let direct = post_at(
        format!("{}{CHAT}", gw.url),
        "sk-limited-router",
        &ask("premium", "direct"),
    )
    .await;
    assert_eq!(direct.status(), 403, "the key may not use premium");
    let mut body = ask("primary", "sneaky");
    body["fallbacks"] = json!(["premium"]);
    let resp = post_at(format!("{}{CHAT}", gw.url), "sk-limited-router", &body).await;
    let status = resp.status().as_u16();
    let id = resp
        .headers()
        .get("x-litellm-model-id")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        asked(&premium),
        0,
        "the body's fallbacks reached a group the key may not use (status {status}, served by {id:?})"
    );
    assert_ne!(status, 200);
}

#[tokio::test]
async fn messages_clients_get_anthropic_shaped_errors_from_the_router() {
    let a = failing(529).await;
    let b = failing(529).await;
    let claude = "anthropic/claude-3-5-haiku-20241022";
    let gw = Gateway::start(&config(
        &[
            member_as("claude", "a", claude, &a, &[]),
            member_as("claude", "b", claude, &b, &[]),
        ],
        "allowed_fails: 0\ncooldown_time: 10",
    ));
    away_from_minute_boundary().await;
    let send = || async {
        post_at(
            format!("{}/v1/messages", gw.url),
            MASTER,
            &json!({"model": "claude", "max_tokens": 64,
                          "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await
    };
    let first = send().await;
    assert!(first.status().is_server_error(), "{}", first.status());
    let v: Value = first.json().await.unwrap();
    assert_eq!(v["type"], "error", "Anthropic's error shape: {v}");
    let asked_before = (asked_messages(&a), asked_messages(&b));
    let second = send().await;
    // Every member cooling down: 503, or Anthropic's own "overloaded" 529, which
    // Anthropic's SDKs retry; either way with the wait until the first is back.
    assert!(
        matches!(second.status().as_u16(), 503 | 529),
        "{}",
        second.status()
    );
    assert!(
        second.headers().contains_key("retry-after"),
        "{:?}",
        second.headers()
    );
    assert_eq!((asked_messages(&a), asked_messages(&b)), asked_before);
    let v: Value = second.json().await.unwrap();
    assert_eq!(v["type"], "error", "Anthropic's error shape: {v}");
    assert!(v["error"]["message"].is_string(), "{v}");
}

#[tokio::test]
async fn a_stream_cut_mid_way_counts_toward_the_members_cooldown() {
    let cutting = MockServer::start(MockOptions {
        chunk_delay: Duration::from_millis(20),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    for _ in 0..2 {
        cutting.push_reply(Reply::DropMidStream {
            text: "this will be cut short".into(),
            after_chunks: 2,
        });
    }
    let good = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "cutting", &cutting, &["order: 1"]),
            member("gpt-test", "good", &good, &["order: 2"]),
        ],
        "allowed_fails: 1\ncooldown_time: 30",
    ));
    away_from_minute_boundary().await;
    for _ in 0..2 {
        let resp = post(&gw, ask_stream("gpt-test", "cut")).await;
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap_or_default();
        assert!(
            text.contains("\"error\""),
            "the cut reaches the client in band: {text}"
        );
    }
    let id = expect_answer(post(&gw, ask("gpt-test", "next")).await, "next").await;
    assert_eq!(
        id, "good",
        "two cut streams are two failures: more than allowed_fails: 1"
    );
}

#[tokio::test]
async fn every_openai_api_answers_503_with_retry_after_when_all_members_cool_down() {
    // Members with the wrong credentials fail every API (401) and cool down at once.
    let locked = || async {
        MockServer::start(MockOptions::with_api_key("sk-the-right-one"))
            .await
            .unwrap()
    };
    let (a, b, c, d) = (
        locked().await,
        locked().await,
        locked().await,
        locked().await,
    );
    let embed = "openai/text-embedding-3-small";
    let gw = Gateway::start(&config(
        &[
            member("gpt", "gpt-a", &a, &[]),
            member("gpt", "gpt-b", &b, &[]),
            member_as("embed", "embed-c", embed, &c, &[]),
            member_as("embed", "embed-d", embed, &d, &[]),
        ],
        "allowed_fails: 0\ncooldown_time: 20",
    ));
    away_from_minute_boundary().await;
    let send = |path: &'static str, body: Value| {
        let url = format!("{}{path}", gw.url);
        async move { post_at(url, MASTER, &body).await }
    };
    // Cool both groups down.
    let first = send(CHAT, ask("gpt", "x")).await;
    assert_eq!(first.status(), 401, "the vendor's refusal, as it said it");
    let first = send("/v1/embeddings", json!({"model": "embed", "input": "x"})).await;
    assert_eq!(first.status(), 401);
    let total =
        || a.requests().len() + b.requests().len() + c.requests().len() + d.requests().len();
    let asked_before = total();

    let cases = [
        (CHAT, ask("gpt", "plain")),
        (CHAT, ask_stream("gpt", "streamed")),
        (
            "/v1/responses",
            json!({"model": "gpt", "input": "responses"}),
        ),
        (
            "/v1/responses",
            json!({"model": "gpt", "input": "streamed responses", "stream": true}),
        ),
        (
            "/v1/embeddings",
            json!({"model": "embed", "input": "embeddings"}),
        ),
    ];
    let mut wrong = Vec::new();
    for (path, body) in cases {
        let stream = body["stream"] == true;
        let resp = send(path, body).await;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = resp.text().await.unwrap_or_default();
        let ok = status == 503
            && retry_after
                .as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|s| (1..=20).contains(&s))
            && serde_json::from_str::<Value>(&text)
                .is_ok_and(|v| v["error"]["message"].is_string());
        if !ok {
            wrong.push(format!(
                "{path} (stream: {stream}): {status}, retry-after {retry_after:?}, body {text:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(total(), asked_before, "no cooling member is asked");
}

// ---------------------------------------------------------------------------------------
// Per-request timeouts, background health checks, router state across replicas
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_requests_own_timeout_moves_on_and_is_not_forwarded() {
    let stalled = slow(Duration::from_secs(10)).await;
    let good = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "stalled", &stalled, &["order: 1"]),
            member("gpt-test", "good", &good, &["order: 2"]),
        ],
        "",
    ));
    let mut body = ask("gpt-test", "in a hurry");
    body["timeout"] = json!(0.5);
    let started = Instant::now();
    let id = expect_answer(post(&gw, body).await, "in a hurry").await;
    assert_eq!(id, "good");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(asked(&stalled), 1);
    let sent = &good.requests_to(CHAT)[0].body;
    assert!(
        sent.get("timeout").is_none(),
        "timeout forwarded upstream: {sent}"
    );

    // Garbage is the client's error, in OpenAI's shape.
    let mut bad = ask("gpt-test", "x");
    bad["timeout"] = json!("soon");
    let resp = post(&gw, bad).await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["param"], "timeout", "{err}");
}

#[tokio::test]
async fn background_health_checks_take_a_dead_member_out_before_a_client_meets_it() {
    let dead = failing(500).await;
    let good = healthy().await;
    let mut cfg = config(
        &[
            member("gpt-test", "dead", &dead, &["order: 1"]),
            member("gpt-test", "good", &good, &["order: 2"]),
        ],
        "allowed_fails: 0\ncooldown_time: 60",
    );
    cfg.push_str("  background_health_checks: true\n  health_check_interval: 1\n");
    let gw = Gateway::start(&cfg);
    // The first round runs at start-up.
    let deadline = Instant::now() + Duration::from_secs(10);
    let health = loop {
        let health = get_json(&gw, "/health").await;
        let dead_probed = health["unhealthy_endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["model_id"] == "dead" && e["last_health_check"]["ok"] == false);
        // Probes run concurrently: wait for both.
        let good_probed = health["healthy_endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["model_id"] == "good" && !e["last_health_check"].is_null());
        if dead_probed && good_probed {
            break health;
        }
        assert!(
            Instant::now() < deadline,
            "no failed probe reported: {health}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let dead_entry = health["unhealthy_endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["model_id"] == "dead")
        .unwrap();
    assert!(
        dead_entry["cooldown_remaining_s"]
            .as_f64()
            .is_some_and(|left| left > 0.0),
        "{health}"
    );
    let good_entry = health["healthy_endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["model_id"] == "good")
        .unwrap_or_else(|| panic!("good not healthy: {health}"));
    assert_eq!(good_entry["last_health_check"]["ok"], true, "{health}");
    assert_eq!(health["background_health_checks"]["interval_s"], 1.0);

    // The probe asked for one token, under the deployment's upstream model.
    let probe = &dead.requests_to(CHAT)[0].body;
    assert_eq!(probe["max_tokens"], 1, "{probe}");
    assert_eq!(probe["model"], "gpt-4o-mini", "{probe}");

    let probes_before = asked(&dead);
    let id = expect_answer(post(&gw, ask("gpt-test", "hello")).await, "hello").await;
    assert_eq!(id, "good");
    assert_eq!(
        asked(&dead),
        probes_before,
        "the client's request reached the dead member"
    );
    // Probes are the operator's: one spend row, the client's.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rows = spend_rows(&gw).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
}

/// Unique deployment ids per test run: router state is shared under them in Redis.
fn run_tag() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

const SHARED_REDIS: &str = "redis_host: 127.0.0.1\nredis_port: 6379";

#[tokio::test]
async fn a_deployments_rpm_is_counted_across_replicas() {
    away_from_minute_boundary().await;
    let limited = healthy().await;
    let spare = healthy().await;
    let tag = run_tag();
    let (limited_id, spare_id) = (format!("limited-{tag}"), format!("spare-{tag}"));
    let cfg = config(
        &[
            member("gpt-test", &limited_id, &limited, &["order: 1", "rpm: 2"]),
            member("gpt-test", &spare_id, &spare, &["order: 2"]),
        ],
        SHARED_REDIS,
    );
    let one = Gateway::start(&cfg);
    let two = Gateway::start(&cfg);
    for i in 0..2 {
        let text = format!("one {i}");
        let id = expect_answer(post(&one, ask("gpt-test", &text)).await, &text).await;
        assert_eq!(id, limited_id);
    }
    // Reports travel every 500 ms.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for i in 0..3 {
        let text = format!("two {i}");
        let id = expect_answer(post(&two, ask("gpt-test", &text)).await, &text).await;
        assert_eq!(
            id, spare_id,
            "replica two ignored the rpm used on replica one"
        );
    }
    assert_eq!(asked(&limited), 2);
}

#[tokio::test]
async fn least_busy_counts_requests_in_flight_on_another_replica() {
    let slow_mock = slow(Duration::from_secs(3)).await;
    let fast = healthy().await;
    let tag = run_tag();
    let (slow_id, fast_id) = (format!("slow-{tag}"), format!("fast-{tag}"));
    let cfg = config(
        &[
            member("gpt-test", &slow_id, &slow_mock, &[]),
            member("gpt-test", &fast_id, &fast, &[]),
        ],
        &format!("routing_strategy: least-busy\n{SHARED_REDIS}"),
    );
    let one = Gateway::start(&cfg);
    let two = Gateway::start(&cfg);
    // Replica one: requests until one is held by the slow member (the fast one answers
    // at once, so nothing else stays in flight).
    let mut held = Vec::new();
    while asked(&slow_mock) == 0 {
        let url = format!("{}{CHAT}", one.url);
        held.push(tokio::spawn(async move {
            post_at(url, MASTER, &ask("gpt-test", "held"))
                .await
                .status()
        }));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Replica two has nothing in flight itself; without the shared count it would pick
    // at random (all five to the idle member: 1 in 32).
    for i in 0..5 {
        let text = format!("two {i}");
        let id = expect_answer(post(&two, ask("gpt-test", &text)).await, &text).await;
        assert_eq!(
            id, fast_id,
            "replica two sent to the member busy on replica one"
        );
    }
    for h in held {
        assert_eq!(h.await.unwrap(), 200);
    }
    assert_eq!(asked(&slow_mock), 1);
}

#[tokio::test]
async fn routing_rules_reroute_by_header_and_prefer_deployments_by_tag() {
    let small_a = healthy().await;
    let small_b = healthy().await;
    let big = healthy().await;
    let gw = Gateway::start(&config(
        &[
            member("gpt-test", "plain", &small_a, &[]),
            member("gpt-test", "cheap", &small_b, &["tags: [cheap]"]),
            member("gpt-big", "big", &big, &[]),
        ],
        r#"routing_rules:
  - name: research-goes-big
    when: 'request.headers["X-Team"] == "research" && request.tokens > 0'
    model: gpt-big
  - name: budget-prefers-cheap
    when: 'request.headers.x-tier == "budget"'
    prefer: '"cheap" in deployment.tags'"#,
    ));
    let send = |headers: &'static [(&'static str, &'static str)], text: &'static str| {
        let url = format!("{}{CHAT}", gw.url);
        async move {
            let mut req = client()
                .post(url)
                .bearer_auth(MASTER)
                .json(&ask("gpt-test", text));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.send().await.unwrap()
        }
    };
    let resp = send(&[("x-team", "research")], "deep question").await;
    assert_eq!(header(&resp, "x-litellm-model-group"), "gpt-big");
    assert_eq!(expect_answer(resp, "deep question").await, "big");

    for _ in 0..8 {
        let resp = send(&[("x-tier", "budget")], "cheap please").await;
        assert_eq!(expect_answer(resp, "cheap please").await, "cheap");
    }
    let mut plain = 0;
    for _ in 0..16 {
        if expect_answer(send(&[], "anything").await, "anything").await == "plain" {
            plain += 1;
        }
    }
    assert!(plain > 0, "without the header both members serve");
    assert_eq!(asked(&big), 1);
}

#[test]
fn a_routing_rule_with_a_typo_fails_start_up_with_its_place() {
    let cfg = "model_list:\n  - model_name: g\n    litellm_params:\n      model: openai/x\n      api_base: http://127.0.0.1:9\nrouter_settings:\n  routing_rules:\n    - when: 'request.heders.x == \"a\"'\n      model: g\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, cfg).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("routing_rules[0].when: unknown variable 'request.heders.x'"),
        "{text}"
    );
}

#[tokio::test]
async fn a_deployment_refusing_the_probe_itself_is_up() {
    // A 400 to the probe (a reasoning model rejecting `max_tokens`, say) is an answer.
    let picky = failing(400).await;
    let other = healthy().await;
    let mut cfg = config(
        &[
            member("gpt-test", "picky", &picky, &[]),
            member("gpt-test", "other", &other, &[]),
        ],
        "allowed_fails: 0\ncooldown_time: 60",
    );
    cfg.push_str("  background_health_checks: true\n  health_check_interval: 1\n");
    let gw = Gateway::start(&cfg);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = get_json(&gw, "/health").await;
        let picky_entry = health["healthy_endpoints"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["model_id"] == "picky" && !e["last_health_check"].is_null())
            .cloned();
        if let Some(entry) = picky_entry {
            assert_eq!(entry["last_health_check"]["ok"], true, "{health}");
            assert!(entry["cooldown_remaining_s"].is_null(), "{health}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "picky never probed healthy: {health}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(asked(&picky) >= 1);
}
