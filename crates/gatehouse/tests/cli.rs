#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The command line as an operator uses it: check, local mode, JSON logs, SIGTERM.

mod common;

use std::time::Duration;

use common::{Gateway, client, run};
use gatehouse_testkit::{AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, MockOptions, MockServer};
use serde_json::{Value, json};

#[test]
fn check_lists_what_would_be_served() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        r#"
model_list:
  - model_name: claude-3-haiku-orchestrator
    litellm_params:
      model: claude-3-haiku-20240307
      api_key: os.environ/ANTHROPIC_API_KEY
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
virtual_keys:
  - api_key: os.environ/LITELLM_VIRTUAL_KEY_TEST
    key_alias: test-virtual-key
"#,
    )
    .unwrap();
    let env = [
        ("ANTHROPIC_API_KEY", "sk-ant-secret"),
        ("LITELLM_MASTER_KEY", "sk-master-secret"),
        ("LITELLM_VIRTUAL_KEY_TEST", "sk-virtual-secret"),
    ];
    let (code, stdout, stderr) = run(&["check", "--config", path.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("claude-3-haiku-orchestrator"), "{stdout}");
    assert!(stdout.contains("anthropic"), "{stdout}");
    assert!(stdout.contains("test-virtual-key"), "{stdout}");
    for secret in ["sk-ant-secret", "sk-master-secret", "sk-virtual-secret"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn check_reports_every_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "model_list:\n  - model_name: a\n    litellm_params:\n      model: antropic/claude-3\n  - model_name: b\n    litellm_params:\n      model: openai/gpt-4o\n      api_key: os.environ/GH_TEST_SURELY_UNSET\n",
    )
    .unwrap();
    let (code, _, stderr) = run(&["check", "--config", path.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(":4:") && stderr.contains("did you mean \"anthropic\""),
        "{stderr}"
    );
    assert!(
        stderr.contains(":8:") && stderr.contains("GH_TEST_SURELY_UNSET"),
        "{stderr}"
    );
}

#[test]
fn serve_refuses_to_start_on_a_bad_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "model_list:\n  - model_name: x\n    litellm_params:\n      model: openai/x\n      timeout: abc\n").unwrap();
    let (code, _, stderr) = run(&["--config", path.to_str().unwrap(), "--port", "0"], &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("model_list[0].litellm_params.timeout"),
        "{stderr}"
    );
}

#[test]
fn local_mode_refuses_a_public_bind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "model_list: []\n").unwrap();
    let (code, _, stderr) = run(
        &[
            "--config",
            path.to_str().unwrap(),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("refusing to bind 0.0.0.0"), "{stderr}");
}

