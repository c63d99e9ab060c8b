//! One upstream connection (below the hub) against a real server: the handshake and
//! server-to-client requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_mcp::upstream::{ConnectOptions, Upstream};
use serde_json::json;
use std::time::Duration;
use tokio::sync::mpsc;

mod hub_support;
use hub_support::*;

#[tokio::test]
async fn server_requests_reach_the_registered_handler() {
    let cfg = serde_json::from_value(everything_stdio()).unwrap();
    let opts = ConnectOptions {
        capabilities: json!({"roots": {"listChanged": true}}),
        ..ConnectOptions::default()
    };
    let (tx, mut rx) = mpsc::channel::<gatehouse_mcp::upstream::ServerRequest>(8);
    let handler = tokio::spawn(async move {
        let mut methods = Vec::new();
        while let Some(req) = rx.recv().await {
            methods.push(req.request.method.clone());
            let roots = json!({"roots": [{"uri": "file:///gatehouse-root", "name": "gh"}]});
            let _ = req.respond.send(Ok(roots));
        }
        methods
    });
    let up = Upstream::connect_with_handler("everything", &cfg, &opts, Some(tx))
        .await
        .unwrap();
    let init = up.init_result().unwrap();
    assert!(!init.protocol_version.is_empty());
    assert!(
        init.server_info["name"].as_str().is_some(),
        "{:?}",
        init.server_info
    );
    // The server asks for roots right after initialization; the tool shows what it got.
    let t = Duration::from_secs(10);
    let mut text = String::new();
    for _ in 0..50 {
        let r = up
            .request(
                "tools/call",
                Some(json!({"name": "get-roots-list", "arguments": {}})),
                t,
            )
            .await;
        if let Ok(r) = r {
            text = r["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if text.contains("gatehouse-root") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains("file:///gatehouse-root"), "{text}");
    up.close().await;
    assert!(up.is_closed());
    let err = up.request("ping", None, t).await.unwrap_err();
    assert!(
        matches!(err, gatehouse_mcp::upstream::UpstreamError::NotDelivered(_)),
        "{err:?}"
    );
    drop(up);
    let methods = handler.await.unwrap();
    assert!(methods.iter().any(|m| m == "roots/list"), "{methods:?}");
}

#[tokio::test]
async fn upstream_ping_and_unknown_method() {
    let cfg = serde_json::from_value(everything_stdio()).unwrap();
    let up = Upstream::connect("everything", &cfg, &ConnectOptions::default())
        .await
        .unwrap();
    let t = Duration::from_secs(10);
    assert_eq!(up.request("ping", None, t).await.unwrap(), json!({}));
    let err = up.request("nope/nope", None, t).await.unwrap_err();
    let gatehouse_mcp::upstream::UpstreamError::Rpc(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.code, gatehouse_mcp::jsonrpc::codes::METHOD_NOT_FOUND);
    assert!(up.pid().is_some());
    up.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_session_rejected_by_server_marks_the_connection_dead() {
    let srv = HttpServer::start("streamableHttp");
    let url = format!("http://127.0.0.1:{}/mcp", srv.port);
    let cfg = serde_json::from_value(json!({ "url": url })).unwrap();
    let up = Upstream::connect("web", &cfg, &ConnectOptions::default())
        .await
        .unwrap();
    let t = Duration::from_secs(10);
    assert_eq!(up.request("ping", None, t).await.unwrap(), json!({}));
    let sid = up
        .session_id()
        .expect("server-everything assigns a session id");
    // End the session behind the connection's back, as an expiring server would.
    let status = reqwest::Client::new()
        .delete(&url)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "DELETE answered {status}");
    let err = up.request("ping", None, t).await.unwrap_err();
    assert!(
        matches!(err, gatehouse_mcp::upstream::UpstreamError::NotDelivered(_)),
        "{err:?}"
    );
    assert!(
        up.is_closed(),
        "a rejected session must trigger re-initialization"
    );
    up.close().await;
}
