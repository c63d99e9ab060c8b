#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! W3C trace context through the real binary: a client's `traceparent` reaches the
//! upstream LLM call in the same trace (under the attempt's span), and a request without
//! one starts a trace of its own. The spans themselves are decoded by a real OTLP
//! receiver in tests/python/test_otel.py.

mod common;

use common::{Gateway, client};
use gatehouse_testkit::{MockOptions, MockServer};
use serde_json::json;

const MASTER: &str = "sk-master-otel";

#[tokio::test]
async fn traceparent_is_propagated_to_the_upstream_call() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    // A collector that is not there: export fails (logged), requests are unaffected.
    let cfg = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: \"{}/v1\", api_key: k}}\ngeneral_settings:\n  master_key: {MASTER}\n",
        mock.url()
    );
    let gw = Gateway::start_with(
        &cfg,
        &[],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")],
    );
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(MASTER)
        .header("traceparent", format!("00-{trace}-{client_span}-01"))
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "trace me"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sent = mock.last_request().unwrap();
    let tp = sent
        .header("traceparent")
        .expect("traceparent sent upstream");
    let parts: Vec<&str> = tp.split('-').collect();
    assert_eq!(parts.len(), 4, "{tp}");
    assert_eq!(parts[1], trace, "same trace");
    assert_ne!(parts[2], client_span, "under the gateway's attempt span");
    assert_eq!(parts[3], "01");

    // No client context: a new trace, still propagated.
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(MASTER)
        .header("traceparent", "not a trace context")
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "again"}]}))
        .send()
        .await
        .unwrap();
    let tp = mock
        .last_request()
        .unwrap()
        .header("traceparent")
        .unwrap()
        .to_owned();
    assert!(!tp.contains(trace), "{tp}");
    assert_eq!(tp.len(), 55, "{tp}");
}

#[tokio::test]
async fn without_tracing_nothing_is_added_upstream() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let cfg = format!(
        "model_list:\n  - model_name: gpt\n    litellm_params: {{model: openai/gpt-4o-mini, api_base: \"{}/v1\", api_key: k}}\ngeneral_settings:\n  master_key: {MASTER}\n",
        mock.url()
    );
    let gw = Gateway::start(&cfg);
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(MASTER)
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(mock.last_request().unwrap().header("traceparent"), None);
}
