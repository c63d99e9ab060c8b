#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The real binary, played against as an attacker would: a web page reaching a local-mode
//! gateway (cross-site requests, DNS rebinding, CORS-simple bodies), requests with missing,
//! wrong or malformed keys on every route, a virtual key on admin routes, revoked config
//! keys after a restart, credentials in URLs, and upstreams answering garbage.
//!
//! Tests that need the request pipeline rewrite (issue 11) to pass are in
//! `tests/pending/garbage_upstream.rs`, enabled by the lead when it lands.

mod common;

use std::time::Duration;

use common::{Gateway, TempDatabase, client, everything};
use gatehouse_testkit::{MockOptions, MockServer};
use reqwest::Method;
use serde_json::{Value, json};

const MASTER: &str = "sk-master-attacker";
const VIRTUAL: &str = "sk-virtual-attacker";

/// Every route the gateway serves (besides liveness), with a method it answers.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/chat/completions"),
    ("POST", "/chat/completions"),
    ("POST", "/v1/responses"),
    ("POST", "/responses"),
    ("GET", "/v1/responses/resp_x"),
    ("DELETE", "/v1/responses/resp_x"),
    ("POST", "/v1/messages"),
    ("POST", "/v1/messages/count_tokens"),
    ("POST", "/v1/embeddings"),
    ("POST", "/embeddings"),
    ("GET", "/v1/models"),
    ("GET", "/models"),
    ("GET", "/v1/models/gpt-4o-mini"),
    ("GET", "/models/gpt-4o-mini"),
    ("GET", "/health"),
    ("GET", "/health/readiness"),
    ("GET", "/metrics"),
    ("POST", "/key/generate"),
    ("GET", "/key/info"),
    ("POST", "/key/update"),
    ("POST", "/key/delete"),
    ("POST", "/key/block"),
    ("POST", "/key/unblock"),
    ("POST", "/key/regenerate"),
    ("POST", "/key/sk-x/regenerate"),
    ("GET", "/key/list"),
    ("GET", "/spend/logs"),
    ("POST", "/mcp"),
    ("GET", "/mcp"),
    ("DELETE", "/mcp"),
    ("POST", "/mcp/"),
    ("POST", "/mcp/ev"),
    ("GET", "/mcp/sse"),
    ("POST", "/mcp/message?sessionId=x"),
    ("POST", "/mcp/tools"),
    ("POST", "/mcp/invoke"),
    ("GET", "/v1/mcp/servers"),
    ("GET", "/v1/mcp/tools"),
    ("POST", "/v1/mcp/tools/call"),
    ("GET", "/no/such/route"),
];

/// Routes only the master key may use.
const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("POST", "/key/generate"),
    ("POST", "/key/update"),
    ("POST", "/key/delete"),
    ("POST", "/key/block"),
    ("POST", "/key/unblock"),
    ("POST", "/key/regenerate"),
    ("POST", "/key/sk-x/regenerate"),
    ("GET", "/key/list"),
    ("GET", "/spend/logs"),
    ("GET", "/key/info?key=sk-someone-else"),
    ("GET", "/metrics"),
];

/// A body that would do something on each POST route (a tool run, a model call).
fn body_for(path: &str) -> Value {
    match path {
        p if p.starts_with("/mcp") => json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "ev-echo", "arguments": {"message": "pwned"}}}),
        "/v1/mcp/tools/call" => json!({"name": "ev-echo", "arguments": {"message": "pwned"}}),
        _ => json!({"model": "gpt-4o-mini", "input": "x", "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "mcp", "server_label": "ev", "server_url": "litellm_proxy"}]}),
    }
}

fn config(mock: &MockServer, auth: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}"}}
mcp_servers:
  ev:
    command: node
    args: ["{ev}", "stdio"]
{auth}
"#,
        base = mock.url(),
        ev = everything()
    )
}

fn keyed(mock: &MockServer) -> String {
    config(
        mock,
        &format!(
            "general_settings:\n  master_key: {MASTER}\nvirtual_keys:\n  - api_key: {VIRTUAL}\n    key_alias: attacker-virtual\n"
        ),
    )
}

fn request(gw: &Gateway, method: &str, path: &str) -> reqwest::RequestBuilder {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let builder = client().request(method.clone(), format!("{}{path}", gw.url));
    if method == Method::POST {
        builder.json(&body_for(path.split('?').next().unwrap_or(path)))
    } else {
        builder
    }
}