#[tokio::test]
async fn local_mode_serves_loopback_without_a_key_and_says_so() {
    let gw = Gateway::start("model_list: []\n");
    assert!(gw.url.starts_with("http://127.0.0.1:"), "{}", gw.url);
    assert!(gw.logs().contains("LOCAL MODE"));
    let resp = client()
        .get(format!("{}/v1/models", gw.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

async fn chat(gw: &Gateway, model: &str) -> (u16, Value) {
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn header<'r>(req: &'r gatehouse_testkit::RecordedRequest, name: &str) -> Option<&'r str> {
    req.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

// Multi-threaded: the mocks must answer the gateway's start-up probes while this thread
// waits for it to start.
#[tokio::test(flavor = "multi_thread")]
async fn without_a_config_the_providers_in_the_environment_are_served() {
    // One mock per vendor, each demanding its own key, so a key sent to the wrong
    // vendor fails; Ollama and the default upstream are keyless local servers.
    let openai = MockServer::start(MockOptions::with_api_key("sk-openai-env"))
        .await
        .unwrap();
    let anthropic = MockServer::start(MockOptions::with_api_key("sk-ant-env"))
        .await
        .unwrap();
    let ollama = MockServer::start(MockOptions::default()).await.unwrap();
    let bedrock = MockServer::start(MockOptions::default()).await.unwrap();
    let local = MockServer::start(MockOptions {
        models: Some(vec!["local-llama".into()]),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (openai_base, local_base) = (
        format!("{}/v1", openai.url()),
        format!("{}/v1", local.url()),
    );
    let ollama_host = ollama.addr().to_string();
    let gw = Gateway::spawn(
        dir,
        &[],
        &[
            ("OPENAI_API_KEY", "sk-openai-env"),
            ("OPENAI_API_BASE", &openai_base),
            ("ANTHROPIC_API_KEY", "sk-ant-env"),
            ("ANTHROPIC_API_BASE", &anthropic.url()),
            ("OLLAMA_HOST", &ollama_host),
            ("GATEHOUSE_DEFAULT_UPSTREAM", &local_base),
            ("AWS_ACCESS_KEY_ID", AWS_ACCESS_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", AWS_SECRET_ACCESS_KEY),
            ("AWS_REGION", "us-west-2"),
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &bedrock.url()),
            ("XDG_DATA_HOME", data.to_str().unwrap()),
        ],
    );
    let logs = gw.logs();
    for line in [
        "serving openai/* (OPENAI_API_KEY, OPENAI_API_BASE)",
        "serving anthropic/* (ANTHROPIC_API_KEY",
        "serving ollama/*",
        "serving bedrock/* (AWS_ACCESS_KEY_ID)",
        "1 model(s) of GATEHOUSE_DEFAULT_UPSTREAM",
    ] {
        assert!(logs.contains(line), "{line} not in\n{logs}");
    }
    for secret in ["sk-openai-env", "sk-ant-env", AWS_SECRET_ACCESS_KEY] {
        assert!(!logs.contains(secret), "{secret} in the log:\n{logs}");
    }

    let (status, body) = chat(&gw, "openai/gpt-4o").await;
    assert_eq!(
        (status, body["choices"][0]["message"]["content"].as_str()),
        (200, Some("Echo: hi")),
        "{body}"
    );
    assert_eq!(openai.last_request().unwrap().body["model"], "gpt-4o");

    let (status, body) = chat(&gw, "anthropic/claude-3-5-haiku-latest").await;
    assert_eq!(status, 200, "{body}");
    let sent = anthropic.requests_to("/v1/messages");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["model"], "claude-3-5-haiku-latest");

    let (status, body) = chat(&gw, "ollama/llama3.2").await;
    assert_eq!(status, 200, "{body}");
    let sent = ollama.requests_to("/v1/chat/completions");
    assert_eq!(sent[0].body["model"], "llama3.2");
    // Local servers never get the operator's OpenAI key.
    assert_eq!(header(&sent[0], "authorization"), None);

    // The bedrock mock checks the SigV4 signature made from the environment's keys.
    let (status, body) = chat(&gw, "bedrock/anthropic.claude-3-haiku-20240307-v1:0").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(bedrock.requests().len(), 1);
    assert!(
        bedrock.requests()[0].path.ends_with("/converse"),
        "{}",
        bedrock.requests()[0].path
    );

    let (status, body) = chat(&gw, "local-llama").await;
    assert_eq!(status, 200, "{body}");
    let sent = local.requests_to("/v1/chat/completions");
    assert_eq!(header(&sent[0], "authorization"), None);

    let models: Value = client()
        .get(format!("{}/v1/models", gw.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "anthropic/*",
            "bedrock/*",
            "local-llama",
            "ollama/*",
            "openai/*"
        ]
    );
    // The store lives in the user's data directory, not the cwd.
    assert!(data.join("gatehouse/gatehouse.db").exists());
}

#[tokio::test]
async fn with_nothing_in_the_environment_it_starts_and_says_how_to_add_a_provider() {
    // GATEHOUSE_DEFAULT_UPSTREAM points where nothing answers.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gw = Gateway::spawn(
        dir,
        &[],
        &[
            ("GATEHOUSE_DEFAULT_UPSTREAM", "http://127.0.0.1:9/v1"),
            ("XDG_DATA_HOME", data.to_str().unwrap()),
        ],
    );
    let (status, body) = chat(&gw, "openai/gpt-4o").await;
    assert_eq!(status, 404, "{body}");
    let logs = gw.logs();
    assert_eq!(
        logs.matches("no LLM provider found in the environment")
            .count(),
        1,
        "{logs}"
    );
    assert!(
        logs.contains("OPENAI_API_KEY") && logs.contains("--model openai/gpt-4o"),
        "{logs}"
    );
    assert!(
        logs.contains("http://127.0.0.1:9/v1 did not answer"),
        "{logs}"
    );
    let (code, out, _) = run(
        &["check"],
        &[
            ("OLLAMA_HOST", "127.0.0.1:9"),
            ("OPENAI_API_KEY", ""),
            ("ANTHROPIC_API_KEY", ""),
            ("GEMINI_API_KEY", ""),
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_BEARER_TOKEN_BEDROCK", ""),
            ("GATEHOUSE_DEFAULT_UPSTREAM", ""),
        ],
    );
    assert_eq!(code, 0);
    assert!(out.contains("no LLM provider found"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn model_flag_serves_one_model_as_litellm_does() {
    let mock = MockServer::start(MockOptions::with_api_key("sk-openai-env"))
        .await
        .unwrap();
    let base = format!("{}/v1", mock.url());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gw = Gateway::spawn(
        dir,
        &["--model", "openai/gpt-4o", "--api_base", &base],
        &[
            ("OPENAI_API_KEY", "sk-openai-env"),
            ("XDG_DATA_HOME", data.to_str().unwrap()),
        ],
    );
    let (status, body) = chat(&gw, "openai/gpt-4o").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.last_request().unwrap().body["model"], "gpt-4o");
    let (status, _) = chat(&gw, "openai/gpt-4o-mini").await;
    assert_eq!(status, 404);
    assert!(!gw.logs().contains("no LLM provider found"));
    let (code, _, err) = run(&["--model", "x", "--config", "c.yaml"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be used with"), "{err}");
}

#[tokio::test]
async fn without_xdg_data_home_the_store_goes_to_local_share() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let home_str = home.to_str().unwrap().to_string();
    let gw = Gateway::spawn(
        tempfile::tempdir().unwrap(),
        &[],
        &[("HOME", &home_str), ("XDG_DATA_HOME", "")],
    );
    assert!(
        gw.logs().contains(".local/share/gatehouse/gatehouse.db"),
        "{}",
        gw.logs()
    );
    assert!(home.join(".local/share/gatehouse/gatehouse.db").exists());
    // `gatehouse keys` without --config finds the same store.
    let (code, out, err) = run(
        &["keys", "create", "--alias", "from-cli"],
        &[("HOME", &home_str), ("XDG_DATA_HOME", "")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sk-"), "{out}");
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_without_secrets() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let cfg = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/m, api_base: \"{}\", api_key: sk-upstream-secret}}\nlitellm_settings:\n  json_logs: true\ngeneral_settings:\n  master_key: sk-master-secret\n",
        mock.url()
    );
    let gw = Gateway::start_with(&cfg, &["--detailed_debug"], &[]);
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("sk-master-secret")
        .header("x-request-id", "req-abc-123")
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-abc-123");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        mock.requests()[0].header("x-request-id"),
        Some("req-abc-123")
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    let logs = gw.logs();
    for line in logs.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.get("level").is_some(), "{line}");
    }
    assert!(logs.contains("req-abc-123"), "request id appears in logs");
    assert!(!logs.contains("sk-master-secret") && !logs.contains("sk-upstream-secret"));
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_stream_finish_then_exits_zero() {
    let mock = MockServer::start(MockOptions {
        chunk_delay: Duration::from_millis(100),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let cfg = format!(
        "model_list:\n  - model_name: m\n    litellm_params: {{model: openai/m, api_base: \"{}\"}}\n",
        mock.url()
    );
    let mut gw = Gateway::start(&cfg);
    let url = format!("{}/v1/chat/completions", gw.url);
    let stream = tokio::spawn(async move {
        let resp = client()
            .post(url)
            .json(&json!({"model": "m", "stream": true,
                          "messages": [{"role": "user", "content": "a b c d e f g h"}]}))
            .send()
            .await
            .unwrap();
        resp.text().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    let status = tokio::task::spawn_blocking(move || {
        let status = gw.terminate();
        (status, gw)
    });
    let text = stream.await.unwrap();
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "stream was cut: {text}"
    );
    let (status, _gw) = status.await.unwrap();
    assert!(status.success(), "exit status {status:?}");
}
