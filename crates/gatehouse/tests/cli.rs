#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The command line as an operator uses it: check, local mode, JSON logs, SIGTERM.

mod common;

use std::time::Duration;

use common::{Gateway, client, run};
use gatehouse_testkit::{MockOptions, MockServer};
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

#[tokio::test]
async fn embedded_default_config_serves_with_no_arguments() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let upstream = format!("{}/v1", mock.url());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gw = Gateway::spawn(
        dir,
        &[],
        &[
            ("GATEHOUSE_DEFAULT_UPSTREAM", &upstream),
            ("XDG_DATA_HOME", data.to_str().unwrap()),
        ],
    );
    let resp = client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Echo: hi");
    // Without a config the store lives in the user's data directory, not the cwd.
    assert!(data.join("gatehouse/gatehouse.db").exists());
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
