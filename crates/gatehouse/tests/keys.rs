#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Virtual keys end to end: the admin API in LiteLLM's shapes, keys that survive restarts
//! and recreated databases, scopes taking effect at once, spend rows, budgets.

mod common;

use std::time::{Duration, Instant};

use common::{Gateway, TempDatabase, client, run};
use gatehouse_testkit::{MockOptions, MockServer};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-keys";

fn config(mock: &MockServer, extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}"}}
  - model_name: other
    litellm_params: {{model: openai/other, api_base: "{base}"}}
general_settings:
  master_key: {MASTER}
{extra}
"#,
        base = mock.url()
    )
}

async fn admin(gw: &Gateway, path: &str, body: Value) -> (u16, Value) {
    let resp = client()
        .post(format!("{}{path}", gw.url))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(gw: &Gateway, path: &str, key: &str) -> (u16, Value) {
    let resp = client()
        .get(format!("{}{path}", gw.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn chat(gw: &Gateway, key: &str, model: &str) -> reqwest::Response {
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn admin_api_generates_scopes_updates_and_revokes_at_once() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&config(&mock, ""));
    let (status, created) = admin(
        &gw,
        "/key/generate",
        json!({"key_alias": "ci-bot", "models": ["gpt-4o-mini"], "duration": "30d", "metadata": {"team": "x"}}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    assert!(
        key.starts_with("sk-") && key.len() >= 3 + 43,
        "256 bits of randomness: {key}"
    );
    assert_eq!(created["key_alias"], "ci-bot");
    assert!(created["expires"].is_string());

    assert_eq!(chat(&gw, &key, "gpt-4o-mini").await.status(), 200);
    assert_eq!(chat(&gw, &key, "other").await.status(), 403);

    // A key may read its own info; the secret is never shown again.
    let (status, info) = get(&gw, "/key/info", &key).await;
    assert_eq!(status, 200);
    assert_eq!(info["info"]["key_alias"], "ci-bot");
    assert!(!info.to_string().contains(&key));
    // ...but not manage keys.
    let resp = client()
        .post(format!("{}/key/generate", gw.url))
        .bearer_auth(&key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    let (status, _) = admin(&gw, "/key/update", json!({"key": key, "models": ["other"]})).await;
    assert_eq!(status, 200);
    assert_eq!(
        chat(&gw, &key, "gpt-4o-mini").await.status(),
        403,
        "update applies at once"
    );
    assert_eq!(chat(&gw, &key, "other").await.status(), 200);

    let (status, regenerated) = admin(&gw, "/key/regenerate", json!({"key": key})).await;
    assert_eq!(status, 200);
    let new_key = regenerated["key"].as_str().unwrap().to_string();
    assert_eq!(
        chat(&gw, &key, "other").await.status(),
        401,
        "old key dead at once"
    );
    assert_eq!(chat(&gw, &new_key, "other").await.status(), 200);

    let (status, deleted) = admin(&gw, "/key/delete", json!({"keys": [new_key]})).await;
    assert_eq!(status, 200);
    assert_eq!(deleted["deleted_keys"].as_array().unwrap().len(), 1);
    assert_eq!(
        chat(&gw, &new_key, "other").await.status(),
        401,
        "revoked at once"
    );
    let (status, _) = admin(&gw, "/key/delete", json!({"keys": [new_key]})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn key_list_pages_and_aliases_are_stored_verbatim() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&config(&mock, ""));
    let nasty = "'; DROP TABLE gatehouse_keys; --";
    for i in 0..12 {
        let alias = if i == 0 {
            nasty.to_string()
        } else {
            format!("k{i}")
        };
        let (status, _) = admin(&gw, "/key/generate", json!({"key_alias": alias})).await;
        assert_eq!(status, 200);
    }
    let (status, page) = get(
        &gw,
        "/key/list?page=2&size=5&return_full_object=true",
        MASTER,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["total_count"], 12);
    assert_eq!(page["total_pages"], 3);
    assert_eq!(page["keys"].as_array().unwrap().len(), 5);
    let (_, found) = get(
        &gw,
        &format!(
            "/key/list?key_alias={}&return_full_object=true",
            urlencode(nasty)
        ),
        MASTER,
    )
    .await;
    assert_eq!(found["keys"][0]["key_alias"], nasty);
    // A malformed key header is a plain 401, never a crash.
    let resp = client()
        .get(format!("{}/v1/models", gw.url))
        .header("authorization", "Bearer \u{7f}\u{1}")
        .send()
        .await;
    if let Ok(resp) = resp {
        assert_eq!(resp.status(), 401);
    }
    let (status, _) = get(&gw, "/v1/models", "Bearer").await;
    assert_eq!(status, 401);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn config_keys_survive_a_recreated_database_and_api_keys_survive_restarts() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let cfg = config(
        &mock,
        "virtual_keys:\n  - api_key: sk-config-declared-1\n    key_alias: declared\n",
    );
    let mut gw = Gateway::start(&cfg);
    let (_, created) = admin(&gw, "/key/generate", json!({"key_alias": "api-made"})).await;
    let api_key = created["key"].as_str().unwrap().to_string();
    let dir = gw.dir.path().to_path_buf();
    assert!(gw.terminate().success());

    // Restart on the same database: both keys work.
    let gw2 = Gateway::start_with_dir(&cfg, dir.clone());
    assert_eq!(chat(&gw2, &api_key, "other").await.status(), 200);
    assert_eq!(
        chat(&gw2, "sk-config-declared-1", "other").await.status(),
        200
    );
    drop(gw2);

    // The database is recreated from nothing: the config's key works again.
    for f in ["gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let gw3 = Gateway::start_with_dir(&cfg, dir);
    assert_eq!(
        chat(&gw3, "sk-config-declared-1", "other").await.status(),
        200
    );
    assert_eq!(chat(&gw3, &api_key, "other").await.status(), 401);
}

#[tokio::test]
async fn postgres_backend_keeps_config_keys_across_a_recreated_database() {
    let db = TempDatabase::create();
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let url = format!("postgresql://postgres@127.0.0.1:5432/{}", db.0);
    // `extra` continues general_settings, then starts virtual_keys.
    let cfg = config(
        &mock,
        &format!(
            "  database_url: {url}\nvirtual_keys:\n  - api_key: sk-pg-config-key\n    models: [other]\n"
        ),
    );
    let gw = Gateway::start(&cfg);
    assert_eq!(chat(&gw, "sk-pg-config-key", "other").await.status(), 200);
    assert!(gw.logs().contains("postgres"), "{}", gw.logs());
    drop(gw);
    common::psql(&format!("DROP DATABASE {} WITH (FORCE)", db.0));
    common::psql(&format!("CREATE DATABASE {}", db.0));
    let gw = Gateway::start(&cfg);
    assert_eq!(chat(&gw, "sk-pg-config-key", "other").await.status(), 200);
    assert_eq!(
        chat(&gw, "sk-pg-config-key", "gpt-4o-mini").await.status(),
        403
    );
}

#[tokio::test]
async fn spend_is_logged_with_cost_and_budgets_stop_a_key() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&config(&mock, ""));
    let (_, created) = admin(&gw, "/key/generate", json!({"max_budget": 0.0000001})).await;
    let key = created["key"].as_str().unwrap().to_string();
    let resp = chat(&gw, &key, "gpt-4o-mini").await;
    assert_eq!(resp.status(), 200);
    let cost: f64 = resp.headers()["x-litellm-response-cost"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0, "gpt-4o-mini is in the price table");

    // The row is written off the request path; the cache sees the spend within seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    let rows = loop {
        let (_, rows) = get(&gw, &format!("/spend/logs?api_key={key}"), MASTER).await;
        if rows.as_array().is_some_and(|r| !r.is_empty()) {
            break rows;
        }
        assert!(Instant::now() < deadline, "no spend row");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(rows[0]["model"], "gpt-4o-mini");
    assert!(rows[0]["prompt_tokens"].as_u64().unwrap() > 0);
    assert!((rows[0]["spend"].as_f64().unwrap() - cost).abs() < 1e-12);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = chat(&gw, &key, "gpt-4o-mini").await;
        if resp.status() == 400 {
            let err: Value = resp.json().await.unwrap();
            assert_eq!(err["error"]["type"], "budget_exceeded");
            break;
        }
        assert!(Instant::now() < deadline, "budget never enforced");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn sigterm_under_load_loses_no_spend_row() {
    let mock = MockServer::start(MockOptions {
        latency: Duration::from_millis(50),
        ..MockOptions::default()
    })
    .await
    .unwrap();
    let cfg = config(&mock, "");
    let mut gw = Gateway::start(&cfg);
    let url = format!("{}/v1/chat/completions", gw.url);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 5)).await;
            let resp = client()
                .post(url)
                .bearer_auth(MASTER)
                .json(&json!({"model": "other", "messages": [{"role": "user", "content": "x"}]}))
                .send()
                .await;
            resp.map(|r| r.status().as_u16() == 200).unwrap_or(false)
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let dir = gw.dir.path().to_path_buf();
    let status = tokio::task::spawn_blocking(move || {
        let s = gw.terminate();
        (s, gw)
    })
    .await
    .unwrap();
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() {
            ok += 1;
        }
    }
    assert!(status.0.success());
    assert!(ok > 0);
    let gw = Gateway::start_with_dir(&cfg, dir);
    let (_, rows) = get(&gw, "/spend/logs?limit=1000", MASTER).await;
    let rows = rows.as_array().unwrap();
    let successes = rows.iter().filter(|r| r["status"] == "success").count();
    assert!(
        successes >= ok,
        "{ok} requests completed, {successes} spend rows"
    );
}

#[tokio::test]
async fn the_keys_cli_creates_and_revokes() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&config(&mock, ""));
    let path = gw.config_path();
    let (code, out, err) = run(
        &[
            "keys",
            "--config",
            path.to_str().unwrap(),
            "create",
            "--alias",
            "ops",
            "--models",
            "other",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    // The gateway picks keys created elsewhere up within its refresh interval.
    let deadline = Instant::now() + Duration::from_secs(15);
    while chat(&gw, &key, "other").await.status() != 200 {
        assert!(Instant::now() < deadline, "CLI key never became valid");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (code, _, err) = run(
        &["keys", "--config", path.to_str().unwrap(), "revoke", &key],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while chat(&gw, &key, "other").await.status() != 401 {
        assert!(Instant::now() < deadline, "revoked key kept working");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let (code, out, _) = run(&["keys", "--config", path.to_str().unwrap(), "list"], &[]);
    assert_eq!(code, 0);
    assert!(out.contains("\"ops\"") && !out.contains(&key));
}

#[tokio::test]
async fn rpm_and_parallel_limits_answer_429_with_litellm_headers() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&config(&mock, ""));
    let (_, created) = admin(&gw, "/key/generate", json!({"rpm_limit": 3})).await;
    let key = created["key"].as_str().unwrap().to_string();
    for _ in 0..3 {
        let resp = chat(&gw, &key, "other").await;
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()
                .contains_key("x-ratelimit-remaining-requests")
        );
    }
    let resp = chat(&gw, &key, "other").await;
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=120).contains(&retry), "retry-after {retry}");
    assert_eq!(resp.headers()["x-ratelimit-remaining-requests"], "0");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], "rate_limit_error");
    // Other keys are not affected.
    assert_eq!(chat(&gw, MASTER, "other").await.status(), 200);
}

/// Two gateways sharing Redis enforce one rpm limit together.
#[tokio::test]
async fn two_replicas_sharing_redis_enforce_one_limit() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let db = TempDatabase::create();
    let url = format!("postgresql://postgres@127.0.0.1:5432/{}", db.0);
    let prefix = format!("gh-test-{}", db.0);
    let cfg = config(
        &mock,
        &format!(
            "  database_url: {url}\nvirtual_keys:\n  - api_key: sk-shared-limit-{prefix}\n    rpm_limit: 4\nrouter_settings:\n  redis_host: 127.0.0.1\n  redis_port: 6379\n"
        ),
    );
    let key = format!("sk-shared-limit-{prefix}");
    let a = Gateway::start(&cfg);
    let b = Gateway::start(&cfg);
    let mut ok = 0;
    for i in 0..8 {
        let gw = if i % 2 == 0 { &a } else { &b };
        if chat(gw, &key, "other").await.status() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 4, "one limit across both replicas");
}
