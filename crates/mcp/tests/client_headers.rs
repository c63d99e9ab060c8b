//! Per-server client headers against real MCP servers: two instances of
//! `tests/py/header_echo_server.py` (official Python SDK) that report the HTTP headers of
//! every request they received. A header meant for one server must reach that server's
//! call only — not the other server, not a later call.
//!
//! Peer: `python3 -m venv /root/.cache/gatehouse/venv && /root/.cache/gatehouse/venv/bin/pip install mcp`
//! (override with `GATEHOUSE_VENV`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use gatehouse_config::Config;
use gatehouse_mcp::downstream::{EndpointSettings, router};
use gatehouse_mcp::{CallOptions, Hub, McpCaller, ServerState};
use serde_json::{Value, json};

fn python() -> PathBuf {
    let venv =
        std::env::var("GATEHOUSE_VENV").unwrap_or_else(|_| "/root/.cache/gatehouse/venv".into());
    let py = PathBuf::from(venv).join("bin/python");
    assert!(
        py.exists(),
        "{} missing: python3 -m venv /root/.cache/gatehouse/venv && /root/.cache/gatehouse/venv/bin/pip install mcp",
        py.display()
    );
    py
}

/// One header-echo server process, killed on drop.
struct Echo {
    child: std::process::Child,
    port: u16,
}

