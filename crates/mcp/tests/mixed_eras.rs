//! Both protocol eras on both sides, with real peers: a 2026-07-28 server written with the
//! Python SDK 2.x server API and server-everything (handshake era, over HTTP and stdio)
//! behind one aggregated endpoint, reached by the Python SDK 2.x client negotiating
//! 2026-07-28 and by the same client pinned to the handshake. Elicitation crosses eras in
//! both directions: the modern server's MRTR `InputRequiredResult` becomes an
//! `elicitation/create` request on a handshake client's session, and server-everything's
//! `elicitation/create` becomes an MRTR round for a modern client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hub_support;
mod transport_support;

use gatehouse_mcp::{Hub, HubSettings};
use hub_support::*;
use serde_json::{Value, json};

async fn client(base: &str, mode: &'static str) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/downstream_client.py");
    let url = format!("{base}/mcp");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python())
            .arg(script)
            .arg(url)
            .args(["--mode", mode])
            .args(["--call", "modern-add", r#"{"a": 2, "b": 3}"#])
            .args(["--call", "modern-whoami", "{}"])
            .args(["--call", "modern-greet", "{}"])
            .args(["--call", "ehttp-echo", r#"{"message": "over http"}"#])
            .args(["--call", "estdio-trigger-elicitation-request", "{}"])
            .args(["--call", "modern-count", r#"{"n": 3}"#])
            .args([
                "--call",
                "modern-regional",
                r#"{"region": "eu", "q": "hi"}"#,
            ])
            .args(["--elicit-reply", r#"{"name": "Grace"}"#])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client ({mode}) failed:\n{stderr}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn modern_and_handshake_upstreams_behind_one_endpoint_for_both_client_eras() {
    let py = PyServer::start();
    let http = HttpServer::start("streamableHttp");
    let cfg = config(json!({
        "modern": {"transport": "http", "url": format!("http://127.0.0.1:{}/mcp", py.port)},
        "ehttp": {"transport": "http", "url": format!("http://127.0.0.1:{}/mcp", http.port)},
        "estdio": everything_stdio(),
    }));
    let settings = HubSettings {
        client_capabilities: json!({"sampling": {}, "elicitation": {}}),
        ..HubSettings::default()
    };
    let hub = Hub::with_settings(&cfg, settings).unwrap();
    hub.start();
    wait_ready(&hub, &["modern", "ehttp", "estdio"]).await;
    let version = |s: &str| {
        hub.status()
            .into_iter()
            .find(|x| x.name == s)
            .unwrap()
            .protocol_version
    };
    assert_eq!(
        version("modern").as_deref(),
        Some("2026-07-28"),
        "discover probe"
    );
    assert_ne!(version("ehttp").as_deref(), Some("2026-07-28"), "fallback");
    assert_ne!(version("estdio").as_deref(), Some("2026-07-28"), "fallback");

    let base = serve_hub(&hub).await;

    for (mode, protocol) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let v = client(&base, mode).await;
        assert_eq!(v["protocol"], protocol, "{v}");
        let tools: Vec<&str> = v["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        for t in ["modern-add", "modern-greet", "ehttp-echo", "estdio-echo"] {
            assert!(tools.contains(&t), "{mode}: {t} missing from {tools:?}");
        }
        let text = |i: usize| v["calls"][i]["text"].as_str().unwrap().to_owned();
        assert_eq!(text(0), "sum=5", "{mode}: {v}");
        assert_eq!(
            text(1),
            "protocol=2026-07-28",
            "{mode}: the gateway speaks 2026-07-28 upstream"
        );
        assert_eq!(
            text(2),
            "Hello, Grace!",
            "{mode}: modern MRTR elicitation: {v}"
        );
        assert_eq!(text(3), "Echo: over http");
        assert!(
            text(4).contains("Grace"),
            "{mode}: handshake elicitation: {v}"
        );
        assert_eq!(v["elicited"].as_array().unwrap().len(), 2, "{mode}: {v}");
        assert_eq!(text(5), "counted 3");
        assert_eq!(
            v["calls"][5]["progress"],
            json!([1.0, 2.0, 3.0]),
            "{mode}: a 2026-07-28 upstream's progress reaches both eras: {v}"
        );
        assert_eq!(
            text(6),
            "hi from eu",
            "{mode}: Mcp-Param-Region mirrored upstream: {v}"
        );
        assert_eq!(v["elicited"][0], "What is your name?");
    }
    hub.shutdown().await;
}

/// MRTR is not only for tools: `prompts/get` and `resources/read` may ask the client too
/// (spec: MRTR, supported requests). A 2026-07-28 server's `InputRequiredResult` on them
/// reaches a handshake client as `elicitation/create`, and a handshake-era server's
/// `elicitation/create` while serving them reaches a modern client as an MRTR round.
#[tokio::test]
async fn prompts_and_resources_ask_the_client_across_eras() {
    let py = PyServer::start();
    let cfg = config(json!({
        "modern": {"transport": "http", "url": format!("http://127.0.0.1:{}/mcp", py.port)},
        "hand": handshake_stdio(),
    }));
    let settings = HubSettings {
        client_capabilities: json!({"elicitation": {}}),
        ..HubSettings::default()
    };
    let hub = Hub::with_settings(&cfg, settings).unwrap();
    hub.start();
    wait_ready(&hub, &["modern", "hand"]).await;
    let base = serve_hub(&hub).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/downstream_client.py");
    for (mode, protocol) in [("auto", "2026-07-28"), ("legacy", "2025-11-25")] {
        let url = format!("{base}/mcp");
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(python())
                .arg(script)
                .arg(url)
                .args(["--mode", mode])
                .args(["--prompt", "modern-welcome", "--prompt", "hand-welcome"])
                .args([
                    "--read",
                    "modern+secret://plans",
                    "--read",
                    "hand+secret://plans",
                ])
                .args(["--elicit-reply", r#"{"name": "Grace"}"#])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "python client ({mode}) failed:\n{stderr}"
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["protocol"], protocol, "{v}");
        for i in 0..2 {
            assert_eq!(
                v["prompts_got"][i]["text"], "Welcome, Grace!",
                "{mode}: {v}"
            );
            assert_eq!(
                v["reads"][i]["text"], "plans secret for Grace",
                "{mode}: {v}"
            );
        }
        assert_eq!(
            v["reads"][1]["uri"], "hand+secret://plans",
            "{mode}: the URI as the client named it: {v}"
        );
        let mut asked: Vec<&str> = v["elicited"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q.as_str().unwrap())
            .collect();
        asked.sort_unstable();
        assert_eq!(
            asked,
            [
                "Who is being welcomed?",
                "Who is being welcomed?",
                "Who wants the plans secret?",
                "Who wants the plans secret?",
            ],
            "{mode}: every server's question reached the client once: {v}"
        );
    }
    hub.shutdown().await;
}

/// A 2026-07-28 upstream that ends the gateway's `subscriptions/listen` stream (the SDK
/// does at its backlog cap, a replica at shutdown) and refuses the next listens: the
/// gateway reopens that stream alone, with backoff, catches up on what changed while it
/// was down, and list changes keep flowing, with no reconnect of the upstream and the
/// downstream listen stream open throughout.
#[tokio::test]
async fn a_dropped_upstream_listen_stream_is_reopened_alone() {
    let py = PyServer::start();
    let cfg = config(json!({
        "modern": {"transport": "http", "url": format!("http://127.0.0.1:{}/mcp", py.port)},
    }));
    let hub = Hub::from_config(&cfg).unwrap();
    hub.start();
    wait_ready(&hub, &["modern"]).await;
    let base = serve_hub(&hub).await;
    let restarts = || hub.status()[0].restarts;

    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let resp = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .json(
            &json!({"jsonrpc": "2.0", "id": "down-1", "method": "subscriptions/listen",
                      "params": {"notifications": {"toolsListChanged": true}, "_meta": meta}}),
        )
        .send()
        .await
        .unwrap();
    let mut listen = transport_support::Sse::new(resp);
    let ack = listen.next().await.unwrap().json();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");

    let tools = || async {
        hub.list_tools("modern")
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect::<Vec<_>>()
    };
    let until_listed = |name: &'static str| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !tools().await.iter().any(|t| t == name) {
            assert!(
                std::time::Instant::now() < deadline,
                "`{name}` never reached the catalog: {:?}",
                tools().await
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    };
    let call = |tool: &'static str, args: Value| {
        let hub = hub.clone();
        async move { text_of(&hub.call_tool("modern", tool, args, None).await.unwrap()) }
    };

    // The stream ends; the next two listens are refused; meanwhile a tool appears,
    // announced to nobody.
    assert_eq!(
        call("drop_listeners", json!({"refuse": 2})).await,
        "dropped"
    );
    assert_eq!(call("grow", json!({"name": "early"})).await, "added early");
    until_listed("early").await;
    let n = listen.next().await.unwrap().json();
    assert_eq!(n["method"], "notifications/tools/list_changed", "{n}");

    // The reopened stream carries the server's own notifications.
    assert_eq!(call("grow", json!({"name": "late"})).await, "added late");
    until_listed("late").await;
    let n = listen.next().await.unwrap().json();
    assert_eq!(n["method"], "notifications/tools/list_changed", "{n}");
    assert_eq!(restarts(), 0, "the upstream connection was never torn down");
    hub.shutdown().await;
}

/// 2026-07-28 has no `resources/subscribe`: a client's subscription (here a modern
/// client's `resourceSubscriptions`, which the gateway turns into `resources/subscribe`
/// for its servers) becomes part of the gateway's listen filter on a 2026-07-28
/// upstream, whose `resources/updated` then reaches the client under the URI it named.
#[tokio::test]
async fn resource_updates_of_a_2026_upstream_reach_subscribers() {
    let py = PyServer::start();
    let cfg = config(json!({
        "modern": {"transport": "http", "url": format!("http://127.0.0.1:{}/mcp", py.port)},
    }));
    let hub = Hub::from_config(&cfg).unwrap();
    hub.start();
    wait_ready(&hub, &["modern"]).await;
    let base = serve_hub(&hub).await;
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let resp = reqwest::Client::new()
        .post(format!("{base}/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "subscriptions/listen")
        .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "subscriptions/listen",
                      "params": {"notifications": {"resourceSubscriptions": ["modern+note://hello"]},
                                 "_meta": meta}}))
        .send()
        .await
        .unwrap();
    let mut listen = transport_support::Sse::new(resp);
    let ack = listen.next().await.unwrap().json();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    // The upstream subscription is made in the background: touch until it is in place.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let update = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no resources/updated came"
        );
        let r = hub
            .call_tool("modern", "touch", json!({"uri": "note://hello"}), None)
            .await
            .unwrap();
        assert_eq!(text_of(&r), "touched note://hello");
        let wait = std::time::Duration::from_millis(500);
        if let Ok(ev) = tokio::time::timeout(wait, listen.next()).await {
            break ev.unwrap().json();
        }
    };
    assert_eq!(
        update["method"], "notifications/resources/updated",
        "{update}"
    );
    assert_eq!(update["params"]["uri"], "modern+note://hello", "{update}");
    assert_eq!(
        update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"], 7,
        "{update}"
    );
    assert_eq!(hub.status()[0].restarts, 0);
    hub.shutdown().await;
}

/// A 2026-07-28 stdio server that starts slower than the `server/discover` probe waits
/// (10 s) answers it late, then refuses the `initialize` fallback as a 2026-07-28 server:
/// the gateway asks again and speaks 2026-07-28 to it, instead of failing forever.
#[tokio::test]
async fn a_slow_starting_2026_stdio_server_is_probed_again() {
    let venv =
        std::env::var("GATEHOUSE_VENV").unwrap_or_else(|_| "/root/.cache/gatehouse/venv".into());
    let time = format!("{venv}/bin/mcp-server-time");
    assert!(
        std::path::Path::new(&time).exists(),
        "{time} missing: pip install mcp-server-time"
    );
    let cfg = config(json!({
        "slow": {"command": "sh", "args": ["-c", format!("sleep 11; exec {time} --local-timezone UTC")]},
    }));
    let settings = HubSettings {
        init_timeout: std::time::Duration::from_secs(40),
        ..HubSettings::default()
    };
    let hub = Hub::with_settings(&cfg, settings).unwrap();
    hub.start();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while state_of(&hub, "slow") != gatehouse_mcp::ServerState::Ready {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            state_of(&hub, "slow")
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let st = &hub.status()[0];
    assert_eq!(st.protocol_version.as_deref(), Some("2026-07-28"));
    assert_eq!(st.restarts, 0, "connected on the first attempt");
    let r = hub
        .call_tool("slow", "get_current_time", json!({"timezone": "UTC"}), None)
        .await
        .unwrap();
    assert!(text_of(&r).contains("UTC"), "{r}");
    hub.shutdown().await;
}

/// A 2026-07-28 upstream learns of a cancelled call the way that revision says: the
/// gateway closes the request's response stream (no `notifications/cancelled`).
#[tokio::test]
async fn a_cancelled_call_is_cancelled_on_a_2026_upstream() {
    let py = PyServer::start();
    let cfg = config(json!({
        "modern": {"transport": "http", "url": format!("http://127.0.0.1:{}/mcp", py.port)},
    }));
    let hub = Hub::from_config(&cfg).unwrap();
    hub.start();
    wait_ready(&hub, &["modern"]).await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("cancelled");
    // With progress asked for, the server commits to an SSE answer at once: only closing
    // that stream can tell it the call is over.
    let progress: gatehouse_mcp::hub::ProgressFn = std::sync::Arc::new(|_| {});
    let opts = gatehouse_mcp::CallOptions {
        timeout: Some(std::time::Duration::from_secs(1)),
        on_progress: Some(progress),
        ..gatehouse_mcp::CallOptions::default()
    };
    let r = hub
        .call_tool_with("modern", "sleepy", json!({"marker": marker}), opts)
        .await;
    assert!(r.is_err(), "times out: {r:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !marker.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the upstream never saw the cancellation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    hub.shutdown().await;
}

/// Resource not found is `-32002` in the handshake era and `-32602` in 2026-07-28: each
/// client gets its own era's code, from a 2026-07-28 upstream (the Python SDK answers
/// `-32602`) and for a URI no server of the endpoint has (the gateway answers).
#[tokio::test]
async fn resource_not_found_reaches_each_era_in_its_own_code() {
    let py = PyServer::start();
    let cfg = config(json!({
        "modern": {"transport": "http", "url": format!("http://127.0.0.1:{}/mcp", py.port)},
        "estdio": everything_stdio(),
    }));
    let hub = Hub::with_settings(&cfg, HubSettings::default()).unwrap();
    hub.start();
    wait_ready(&hub, &["modern", "estdio"]).await;
    let base = serve_hub(&hub).await;
    let http = reqwest::Client::new();
    let accept = "application/json, text/event-stream";

    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let resp = http
        .post(format!("{base}/mcp"))
        .header("accept", accept)
        .json(&init)
        .send()
        .await
        .unwrap();
    let sid = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let handshake_read = |uri: &'static str| {
        let req = http
            .post(format!("{base}/mcp"))
            .header("accept", accept)
            .header("mcp-session-id", &sid)
            .header("mcp-protocol-version", "2025-11-25")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": uri}}));
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let modern_read = |uri: &'static str| {
        let req = http
            .post(format!("{base}/mcp"))
            .header("accept", accept)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "resources/read")
            .header("mcp-name", uri)
            .json(
                &json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {
                "uri": uri,
                "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                          "io.modelcontextprotocol/clientCapabilities": {}}}}),
            );
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };

    let found = handshake_read("modern+note://hello").await;
    assert_eq!(
        found["result"]["contents"][0]["text"], "hello from a 2026-07-28 resource",
        "{found}"
    );
    for uri in ["modern+note://missing", "nowhere+note://x"] {
        let v = handshake_read(uri).await;
        assert_eq!(v["error"]["code"], -32002, "{uri}: {v}");
        assert_eq!(v["error"]["data"]["uri"], uri, "{v}");
        let (status, v) = modern_read(uri).await;
        assert_eq!(
            (status, &v["error"]["code"]),
            (400, &json!(-32602)),
            "{uri}: {v}"
        );
    }
    hub.shutdown().await;
}