async fn send(builder: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = builder
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The refusal is in the route's dialect: what that route's clients can parse.
fn assert_dialect(path: &str, body: &Value) {
    if path.starts_with("/mcp") {
        assert_eq!(body["jsonrpc"], "2.0", "{path}: {body}");
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    } else if path.starts_with("/v1/messages") {
        assert_eq!(body["type"], "error", "{path}: {body}");
        assert!(body["error"]["type"].is_string(), "{path}: {body}");
    } else {
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    }
}

#[tokio::test]
async fn local_mode_refuses_rebinding_and_cross_site_requests_on_every_route() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&config(&mock, ""));
    assert!(gw.logs().contains("LOCAL MODE"), "{}", gw.logs());
    let port = gw.url.rsplit(':').next().unwrap().to_string();
    for (method, path) in ROUTES {
        // DNS rebinding: the page's own name resolves to 127.0.0.1.
        let (status, body) =
            send(request(&gw, method, path).header("host", format!("rebind.evil.example:{port}")))
                .await;
        assert_eq!(status, 403, "rebinding {method} {path}: {body}");
        assert_dialect(path, &body);
        // Cross-site: a page on another origin sends to localhost.
        let (status, body) =
            send(request(&gw, method, path).header("origin", "https://evil.example")).await;
        assert_eq!(status, 403, "cross-site {method} {path}: {body}");
        assert_dialect(path, &body);
        // Sandboxed iframes and file:// pages send `Origin: null`.
        let (status, _) = send(request(&gw, method, path).header("origin", "null")).await;
        assert_eq!(status, 403, "null origin {method} {path}");
    }
    // The same requests from the machine itself are served.
    let (status, body) = send(request(&gw, "POST", "/v1/chat/completions")).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(
        request(&gw, "GET", "/v1/models").header("origin", format!("http://localhost:{port}")),
    )
    .await;
    assert_eq!(status, 200);
    // Nothing the attacker sent reached the model (the refusals come from the guard,
    // ahead of every handler, so no tool ran either).
    assert_eq!(mock.requests().len(), 1, "only our own chat call");
}

#[tokio::test]
async fn local_mode_refuses_cors_simple_bodies_on_every_post_route() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&config(&mock, ""));
    for (method, path) in ROUTES.iter().filter(|(m, _)| *m == "POST") {
        let json_text = body_for(path.split('?').next().unwrap()).to_string();
        for content_type in [
            Some("text/plain"),
            Some("text/plain;charset=UTF-8"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            None,
        ] {
            let mut b = client()
                .request(Method::POST, format!("{}{path}", gw.url))
                .body(json_text.clone());
            if let Some(ct) = content_type {
                b = b.header("content-type", ct);
            }
            let (status, body) = send(b).await;
            assert_eq!(status, 415, "{method} {path} as {content_type:?}: {body}");
            assert_dialect(path, &body);
            let message = body["error"]["message"].as_str().unwrap_or("");
            assert!(message.contains("application/json"), "{path}: {message}");
        }
    }
    assert!(
        mock.requests().is_empty(),
        "a text/plain body reached the model"
    );
    // The same body as JSON is served: the refusal is about the content type alone.
    let (status, body) = send(request(&gw, "POST", "/v1/chat/completions")).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn every_route_refuses_missing_wrong_and_schemeless_keys() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&keyed(&mock));
    for (method, path) in ROUTES {
        let (status, body) = send(request(&gw, method, path)).await;
        assert_eq!(status, 401, "no key: {method} {path}: {body}");
        let (status, body) = send(request(&gw, method, path).bearer_auth("sk-wrong")).await;
        assert_eq!(status, 401, "wrong key: {method} {path}: {body}");
        // The right key without the Bearer scheme is refused, with the way to send it.
        let (status, body) = send(request(&gw, method, path).header("authorization", MASTER)).await;
        assert_eq!(status, 401, "no Bearer scheme: {method} {path}: {body}");
        let text = body.to_string();
        assert!(text.contains("Bearer <key>"), "{path}: {text}");
        // Nor does another scheme pass.
        let (status, _) =
            send(request(&gw, method, path).header("authorization", format!("Basic {MASTER}")))
                .await;
        assert_eq!(status, 401, "Basic: {method} {path}");
    }
    // The key headers clients really use still work.
    for header in ["x-api-key", "api-key", "x-litellm-api-key"] {
        let (status, body) = send(request(&gw, "GET", "/v1/models").header(header, MASTER)).await;
        assert_eq!(status, 200, "{header}: {body}");
    }
    let (status, _) = send(request(&gw, "GET", "/health/liveliness")).await;
    assert_eq!(status, 200, "liveness needs no key");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn a_virtual_key_cannot_use_admin_routes_or_see_health_details() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&keyed(&mock));
    for (method, path) in ADMIN_ROUTES {
        let (status, body) = send(request(&gw, method, path).bearer_auth(VIRTUAL)).await;
        assert_eq!(status, 403, "virtual key on {method} {path}: {body}");
    }
    // It may still ask about itself, and use the API.
    let (status, body) = send(request(&gw, "GET", "/key/info").bearer_auth(VIRTUAL)).await;
    assert_eq!(status, 200, "{body}");
    let (status, health) = send(request(&gw, "GET", "/health").bearer_auth(VIRTUAL)).await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "healthy", "{health}");
    let text = health.to_string();
    assert!(
        !text.contains("api_base") && !text.contains("127.0.0.1") && !text.contains("mcp_servers"),
        "{text}"
    );
    let (_, health) = send(request(&gw, "GET", "/health").bearer_auth(MASTER)).await;
    assert_eq!(health["healthy_count"], 1, "{health}");
    assert!(health["mcp_servers"].is_array(), "{health}");
}