impl Echo {
    async fn start(sse: bool) -> Echo {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/py/header_echo_server.py"
        );
        let mut cmd = std::process::Command::new(python());
        cmd.arg(script).arg(port.to_string());
        if sse {
            cmd.arg("--sse");
        }
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "header echo server did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Echo { child, port }
    }

    fn url(&self, sse: bool) -> String {
        if sse {
            format!("http://127.0.0.1:{}/sse", self.port)
        } else {
            format!("http://127.0.0.1:{}/mcp", self.port)
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn ready(hub: &Hub, servers: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for s in servers {
        loop {
            let state = hub
                .status()
                .into_iter()
                .find(|st| st.name == *s)
                .unwrap()
                .state;
            if state == ServerState::Ready {
                break;
            }
            assert!(Instant::now() < deadline, "{s} not ready: {state:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.insert(
            HeaderName::try_from(*k).unwrap(),
            HeaderValue::try_from(*v).unwrap(),
        );
    }
    m
}

/// The JSON a header-echo tool returned.
fn payload(result: &Value) -> Value {
    assert_ne!(result["isError"], json!(true), "tool failed: {result}");
    serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap()
}

/// How many HTTP requests the server received with `header: value`.
fn seen(log: &Value, header: &str, value: &str) -> usize {
    log["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["headers"][header] == value)
        .count()
}

fn any_value_contains(log: &Value, needle: &str) -> bool {
    log["requests"].as_array().unwrap().iter().any(|r| {
        r["headers"]
            .as_object()
            .unwrap()
            .values()
            .any(|v| v.as_str().unwrap_or_default().contains(needle))
    })
}

async fn call(hub: &Hub, server: &str, tool: &str, extra: Vec<(String, String)>) -> Value {
    let opts = CallOptions {
        headers: extra,
        ..CallOptions::default()
    };
    hub.call_tool_with(server, tool, json!({}), opts)
        .await
        .unwrap()
}

async fn two_servers(sse: bool) -> (Arc<Hub>, Echo, Echo) {
    let (a, b) = (Echo::start(sse).await, Echo::start(sse).await);
    let transport = if sse { "sse" } else { "http" };
    let cfg: Config = serde_json::from_value(json!({
        "mcp_servers": {
            "alpha": {"url": a.url(sse), "transport": transport,
                      "headers": {"x-configured": "cfg-alpha", "authorization": "Bearer configured-alpha"}},
            "beta": {"url": b.url(sse), "transport": transport},
        },
        "litellm_settings": {"mcp_aliases": {"al": "alpha"}},
    }))
    .unwrap();
    let hub = Hub::from_config(&cfg).unwrap();
    hub.start();
    ready(&hub, &["alpha", "beta"]).await;
    (hub, a, b)
}

async fn only_the_called_server_gets_its_headers(sse: bool) {
    let (hub, _a, _b) = two_servers(sse).await;
    let client = headers(&[
        ("x-mcp-alpha-authorization", "Bearer client-alpha"),
        ("X-MCP-Alpha-X-Tenant", "t-7"),
        ("x-mcp-beta-authorization", "Bearer client-beta"),
        ("authorization", "Bearer gateway-key"),
    ]);
    let for_alpha = hub.client_headers("alpha", &client);
    assert_eq!(
        for_alpha,
        vec![
            (
                "authorization".to_string(),
                "Bearer client-alpha".to_string()
            ),
            ("x-tenant".to_string(), "t-7".to_string()),
        ]
    );

    // The call to alpha carries alpha's client headers; the client's wins over the
    // configured `authorization`, other configured headers stay.
    let got = payload(&call(&hub, "alpha", "headers", for_alpha).await);
    assert_eq!(got["authorization"], "Bearer client-alpha");
    assert_eq!(got["x-tenant"], "t-7");
    assert_eq!(got["x-configured"], "cfg-alpha");

    // A later call without client headers is back to the configured ones.
    let got = payload(&call(&hub, "alpha", "headers", Vec::new()).await);
    assert_eq!(got["authorization"], "Bearer configured-alpha");
    assert!(
        got.get("x-tenant").is_none(),
        "leaked into a later call: {got}"
    );

    // beta: nothing of alpha's, ever; and no authorization at all without its own header.
    let got = payload(
        &call(
            &hub,
            "beta",
            "headers",
            hub.client_headers("beta", &HeaderMap::new()),
        )
        .await,
    );
    assert!(got.get("authorization").is_none(), "beta got {got}");
    let log_b = payload(&call(&hub, "beta", "log", Vec::new()).await);
    assert!(
        !any_value_contains(&log_b, "client-alpha"),
        "beta saw alpha's header: {log_b}"
    );
    assert!(!any_value_contains(&log_b, "t-7"));
    assert!(!any_value_contains(&log_b, "gateway-key"));

    // alpha received its client header on exactly one HTTP request (the first call).
    let log_a = payload(&call(&hub, "alpha", "log", Vec::new()).await);
    assert_eq!(
        seen(&log_a, "authorization", "Bearer client-alpha"),
        1,
        "{log_a}"
    );
    assert!(!any_value_contains(&log_a, "client-beta"));

    // beta's own header, picked through the same request headers, reaches beta.
    let got = payload(&call(&hub, "beta", "headers", hub.client_headers("beta", &client)).await);
    assert_eq!(got["authorization"], "Bearer client-beta");

    // An alias picks the same server's headers.
    let via_alias = hub.client_headers(
        "alpha",
        &headers(&[("x-mcp-al-authorization", "Bearer via-alias")]),
    );
    let got = payload(&call(&hub, "alpha", "headers", via_alias).await);
    assert_eq!(got["authorization"], "Bearer via-alias");
    hub.shutdown().await;
}

#[tokio::test]
async fn streamable_http_headers_go_to_their_server_only() {
    only_the_called_server_gets_its_headers(false).await;
}

#[tokio::test]
async fn legacy_sse_headers_go_to_their_server_only() {
    only_the_called_server_gets_its_headers(true).await;
}

#[tokio::test]
async fn session_headers_cannot_be_overridden() {
    let (hub, _a, _b) = two_servers(false).await;
    let client = headers(&[
        ("x-mcp-alpha-mcp-session-id", "hijack"),
        ("x-mcp-alpha-host", "evil.example"),
    ]);
    assert!(hub.client_headers("alpha", &client).is_empty());
    // Even passed directly, reserved names are dropped and the call still works.
    let extra = vec![("mcp-session-id".to_string(), "hijack".to_string())];
    let got = payload(&call(&hub, "alpha", "headers", extra).await);
    assert_ne!(got["mcp-session-id"], "hijack");
    // An invalid header is refused, not sent.
    let bad = CallOptions {
        headers: vec![("bad name".into(), "x".into())],
        ..CallOptions::default()
    };
    assert!(
        hub.call_tool_with("alpha", "headers", json!({}), bad)
            .await
            .is_err()
    );
    hub.shutdown().await;
}

// ---- through the aggregated /mcp endpoint ----

async fn post(
    http: &reqwest::Client,
    url: &str,
    sid: Option<&str>,
    extra: &[(&str, &str)],
    body: Value,
) -> reqwest::Response {
    let mut r = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(s) = sid {
        r = r.header("mcp-session-id", s);
    }
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

/// The JSON-RPC message of a JSON or single-event SSE answer.
async fn message(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .unwrap_or(&text);
    serde_json::from_str(data.trim()).unwrap()
}

#[tokio::test]
async fn mcp_endpoint_routes_client_headers_per_server() {
    let (hub, _a, _b) = two_servers(false).await;
    let caller = McpCaller {
        key_id: "user".into(),
        key_hash: None,
        allowed_servers: None,
        is_admin: false,
    };
    let app = router(hub.clone(), EndpointSettings::default()).layer(Extension(caller));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{addr}/mcp");
    let http = reqwest::Client::new();

    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let resp = post(&http, &url, None, &[], init).await;
    assert_eq!(resp.status(), 200);
    let sid = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let both = [
        ("x-mcp-alpha-authorization", "Bearer user-alpha"),
        ("x-mcp-beta-authorization", "Bearer user-beta"),
    ];
    let tool_call = |id: u32, name: &str| json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":name,"arguments":{}}});

    // alpha's call gets alpha's header (over the configured one), not beta's.
    let m = message(
        post(
            &http,
            &url,
            Some(&sid),
            &both,
            tool_call(2, "alpha-headers"),
        )
        .await,
    )
    .await;
    let got = payload(&m["result"]);
    assert_eq!(got["authorization"], "Bearer user-alpha");
    assert!(!got.to_string().contains("user-beta"), "{got}");

    // beta, in the same kind of request, gets only its own.
    let m = message(post(&http, &url, Some(&sid), &both, tool_call(3, "beta-headers")).await).await;
    let got = payload(&m["result"]);
    assert_eq!(got["authorization"], "Bearer user-beta");
    assert!(!got.to_string().contains("user-alpha"), "{got}");

    // A request without the headers carries none of the earlier ones.
    let m = message(post(&http, &url, Some(&sid), &[], tool_call(4, "alpha-headers")).await).await;
    let got = payload(&m["result"]);
    assert_eq!(got["authorization"], "Bearer configured-alpha");
    let m = message(post(&http, &url, Some(&sid), &[], tool_call(5, "beta-headers")).await).await;
    let got = payload(&m["result"]);
    assert!(got.get("authorization").is_none(), "{got}");

    // Over the whole exchange each server saw its user header exactly once, and the
    // other's never.
    let log_a = payload(
        &hub.call_tool("alpha", "log", json!({}), None)
            .await
            .unwrap(),
    );
    let log_b = payload(&hub.call_tool("beta", "log", json!({}), None).await.unwrap());
    assert_eq!(seen(&log_a, "authorization", "Bearer user-alpha"), 1);
    assert_eq!(seen(&log_b, "authorization", "Bearer user-beta"), 1);
    assert!(!any_value_contains(&log_a, "user-beta"));
    assert!(!any_value_contains(&log_b, "user-alpha"));
    hub.shutdown().await;
}
