#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Azure OpenAI deployments: the real gateway binary against the testkit's Azure routes,
//! which check the deployment URL, `api-version` and the `api-key` header as Azure does.

mod common;

use common::{Gateway, client};
use gatehouse_testkit::{MockOptions, MockServer, Reply, azure_content_filter_error};
use serde_json::{Value, json};

const KEY: &str = "azure-key-123";

async fn setup(base_suffix: &str, version: &str) -> (MockServer, Gateway) {
    let mock = MockServer::start(MockOptions::with_api_key(KEY))
        .await
        .unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: gpt-azure
    litellm_params:
      model: azure/gpt4o-prod
      api_base: {base}{base_suffix}
      api_key: {KEY}
{version}
  - model_name: emb-azure
    litellm_params:
      model: azure/embed-dep
      api_base: {base}
      api_key: {KEY}
"#,
        base = mock.url()
    );
    (mock, Gateway::start(&cfg))
}

async fn chat(gw: &Gateway, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn deployment_url_version_and_key() {
    let (mock, gw) = setup("", "").await;
    let resp = chat(
        &gw,
        json!({"model": "gpt-azure", "messages": [{"role": "user", "content": "hi azure"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Echo: hi azure");
    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/openai/deployments/gpt4o-prod/chat/completions");
    assert_eq!(sent.query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(sent.header("api-key"), Some(KEY));
}

#[tokio::test]
async fn configured_version_and_a_base_ending_in_openai() {
    let (mock, gw) = setup("/openai/", "      api_version: 2025-01-01-preview\n").await;
    let resp = chat(
        &gw,
        json!({"model": "gpt-azure", "stream": true, "messages": [{"role": "user", "content": "stream me"}]}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("stream ") && text.trim_end().ends_with("data: [DONE]"),
        "{text}"
    );
    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/openai/deployments/gpt4o-prod/chat/completions");
    assert_eq!(
        sent.query.as_deref(),
        Some("api-version=2025-01-01-preview")
    );

    // A version Azure does not serve: its bare 404 reaches the client as a 404.
    let (_mock, gw) = setup("", "      api_version: 1999-01-01\n").await;
    let resp = chat(
        &gw,
        json!({"model": "gpt-azure", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn content_filter_refusals_are_recognisable() {
    let (mock, gw) = setup("", "").await;
    mock.push_reply(Reply::Error {
        status: 400,
        body_json: azure_content_filter_error(),
    });
    let resp = chat(
        &gw,
        json!({"model": "gpt-azure", "messages": [{"role": "user", "content": "bad"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "content_policy_violation", "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("content management policy")
    );
    assert_eq!(
        body["error"]["innererror"]["code"],
        "ResponsibleAIPolicyViolation"
    );
    assert_eq!(
        body["error"]["innererror"]["content_filter_result"]["violence"]["filtered"],
        true
    );

    // Other Azure errors are relayed as they are.
    mock.push_reply(Reply::Error {
        status: 400,
        body_json: json!({"error": {"message": "bad max_tokens", "type": "invalid_request_error", "param": "max_tokens", "code": null}}),
    });
    let resp = chat(
        &gw,
        json!({"model": "gpt-azure", "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["param"], "max_tokens");
}

#[tokio::test]
async fn embeddings_use_the_deployment_url() {
    let (mock, gw) = setup("", "").await;
    let resp = client()
        .post(format!("{}/v1/embeddings", gw.url))
        .json(&json!({"model": "emb-azure", "input": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let sent = &mock.requests()[0];
    assert_eq!(sent.path, "/openai/deployments/embed-dep/embeddings");
    assert_eq!(sent.header("api-key"), Some(KEY));
}
