//! Session hardening (issue 12) over real HTTP: sessions belong to the key's hash, follow
//! the key's current grants, are capped per key, and a key with no MCP access gets none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod transport_support;

use gatehouse_mcp::downstream::EndpointSettings;
use serde_json::{Value, json};
use transport_support::*;

fn init_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
}

async fn initialize(gw: &Gw, caller: &str) -> reqwest::Response {
    gw.post("/mcp", None, &init_body())
        .header("x-test-caller", caller)
        .send()
        .await
        .unwrap()
}

async fn list(gw: &Gw, sid: &str, caller: &str) -> reqwest::Response {
    gw.post(
        "/mcp",
        Some(sid),
        &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
    )
    .header("x-test-caller", caller)
    .send()
    .await
    .unwrap()
}

fn sid(resp: &reqwest::Response) -> String {
    resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn one_key_opening_sessions_until_refused_leaves_room_for_another() {
    let settings = EndpointSettings {
        max_sessions: 10,
        max_sessions_per_key: 3,
        ..EndpointSettings::default()
    };
    let gw = serve_callers(settings).await;
    for _ in 0..3 {
        assert_eq!(initialize(&gw, "hog|h1|*").await.status(), 200);
    }
    let refused = initialize(&gw, "hog|h1|*").await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("this key"),
        "{body}"
    );
    // Another key whose alias is the same still gets one: ownership is by hash.
    assert_eq!(initialize(&gw, "hog|h2|*").await.status(), 200);
}

#[tokio::test]
async fn a_key_without_mcp_access_gets_no_session() {
    let gw = serve_callers(EndpointSettings::default()).await;
    let resp = initialize(&gw, "nobody|h0|").await;
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("mcp-session-id").is_none());
    let resp = gw
        .http
        .get(format!("{}/mcp/sse", gw.base))
        .header("accept", "text/event-stream")
        .header("x-test-caller", "nobody|h0|")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "legacy SSE too");
}

#[tokio::test]
async fn sessions_are_owned_by_the_key_hash_not_its_alias() {
    let gw = serve_callers(EndpointSettings::default()).await;
    let s = sid(&initialize(&gw, "team|hash-a|*").await);
    assert_eq!(list(&gw, &s, "team|hash-a|*").await.status(), 200);
    assert_eq!(
        list(&gw, &s, "team|hash-b|*").await.status(),
        404,
        "same alias, other key"
    );
}

#[tokio::test]
async fn a_revoked_grant_bites_on_an_open_session_at_once() {
    let gw = serve_callers(EndpointSettings::default()).await;
    let s = sid(&initialize(&gw, "k|h|alpha,beta").await);
    let names = tool_names(&response_message(list(&gw, &s, "k|h|alpha,beta").await).await);
    assert!(names.iter().any(|n| n.starts_with("beta-")), "{names:?}");
    // The operator removes beta from the key: the same session no longer sees or calls it.
    let names = tool_names(&response_message(list(&gw, &s, "k|h|alpha").await).await);
    assert!(names.iter().all(|n| n.starts_with("alpha-")), "{names:?}");
    let call = gw
        .post(
            "/mcp",
            Some(&s),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "beta-echo", "arguments": {}}}),
        )
        .header("x-test-caller", "k|h|alpha")
        .send()
        .await
        .unwrap();
    let v = response_message(call).await;
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert!(
        gw.fake.calls.lock().unwrap().iter().all(|c| c.0 != "beta"),
        "beta never called"
    );
}

/// Two replicas sharing a secret (as two gateways sharing a config share the master key):
/// a session opened on one continues on the other, only for its key, only unaltered.
#[tokio::test]
async fn a_sealed_session_opened_on_one_replica_continues_on_another() {
    let settings = || EndpointSettings {
        session_secret: Some(gatehouse_mcp::downstream::SessionSecret("sk-shared".into())),
        ..EndpointSettings::default()
    };
    let a = serve_callers(settings()).await;
    let b = serve_callers(settings()).await;
    let s = sid(&initialize(&a, "k|h|alpha").await);
    let v = response_message(list(&b, &s, "k|h|alpha").await).await;
    assert_eq!(
        tool_names(&v),
        ["alpha-echo", "alpha-sample", "alpha-slow"],
        "same scope on b"
    );
    let call = b
        .post(
            "/mcp",
            Some(&s),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "alpha-echo", "arguments": {"n": 1}}}),
        )
        .header("x-test-caller", "k|h|alpha")
        .send()
        .await
        .unwrap();
    assert_eq!(
        result_text(&response_message(call).await["result"]),
        r#"alpha/echo: {"n":1}"#
    );
    // Another key cannot use it on either replica; a forged id is unknown.
    assert_eq!(list(&b, &s, "k|other|alpha").await.status(), 404);
    let mut forged = s.clone();
    forged.insert(10, 'x');
    assert_eq!(list(&b, &forged, "k|h|alpha").await.status(), 404);
    // A replica with another secret cannot resume it.
    let c = serve_callers(EndpointSettings::default()).await;
    assert_eq!(list(&c, &s, "k|h|alpha").await.status(), 404);
    // Ended on b: 404 on b from then on.
    let del = b
        .http
        .delete(format!("{}/mcp", b.base))
        .header("mcp-session-id", &s)
        .header("x-test-caller", "k|h|alpha")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(list(&b, &s, "k|h|alpha").await.status(), 404);
}
