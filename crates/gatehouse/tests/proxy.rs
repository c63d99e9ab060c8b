#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The OpenAI-compatible proxy, end to end: the real binary, a real config file, and the
//! faithful OpenAI mock as upstream.

mod common;

use std::time::Duration;

use common::{Gateway, client};
use futures_util::StreamExt;
use gatehouse_testkit::{MockOptions, MockServer, Reply};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-test-1234";
const VIRTUAL: &str = "sk-virtual-test-5678";

async fn mock() -> MockServer {
    MockServer::start(MockOptions::with_api_key("sk-upstream"))
        .await
        .unwrap()
}

fn config(mock: &MockServer, extra_params: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt-test
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {base}
      api_key: sk-upstream
{extra_params}
  - model_name: other-model
    litellm_params:
      model: hosted_vllm/meta-llama/Llama-3-8B
      api_base: {base}/v1
      api_key: sk-upstream
general_settings:
  master_key: {MASTER}
virtual_keys:
  - api_key: {VIRTUAL}
    key_alias: limited
    models: [gpt-test]
"#,
        base = mock.url()
    )
}

async fn post(gw: &Gateway, path: &str, key: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = client().post(format!("{}{path}", gw.url)).json(&body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn chat_passthrough_keeps_unknown_fields_and_rewrites_the_model() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "      temperature: 0.1\n      seed: 7"));
    let resp = post(
        &gw,
        "/v1/chat/completions",
        Some(MASTER),
        json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hello there"}],
               "temperature": 0.5, "vendor_extension": {"keep": [1, 2]}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: hello there"
    );

    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-upstream"));
    assert_eq!(sent.body["model"], "gpt-4o-mini");
    assert_eq!(sent.body["vendor_extension"], json!({"keep": [1, 2]}));
    assert_eq!(
        sent.body["temperature"],
        json!(0.5),
        "the client's value wins"
    );
    assert_eq!(
        sent.body["seed"],
        json!(7),
        "deployment params fill the gaps"
    );
}

