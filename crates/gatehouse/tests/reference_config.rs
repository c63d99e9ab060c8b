#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The operator's LiteLLM reference setup, as written there: master key and database URL
//! under `litellm_settings` via `os.environ/`, Claude 3 Haiku, an MCP Postgres server
//! behind legacy SSE with `api_keys` and `require_approval: never`, and a virtual key
//! declared in config. With LiteLLM the answer stopped at `finish_reason: "tool_calls"`;
//! here it must come back with real rows and `finish_reason: "stop"` — and the key must
//! survive the database being recreated.

mod common;

use std::process::Command;

use common::{
    Child2, Gateway, TempDatabase, client, free_port, postgres_server, supergateway, wait_for_port,
};
use gatehouse_testkit::{MockOptions, MockServer};
use serde_json::{Value, json};

const MASTER: &str = "sk-litellm-cecca390f610603ff5180ba0ba2674afc8f7689716daf25343de027d10c32404";
const VIRTUAL: &str =
    "sk-litellm-test-9768ce8475df0a3c5aa0d2f52571505b2ef09f3a21ec1af73859749fff4bb7cd";

#[tokio::test]
async fn the_reference_config_answers_with_real_rows() {
    let data_db = TempDatabase::create();
    let key_db = TempDatabase::create();
    let anthropic = MockServer::start(MockOptions::with_api_key("sk-ant-api03-test"))
        .await
        .unwrap();

    // mcp-postgres behind legacy SSE, as in the reference's docker setup.
    let port = free_port();
    let _mcp = Child2(
        Command::new("node")
            .arg(supergateway())
            .args([
                "--stdio",
                &format!(
                    "node {} postgresql://postgres@127.0.0.1:5432/postgres",
                    postgres_server()
                ),
            ])
            .args(["--port", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(port);

    let config = format!(
        r#"
model_list:
  - model_name: claude-3-haiku-orchestrator
    litellm_params:
      model: claude-3-haiku-20240307
      api_key: os.environ/ANTHROPIC_API_KEY
      api_base: {anthropic}
    model_info:
      mcp_servers: [db_main]

litellm_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
  database_url: os.environ/DATABASE_URL

mcp_servers:
  db_main:
    transport: sse
    url: http://127.0.0.1:{port}/sse
    api_keys: [os.environ/LITELLM_VIRTUAL_KEY_TEST]
    require_approval: "never"

virtual_keys:
  - api_key: os.environ/LITELLM_VIRTUAL_KEY_TEST
    key_alias: test-virtual-key
    models: [claude-3-haiku-orchestrator]
    user_id: mcp-test-user
"#,
        anthropic = anthropic.url()
    );
    let database_url = format!("postgresql://postgres@127.0.0.1:5432/{}", key_db.0);
    let env = [
        ("LITELLM_MASTER_KEY", MASTER),
        ("LITELLM_VIRTUAL_KEY_TEST", VIRTUAL),
        ("ANTHROPIC_API_KEY", "sk-ant-api03-test"),
        ("DATABASE_URL", database_url.as_str()),
    ];
    let gw = Gateway::start_with(&config, &[], &env);
    let ask = json!({
        "model": "claude-3-haiku-orchestrator",
        "messages": [{"role": "user", "content": "CALL db_main-query {\"sql\": \"SELECT datname FROM pg_database\"}"}],
    });
    let resp = client()
        .post(format!("{}/chat/completions", gw.url))
        .bearer_auth(VIRTUAL)
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["choices"][0]["finish_reason"], "stop", "{body}");
    let answer = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        answer.contains(&data_db.0),
        "the answer lists the databases: {answer}"
    );
    assert_eq!(body["mcp_calls"][0]["ok"], true);

    // Health as in the reference's debugging commands, with the master key.
    let health: Value = client()
        .get(format!("{}/health", gw.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["mcp_servers"][0]["name"], "db_main");
    assert_eq!(health["mcp_servers"][0]["status"], "ready");
    drop(gw);

    // "Virtual keys stopped working after database recreation": not here.
    common::psql(&format!("DROP DATABASE {} WITH (FORCE)", key_db.0));
    common::psql(&format!("CREATE DATABASE {}", key_db.0));
    let gw = Gateway::start_with(&config, &[], &env);
    let resp = client()
        .post(format!("{}/chat/completions", gw.url))
        .bearer_auth(VIRTUAL)
        .json(&ask)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