#[tokio::test]
async fn credentials_in_urls_never_reach_health_error_bodies_or_logs() {
    // A closed port, so the request fails and the client error names the URL.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let cfg = format!(
        r#"
model_list:
  - model_name: userinfo
    litellm_params: {{model: openai/x, api_base: "http://ops:hunter2@127.0.0.1:{port}/v1"}}
  - model_name: query
    litellm_params: {{model: openai/x, api_base: "http://127.0.0.1:{port}/v1?key=AIzaTopSecret"}}
general_settings:
  master_key: {MASTER}
litellm_settings:
  num_retries: 0
"#
    );
    let gw = Gateway::start_with(&cfg, &["--detailed_debug"], &[]);
    for model in ["userinfo", "query"] {
        let resp = client()
            .post(format!("{}/v1/chat/completions", gw.url))
            .bearer_auth(MASTER)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 502, "{model}");
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("AIzaTopSecret"),
            "{text}"
        );
        let resp = client()
            .post(format!("{}/v1/messages", gw.url))
            .bearer_auth(MASTER)
            .json(&json!({"model": model, "max_tokens": 5,
                          "messages": [{"role": "user", "content": "x"}]}))
            .send()
            .await
            .unwrap();
        let text = resp.text().await.unwrap();
        assert!(
            !text.contains("hunter2") && !text.contains("AIzaTopSecret"),
            "{text}"
        );
    }
    let (_, health) = send(request(&gw, "GET", "/health").bearer_auth(MASTER)).await;
    let text = health.to_string();
    assert!(text.contains("***@127.0.0.1"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("AIzaTopSecret"),
        "{text}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = gw.logs();
    assert!(
        logs.contains("127.0.0.1"),
        "the failures were logged: {logs}"
    );
    assert!(
        !logs.contains("hunter2") && !logs.contains("AIzaTopSecret"),
        "{logs}"
    );
}

async fn chat_status(gw: &Gateway, key: &str) -> u16 {
    client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn admin(gw: &Gateway, path: &str, body: Value) -> (u16, Value) {
    send(
        client()
            .post(format!("{}{path}", gw.url))
            .bearer_auth(MASTER)
            .json(&body),
    )
    .await
}

/// Blocks one config key, deletes another and regenerates a third, restarts the real
/// binary on the same database (`extra` names it), and checks all three stay refused.
async fn revocations_survive_a_restart(extra: &str) {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let cfg = format!(
        r#"
model_list:
  - model_name: gpt-4o-mini
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}"}}
general_settings:
  master_key: {MASTER}
{extra}
virtual_keys:
  - api_key: sk-config-blocked-1
    key_alias: to-block
  - api_key: sk-config-deleted-2
    key_alias: to-delete
  - api_key: sk-config-rotated-3
    key_alias: to-rotate
  - api_key: sk-config-kept-4
    key_alias: kept
"#,
        base = mock.url()
    );
    let mut gw = Gateway::start(&cfg);
    for key in [
        "sk-config-blocked-1",
        "sk-config-deleted-2",
        "sk-config-rotated-3",
    ] {
        assert_eq!(chat_status(&gw, key).await, 200, "{key}");
    }
    let (status, body) = admin(&gw, "/key/block", json!({"key": "sk-config-blocked-1"})).await;
    assert_eq!((status, &body["blocked"]), (200, &json!(true)), "{body}");
    let (status, _) = admin(&gw, "/key/delete", json!({"keys": ["sk-config-deleted-2"]})).await;
    assert_eq!(status, 200);
    let (status, rotated) = admin(
        &gw,
        "/key/regenerate",
        json!({"key": "sk-config-rotated-3"}),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new_key = rotated["key"].as_str().unwrap().to_string();
    for key in [
        "sk-config-blocked-1",
        "sk-config-deleted-2",
        "sk-config-rotated-3",
    ] {
        assert_eq!(chat_status(&gw, key).await, 401, "{key} before restart");
    }
    let dir = gw.dir.path().to_path_buf();
    assert!(gw.terminate().success());

    let gw = Gateway::start_with_dir(&cfg, dir);
    for key in [
        "sk-config-blocked-1",
        "sk-config-deleted-2",
        "sk-config-rotated-3",
    ] {
        assert_eq!(
            chat_status(&gw, key).await,
            401,
            "{key} came back after restart"
        );
    }
    assert_eq!(chat_status(&gw, "sk-config-kept-4").await, 200);
    assert_eq!(chat_status(&gw, &new_key).await, 200);
    let logs = gw.logs();
    for alias in ["to-block", "to-delete", "to-rotate"] {
        assert!(
            logs.lines()
                .any(|l| l.contains(alias) && l.contains("virtual_keys") && l.contains("WARN")),
            "no start-up warning naming {alias}: {logs}"
        );
    }
    // Unblocking works at once and sticks.
    let (status, body) = admin(&gw, "/key/unblock", json!({"key": "sk-config-blocked-1"})).await;
    assert_eq!((status, &body["blocked"]), (200, &json!(false)), "{body}");
    assert_eq!(chat_status(&gw, "sk-config-blocked-1").await, 200);
}

#[tokio::test]
async fn revoked_config_keys_stay_revoked_after_a_restart_sqlite() {
    revocations_survive_a_restart("").await;
}

#[tokio::test]
async fn revoked_config_keys_stay_revoked_after_a_restart_postgres() {
    let db = TempDatabase::create();
    revocations_survive_a_restart(&format!(
        "  database_url: postgresql://postgres@127.0.0.1:5432/{}",
        db.0
    ))
    .await;
}

#[tokio::test]
async fn malformed_model_requests_are_refused_in_each_apis_dialect_before_any_upstream_call() {
    let mock = MockServer::start(MockOptions::default()).await.unwrap();
    let gw = Gateway::start(&keyed(&mock));
    let model_routes = [
        "/v1/chat/completions",
        "/chat/completions",
        "/v1/responses",
        "/responses",
        "/v1/messages",
        "/v1/messages/count_tokens",
        "/v1/embeddings",
        "/embeddings",
    ];
    let mut no_model = body_for("/v1/chat/completions");
    no_model.as_object_mut().unwrap().remove("model");
    let bodies: [(&str, Vec<u8>); 5] = [
        ("not JSON", b"{\"model\": \"gpt-4o-mini\", ".to_vec()),
        ("an array", b"[1, 2, 3]".to_vec()),
        ("no model", serde_json::to_vec(&no_model).unwrap()),
        ("empty model", {
            let mut b = body_for("/v1/chat/completions");
            b["model"] = json!("");
            serde_json::to_vec(&b).unwrap()
        }),
        ("model not a string", {
            let mut b = body_for("/v1/chat/completions");
            b["model"] = json!({"$gt": ""});
            serde_json::to_vec(&b).unwrap()
        }),
    ];
    for path in model_routes {
        for (what, body) in &bodies {
            let (status, answer) = send(
                client()
                    .post(format!("{}{path}", gw.url))
                    .bearer_auth(MASTER)
                    .header("content-type", "application/json")
                    .body(body.clone()),
            )
            .await;
            assert_eq!(status, 400, "{what} on {path}: {answer}");
            assert_dialect(path, &answer);
            if what.contains("model") {
                let message = answer["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("model"), "{what} on {path}: {answer}");
            }
        }
    }
    assert!(mock.requests().is_empty(), "{:?}", mock.requests().len());
}
