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