#[tokio::test]
async fn api_base_with_or_without_v1_reaches_the_same_endpoint() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, ""));
    for model in ["gpt-test", "other-model"] {
        let resp = post(
            &gw,
            "/chat/completions",
            Some(MASTER),
            json!({"model": model, "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
        assert_eq!(resp.status(), 200, "{model}");
    }
    let paths: Vec<String> = mock.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/v1/chat/completions", "/v1/chat/completions"]);
    assert_eq!(mock.requests()[1].body["model"], "meta-llama/Llama-3-8B");
}

#[tokio::test]
async fn streaming_is_relayed_with_usage_and_done() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, ""));
    let resp = post(
        &gw,
        "/v1/chat/completions",
        Some(MASTER),
        json!({"model": "gpt-test", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": "stream me please"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let text = resp.text().await.unwrap();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter_map(|e| e.trim().strip_prefix("data: "))
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Echo: stream me please");
    let usage = chunks
        .iter()
        .find(|c| c["usage"].is_object())
        .expect("usage chunk");
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn stream_arrives_chunk_by_chunk() {
    let mock = MockServer::start(MockOptions {
        chunk_delay: Duration::from_millis(150),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let gw = Gateway::start(&config(&mock, ""));
    let resp = post(
        &gw,
        "/v1/chat/completions",
        Some(MASTER),
        json!({"model": "gpt-test", "stream": true,
               "messages": [{"role": "user", "content": "one two three four"}]}),
    )
    .await;
    let started = std::time::Instant::now();
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    let first_at = started.elapsed();
    let mut rest = 0;
    while let Some(chunk) = stream.next().await {
        rest += chunk.unwrap().len();
    }
    let total = started.elapsed();
    assert!(!first.is_empty() && rest > 0);
    assert!(
        total - first_at >= Duration::from_millis(300),
        "chunks must not be buffered: first after {first_at:?}, all after {total:?}"
    );
}

#[tokio::test]
async fn mid_stream_failure_reaches_the_client_in_band() {
    // A chunk delay makes sure the first chunks left the upstream before the cut.
    let mock = MockServer::start(MockOptions {
        chunk_delay: Duration::from_millis(30),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    mock.push_reply(Reply::DropMidStream {
        text: "this answer will be cut".into(),
        after_chunks: 2,
    });
    let gw = Gateway::start(&config(&mock, ""));
    let resp = post(
        &gw,
        "/v1/chat/completions",
        Some(MASTER),
        json!({"model": "gpt-test", "stream": true, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let last = text
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .last()
        .unwrap()
        .trim()
        .strip_prefix("data: ")
        .unwrap();
    let err: Value = serde_json::from_str(last).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream"),
        "{err}"
    );
}

#[tokio::test]
async fn auth_rejects_missing_and_wrong_keys_in_openai_shape() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, ""));
    let body = json!({"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]});
    for key in [None, Some("sk-wrong")] {
        let resp = post(&gw, "/v1/chat/completions", key, body.clone()).await;
        assert_eq!(resp.status(), 401);
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["type"], "authentication_error");
    }
    // Liveness needs no key; everything else does.
    let live = client()
        .get(format!("{}/health/liveliness", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let models = client()
        .get(format!("{}/v1/models", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 401);
    // x-api-key and api-key headers work too.
    for header in ["x-api-key", "api-key"] {
        let resp = client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .header(header, VIRTUAL)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{header}");
    }
    assert!(
        mock.requests().len() == 2,
        "rejected requests never reach the upstream"
    );
    assert!(!gw.logs().contains(MASTER) && !gw.logs().contains("sk-upstream"));
}

#[tokio::test]
async fn key_scopes_models_in_listing_and_calls() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, ""));
    let list = |key: &'static str| {
        let url = format!("{}/v1/models", gw.url);
        async move {
            let v: Value = client()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(MASTER).await, ["gpt-test", "other-model"]);
    assert_eq!(list(VIRTUAL).await, ["gpt-test"]);

    let resp = post(
        &gw,
        "/v1/chat/completions",
        Some(VIRTUAL),
        json!({"model": "other-model", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 403);
    let err: Value = resp.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("other-model")
    );

    let resp = post(
        &gw,
        "/v1/chat/completions",
        Some(VIRTUAL),
        json!({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 404);
    let err: Value = resp.json().await.unwrap();
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("gpt-test") && !message.contains("other-model"),
        "{message}"
    );
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "").replace(
        "general_settings:\n",
        "general_settings:\n  max_request_size_mb: 0.01\n",
    ));
    let raw = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(MASTER)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let err: Value = raw.json().await.unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");

    let resp = post(
        &gw,
        "/v1/chat/completions",
        Some(MASTER),
        json!({"messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["param"],
        "model"
    );

    let big = "x".repeat(20_000);
    let resp = post(
        &gw,
        "/v1/chat/completions",
        Some(MASTER),
        json!({"model": "gpt-test", "messages": [{"role": "user", "content": big}]}),
    )
    .await;
    assert_eq!(resp.status(), 413);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["code"],
        "request_too_large"
    );
    assert!(mock.requests().is_empty());

    // Unknown paths and wrong methods answer in OpenAI's error shape too.
    let unknown = client()
        .get(format!("{}/v1/nope", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let err: Value = unknown.json().await.unwrap();
    assert_eq!(err["error"]["message"], "Invalid URL (GET /v1/nope)");
    let wrong = client()
        .get(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 405);
    let err: Value = wrong.json().await.unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn upstream_errors_keep_status_and_shape() {
    let mock = mock().await;
    mock.push_reply(Reply::Error {
        status: 400,
        body_json: json!({"error": {"message": "Invalid 'temperature'", "type": "invalid_request_error", "param": "temperature", "code": null}}),
    });
    let gw = Gateway::start(&config(&mock, ""));
    let resp = post(
        &gw,
        "/v1/chat/completions",
        Some(MASTER),
        json!({"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["param"], "temperature");
    assert_eq!(mock.requests().len(), 1, "a 400 is not retried");
}

#[tokio::test]
async fn retries_a_429_honouring_retry_after() {
    let mock = mock().await;
    mock.push_reply(Reply::rate_limited(1));
    let gw = Gateway::start(&config(&mock, "      max_retries: 2"));
    let started = std::time::Instant::now();
    let resp = post(
        &gw,
        "/v1/chat/completions",
        Some(MASTER),
        json!({"model": "gpt-test", "messages": [{"role": "user", "content": "again"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(mock.requests().len(), 2);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "waited for retry-after"
    );
}

#[tokio::test]
async fn slow_upstream_times_out_with_504() {
    let mock = MockServer::start(MockOptions {
        latency: Duration::from_secs(3),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let gw = Gateway::start(&config(&mock, "      timeout: 0.3"));
    let resp = post(
        &gw,
        "/v1/chat/completions",
        Some(MASTER),
        json!({"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 504);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"]["type"],
        "timeout"
    );
}

#[tokio::test]
async fn group_falls_over_to_a_live_deployment_and_respects_weights() {
    let live = mock().await;
    let cfg = format!(
        r#"
model_list:
  - model_name: grp
    litellm_params: {{model: openai/a, api_base: "http://127.0.0.1:9", api_key: k, weight: 1}}
  - model_name: grp
    litellm_params: {{model: openai/b, api_base: "{base}", api_key: sk-upstream, weight: 0}}
"#,
        base = live.url()
    );
    let gw = Gateway::start(&cfg);
    for _ in 0..3 {
        let resp = post(
            &gw,
            "/v1/chat/completions",
            None,
            json!({"model": "grp", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-litellm-model-id"], "grp#1");
    }
    let health: Value = client()
        .get(format!("{}/health", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["unhealthy_count"], 1);
    assert_eq!(health["unhealthy_endpoints"][0]["model_id"], "grp#0");
}

#[tokio::test]
async fn embeddings_pass_through() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, ""));
    let resp = post(
        &gw,
        "/v1/embeddings",
        Some(MASTER),
        json!({"model": "gpt-test", "input": ["alpha", "beta"], "dimensions": 8}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let expected = gatehouse_testkit::embedding_for("beta", 8);
    let got: Vec<f32> = serde_json::from_value(body["data"][1]["embedding"].clone()).unwrap();
    assert_eq!(got, expected);
    assert_eq!(mock.requests()[0].path, "/v1/embeddings");
}

#[tokio::test]
async fn metrics_count_requests() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, ""));
    post(
        &gw,
        "/v1/chat/completions",
        Some(MASTER),
        json!({"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    let text = client()
        .get(format!("{}/metrics", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("gatehouse_requests_total{route=\"/v1/chat/completions\",status=\"2xx\"} 1"),
        "{text}"
    );
    assert!(text.contains("gatehouse_upstream_seconds"));
}

#[tokio::test]
async fn cors_answers_preflights_for_configured_origins_only() {
    let mock = mock().await;
    let gw = Gateway::start(&config(&mock, "").replace(
        "general_settings:\n",
        "general_settings:\n  allowed_origins: [\"https://chat.example.lan\"]\n",
    ));
    let preflight = |origin: &'static str| {
        client()
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/chat/completions", gw.url),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
    };
    let ok = preflight("https://chat.example.lan").await.unwrap();
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "https://chat.example.lan"
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(!other.headers().contains_key("access-control-allow-origin"));
}
