#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! One accounting path: the same Anthropic call costs the same whichever API the client
//! speaks and whether it streams, including Anthropic's cache tokens, and a stream is
//! billed even when the client did not ask for usage.

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, client};
use gatehouse_testkit::{MockOptions, MockServer};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-accounting";

async fn setup() -> (MockServer, Gateway, String) {
    setup_with("").await
}

/// The gateway over one Anthropic mock; `general` is appended to `general_settings`.
async fn setup_with(general: &str) -> (MockServer, Gateway, String) {
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    // Claude Sonnet 4.5 is in the price table with cache prices.
    let cfg = format!(
        r#"
model_list:
  - model_name: claude
    litellm_params: {{model: anthropic/claude-sonnet-4-5-20250929, api_base: "{base}", api_key: sk-up}}
general_settings:
  master_key: {MASTER}
{general}
"#,
        base = mock.url()
    );
    let gw = Gateway::start(&cfg);
    let created: Value = client()
        .post(format!("{}/key/generate", gw.url))
        .bearer_auth(MASTER)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    (mock, gw, key)
}

fn body(path: &str, stream: bool) -> Value {
    let prompt = "price me the same everywhere";
    match path {
        "/v1/chat/completions" => json!({"model": "claude", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}),
        "/v1/messages" => json!({"model": "claude", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": prompt}]}),
        _ => json!({"model": "claude", "max_output_tokens": 64, "stream": stream,
            "input": prompt, "store": false}),
    }
}

async fn rows(gw: &Gateway, key: &str, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows: Value = client()
            .get(format!("{}/spend/logs?api_key={key}&limit=100", gw.url))
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
async fn one_anthropic_call_costs_the_same_through_every_api_streamed_or_not() {
    let (_mock, gw, key) = setup().await;
    let cases = [
        ("/v1/chat/completions", false),
        ("/v1/chat/completions", true),
        ("/v1/messages", false),
        ("/v1/messages", true),
        ("/v1/responses", false),
        ("/v1/responses", true),
    ];
    let mut header_costs = Vec::new();
    for (path, stream) in cases {
        let resp = client()
            .post(format!("{}{path}", gw.url))
            .bearer_auth(&key)
            .header("anthropic-version", "2023-06-01")
            .json(&body(path, stream))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path} stream={stream}");
        if !stream {
            let cost: f64 = resp.headers()["x-litellm-response-cost"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            header_costs.push((path, cost));
        }
        let text = resp.text().await.unwrap();
        if path == "/v1/chat/completions" && stream {
            // The client did not ask for usage: it sees none, and the stream still ends.
            assert!(!text.contains("\"usage\":{"), "{text}");
            assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        }
    }
    let rows = rows(&gw, &key, cases.len()).await;
    let first = &rows[0];
    assert!(first["prompt_tokens"].as_u64().unwrap() > 0, "{first}");
    assert!(first["completion_tokens"].as_u64().unwrap() > 0, "{first}");
    assert!(first["spend"].as_f64().unwrap() > 0.0, "{first}");
    for row in &rows {
        for field in ["prompt_tokens", "completion_tokens"] {
            assert_eq!(row[field], first[field], "{field} differs:\n{row}\n{first}");
        }
        let (a, b) = (
            row["spend"].as_f64().unwrap(),
            first["spend"].as_f64().unwrap(),
        );
        assert!((a - b).abs() < 1e-12, "cost differs: {row} vs {first}");
    }
    for (path, cost) in header_costs {
        let b = first["spend"].as_f64().unwrap();
        assert!(
            (cost - b).abs() < 1e-9,
            "{path}: header says {cost}, row {b}"
        );
    }
}

/// A budget holds on the replica that served: spend is applied in memory when each answer
/// is over, so sequential requests stop as soon as the budget is spent, with or without
/// spend logs.
#[tokio::test]
async fn a_budget_stops_the_next_request_at_once_even_without_spend_logs() {
    for disable_logs in [false, true] {
        let (_mock, gw, _) = setup_with(&format!("  disable_spend_logs: {disable_logs}")).await;
        let ask = |key: String| {
            let url = format!("{}/v1/chat/completions", gw.url);
            async move {
                client()
                    .post(url)
                    .bearer_auth(key)
                    .json(&body("/v1/chat/completions", false))
                    .send()
                    .await
                    .unwrap()
            }
        };
        // One request's cost, measured with the master key.
        let cost: f64 = ask(MASTER.into()).await.headers()["x-litellm-response-cost"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(cost > 0.0);
        let created: Value = client()
            .post(format!("{}/key/generate", gw.url))
            .bearer_auth(MASTER)
            .json(&json!({"max_budget": cost * 1.5}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let key = created["key"].as_str().unwrap().to_string();
        let mut served = 0;
        for _ in 0..8 {
            let resp = ask(key.clone()).await;
            if resp.status() == 200 {
                served += 1;
                resp.text().await.unwrap();
            } else {
                assert_eq!(resp.status(), 400);
                let err: Value = resp.json().await.unwrap();
                assert_eq!(err["error"]["type"], "budget_exceeded", "{err}");
            }
        }
        assert_eq!(
            served, 2,
            "a budget worth 1.5 requests serves two, then refuses (disable_spend_logs: {disable_logs})"
        );
        if disable_logs {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let rows: Value = client()
                .get(format!("{}/spend/logs?api_key={key}", gw.url))
                .bearer_auth(MASTER)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(rows, json!([]), "disable_spend_logs writes no rows");
        }
    }
}

/// Under concurrent streamed load, an rpm limit admits exactly its number, and a budget
/// or a tpm limit overshoots by at most the requests already in flight: once they are
/// over, the next request is refused.
#[tokio::test]
async fn limits_and_budgets_hold_under_concurrent_streams() {
    let (_mock, gw, _) = setup().await;
    let generate = |body: Value| {
        let url = format!("{}/key/generate", gw.url);
        async move {
            let v: Value = client()
                .post(url)
                .bearer_auth(MASTER)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["key"].as_str().unwrap().to_string()
        }
    };
    let stream = |key: String| {
        let url = format!("{}/v1/chat/completions", gw.url);
        async move {
            let resp = client()
                .post(url)
                .bearer_auth(key)
                .json(&body("/v1/chat/completions", true))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            if status == 200 {
                assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
            }
            status
        }
    };
    let burst = |key: String, n: usize| {
        let futures: Vec<_> = (0..n).map(|_| stream(key.clone())).collect();
        futures_util::future::join_all(futures)
    };

    // rpm: 5 of 20 concurrent streams, exactly.
    let key = generate(json!({"rpm_limit": 5})).await;
    let statuses = burst(key, 20).await;
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(served, 5, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );

    // Budget worth one request: a concurrent burst may all be in flight, then no more.
    let cost = {
        let resp = client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(MASTER)
            .json(&body("/v1/chat/completions", false))
            .send()
            .await
            .unwrap();
        resp.headers()["x-litellm-response-cost"]
            .to_str()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let key = generate(json!({"max_budget": cost * 0.5})).await;
    let statuses = burst(key.clone(), 8).await;
    assert!(statuses.contains(&200), "{statuses:?}");
    assert_eq!(
        stream(key).await,
        400,
        "the budget is spent: refused at once"
    );

    // tpm: tokens are counted when each stream ends; after the burst, refused.
    let key = generate(json!({"tpm_limit": 1})).await;
    let statuses = burst(key.clone(), 6).await;
    assert!(statuses.contains(&200), "{statuses:?}");
    assert_eq!(stream(key).await, 429, "the tpm limit is spent");
}

#[tokio::test]
async fn token_counting_runs_under_the_keys_limits_and_is_logged_at_no_cost() {
    let (mock, gw, _) = setup().await;
    let created: Value = client()
        .post(format!("{}/key/generate", gw.url))
        .bearer_auth(MASTER)
        .json(&json!({"rpm_limit": 3}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let resp = client()
            .post(format!("{}/v1/messages/count_tokens", gw.url))
            .bearer_auth(&key)
            .json(
                &json!({"model": "claude", "messages": [{"role": "user", "content": "count me"}]}),
            )
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let answer: Value = resp.json().await.unwrap();
        if status == 200 {
            assert!(answer["input_tokens"].is_u64(), "{answer}");
        } else {
            // Refused in the Messages API's own error shape.
            assert_eq!(answer["type"], "error", "{answer}");
            assert_eq!(answer["error"]["type"], "rate_limit_error", "{answer}");
        }
        statuses.push(status);
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // Only the admitted ones reached the vendor.
    assert_eq!(mock.requests_to("/v1/messages/count_tokens").len(), 3);
    let rows = rows(&gw, &key, 3).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        assert_eq!(row["spend"].as_f64(), Some(0.0), "{row}");
    }
}
