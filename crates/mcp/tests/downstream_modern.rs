//! The 2026-07-28 (stateless) era of the downstream endpoint, raw HTTP against the fake
//! backend: one test per MUST of the streamable HTTP binding and the base protocol.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod transport_support;

use std::time::Duration;

use gatehouse_mcp::downstream::UpstreamEvent;
use serde_json::{Value, json};
use transport_support::*;

const V: &str = "2026-07-28";

fn meta(caps: Value) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": V,
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": caps,
    })
}

/// A well-formed modern request: `_meta` envelope and the mirrored headers.
fn modern(
    gw: &Gw,
    path: &str,
    id: Value,
    method: &str,
    mut params: Value,
) -> reqwest::RequestBuilder {
    params
        .as_object_mut()
        .unwrap()
        .entry("_meta")
        .or_insert_with(|| meta(json!({})));
    let name = params
        .get("name")
        .or_else(|| params.get("uri"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut r = gw
        .post(
            path,
            None,
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        )
        .header("mcp-protocol-version", V)
        .header("mcp-method", method);
    if let Some(n) = name {
        r = r.header("mcp-name", n);
    }
    r
}

async fn body(resp: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = resp.status().as_u16();
    let sid = resp
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, sid, response_message(resp).await)
}

#[tokio::test]
async fn discover_advertises_both_eras_and_merged_capabilities_without_a_session() {
    let gw = serve(restricted()).await;
    let (status, sid, v) = body(
        modern(&gw, "/mcp", json!(1), "server/discover", json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(sid, None, "no session header on modern answers");
    let r = &v["result"];
    assert_eq!(r["resultType"], "complete");
    let versions = r["supportedVersions"].as_array().unwrap();
    assert!(
        versions.contains(&json!(V)) && versions.contains(&json!("2025-11-25")),
        "{r}"
    );
    assert!(r["capabilities"]["tools"].is_object(), "{r}");
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "gatehouse"
    );
    assert_eq!(r["cacheScope"], "private", "depends on the caller's key");
    assert!(r["ttlMs"].as_u64().is_some(), "{r}");
}

#[tokio::test]
async fn stateless_list_and_call_need_no_session_and_leave_none() {
    let gw = serve(restricted()).await;
    let (status, sid, v) = body(
        modern(&gw, "/mcp", json!(1), "tools/list", json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, sid), (200, None));
    assert_eq!(
        tool_names(&v),
        [
            "alpha-echo",
            "alpha-sample",
            "alpha-slow",
            "beta-echo",
            "beta-weird_name_"
        ]
    );
    assert_eq!(v["result"]["resultType"], "complete");
    assert_eq!(v["result"]["cacheScope"], "private");
    assert_eq!(v["result"]["ttlMs"], 60_000);

    let (status, sid, v) = body(
        modern(
            &gw,
            "/mcp",
            json!("c"),
            "tools/call",
            json!({"name": "alpha-echo", "arguments": {"x": 1}}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!((status, sid), (200, None));
    assert_eq!(v["id"], "c");
    assert_eq!(result_text(&v["result"]), r#"alpha/echo: {"x":1}"#);
    assert_eq!(v["result"]["resultType"], "complete");
    assert!(
        v["result"].get("ttlMs").is_none(),
        "tool results carry no cache hints"
    );

    // A forbidden server's tool is not reachable by aggregated name either.
    let (_, _, v) = body(
        modern(
            &gw,
            "/mcp",
            json!(2),
            "tools/call",
            json!({"name": "secret-launch"}),
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(v["result"]["isError"], true, "{v}");
    assert!(
        gw.fake
            .calls
            .lock()
            .unwrap()
            .iter()
            .all(|c| c.0 != "secret")
    );

    // The same key on /mcp/{server}: names unprefixed; forbidden server: 403.
    let (_, _, v) = body(
        modern(&gw, "/mcp/alpha", json!(3), "tools/list", json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(tool_names(&v), ["echo", "sample", "slow"]);
    let r = modern(&gw, "/mcp/secret", json!(4), "tools/list", json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn headers_must_match_the_body() {
    let gw = serve(admin()).await;
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "alpha-echo", "_meta": meta(json!({}))}});
    let cases: [(&str, &[(&str, &str)]); 5] = [
        (
            "name differs",
            &[
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/call"),
                ("mcp-name", "beta-echo"),
            ],
        ),
        (
            "name missing",
            &[("mcp-protocol-version", V), ("mcp-method", "tools/call")],
        ),
        (
            "method differs",
            &[
                ("mcp-protocol-version", V),
                ("mcp-method", "tools/list"),
                ("mcp-name", "alpha-echo"),
            ],
        ),
        (
            "version missing",
            &[("mcp-method", "tools/call"), ("mcp-name", "alpha-echo")],
        ),
        (
            "version differs",
            &[
                ("mcp-protocol-version", "2025-11-25"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "alpha-echo"),
            ],
        ),
    ];
    for (what, headers) in cases {
        let mut r = gw.post("/mcp", None, &call);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status(), 400, "{what}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], -32020, "{what}: {v}");
        assert_eq!(v["id"], 1);
    }
    // Base64-sentinel names are decoded before comparing.
    let resp = gw
        .post("/mcp", None, &call)
        .header("mcp-protocol-version", V)
        .header("mcp-method", "tools/call")
        .header("mcp-name", "=?base64?YWxwaGEtZWNobw==?=")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        gw.fake.calls.lock().unwrap().len() == 1,
        "only the matching request ran"
    );
}

#[tokio::test]
async fn an_unsupported_version_is_400_with_the_supported_list() {
    let gw = serve(admin()).await;
    let mut m = meta(json!({}));
    m["io.modelcontextprotocol/protocolVersion"] = json!("2099-01-01");
    let resp = gw
        .post(
            "/mcp",
            None,
            &json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list", "params": {"_meta": m}}),
        )
        .header("mcp-protocol-version", "2099-01-01")
        .header("mcp-method", "tools/list")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32022);
    assert_eq!(v["error"]["data"]["requested"], "2099-01-01");
    let supported = v["error"]["data"]["supported"].as_array().unwrap();
    assert!(supported.contains(&json!(V)) && supported.contains(&json!("2024-11-05")));
}

#[tokio::test]
async fn missing_envelope_is_invalid_params_and_unknown_methods_are_404() {
    let gw = serve(admin()).await;
    let resp = gw
        .post(
            "/mcp",
            None,
            &json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
        )
        .header("mcp-protocol-version", V)
        .header("mcp-method", "tools/list")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], -32602);
    for method in ["no/such", "ping", "initialize"] {
        let resp = modern(&gw, "/mcp", json!(2), method, json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{method}");
        assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], -32601);
    }
}

#[tokio::test]
async fn notifications_are_202_and_batches_400() {
    let gw = serve(admin()).await;
    let resp = gw
        .post("/mcp", None, &json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}))
        .header("mcp-protocol-version", V)
        .header("mcp-method", "notifications/cancelled")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    assert!(resp.headers().get("mcp-session-id").is_none());
    assert!(resp.bytes().await.unwrap().is_empty(), "no body");
    let resp = gw
        .post(
            "/mcp",
            None,
            &json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}]),
        )
        .header("mcp-protocol-version", V)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn get_and_delete_with_a_modern_version_are_405() {
    let gw = serve(admin()).await;
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let resp = gw
            .http
            .request(method.clone(), format!("{}/mcp", gw.base))
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", V)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
    }
}

#[tokio::test]
async fn mrtr_turns_an_upstream_sampling_request_into_input_required_and_back() {
    let gw = serve(admin()).await;
    let caps = json!({"sampling": {}});
    let params = json!({"name": "alpha-sample", "arguments": {}, "_meta": meta(caps.clone())});
    let (status, _, v) = body(
        modern(&gw, "/mcp", json!(1), "tools/call", params.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let r = &v["result"];
    assert_eq!(r["resultType"], "input_required", "{v}");
    assert!(r.get("ttlMs").is_none(), "MRTR results are never cacheable");
    let (key, req) = r["inputRequests"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    assert_eq!(req["method"], "sampling/createMessage");
    let state = r["requestState"].as_str().unwrap().to_owned();

    let mut retry = params.clone();
    retry["inputResponses"] = json!({ key: {"role": "assistant", "model": "m",
        "content": {"type": "text", "text": "forty-two"}} });
    retry["requestState"] = json!(state);
    let (status, _, v) = body(
        modern(&gw, "/mcp", json!(2), "tools/call", retry.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], 2);
    assert_eq!(v["result"]["resultType"], "complete");
    assert_eq!(result_text(&v["result"]), "model said: forty-two");

    // The state is used up.
    let resp = modern(&gw, "/mcp", json!(3), "tools/call", retry)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);

    // A client that did not declare sampling is never asked.
    let params = json!({"name": "alpha-sample", "arguments": {}, "_meta": meta(json!({}))});
    let (_, _, v) = body(
        modern(&gw, "/mcp", json!(4), "tools/call", params)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_ne!(v["result"]["resultType"], "input_required", "{v}");
}

#[tokio::test]
async fn progress_streams_on_the_request_sse_response() {
    let gw = serve(admin()).await;
    let mut m = meta(json!({}));
    m["progressToken"] = json!("p1");
    let params =
        json!({"name": "alpha-slow", "arguments": {"steps": 2, "delay_ms": 10}, "_meta": m});
    let resp = modern(&gw, "/mcp", json!(1), "tools/call", params)
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("mcp-session-id").is_none());
    let events = Sse::new(resp).all().await;
    let msgs: Vec<Value> = events.iter().map(Ev::json).collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert_eq!(msgs[0]["method"], "notifications/progress");
    assert_eq!(msgs[0]["params"]["progressToken"], "p1");
    assert_eq!(msgs[2]["id"], 1);
    assert!(
        events.iter().all(|e| e.id.is_none()),
        "no event ids: not resumable in 2026-07-28"
    );
}

#[tokio::test]
async fn subscriptions_listen_acknowledges_then_fans_in_list_changes() {
    let gw = serve(restricted()).await;
    let params = json!({"notifications": {"toolsListChanged": true}});
    let resp = modern(&gw, "/mcp", json!("sub-1"), "subscriptions/listen", params)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut sse = Sse::new(resp);
    let ack = sse.next().await.unwrap().json();
    assert_eq!(ack["method"], "notifications/subscriptions/acknowledged");
    assert_eq!(
        ack["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
    assert_eq!(
        ack["params"]["notifications"],
        json!({"toolsListChanged": true})
    );
    let ev = |server: &str, method: &str| UpstreamEvent {
        server: server.into(),
        method: method.into(),
        params: json!({}),
    };
    // Not asked for, not usable by this key, then one that is delivered.
    tokio::time::sleep(Duration::from_millis(50)).await;
    gw.fake
        .events
        .send(ev("alpha", "notifications/prompts/list_changed"))
        .unwrap();
    gw.fake
        .events
        .send(ev("secret", "notifications/tools/list_changed"))
        .unwrap();
    gw.fake
        .events
        .send(ev("beta", "notifications/tools/list_changed"))
        .unwrap();
    let n = sse.next().await.unwrap().json();
    assert_eq!(n["method"], "notifications/tools/list_changed");
    assert_eq!(
        n["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"],
        "sub-1"
    );
}

#[tokio::test]
async fn the_handshake_era_still_works_on_the_same_endpoint() {
    let gw = serve(admin()).await;
    let sid = gw.initialize().await;
    let v = gw.rpc(&sid, "tools/list", json!({})).await;
    assert!(
        v["result"].get("resultType").is_none(),
        "handshake answers stay as they were"
    );
    let (_, sid2, _) = body(
        modern(&gw, "/mcp", json!(1), "tools/list", json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(sid2, None);
}

#[tokio::test]
async fn mcp_param_headers_must_match_annotated_arguments() {
    let gw = serve(admin()).await;
    let params = || json!({"name": "regional", "arguments": {"region": "eu-west", "q": "x"}});
    let send = |region: Option<&'static str>| {
        let mut r = modern(&gw, "/mcp/gamma", json!(1), "tools/call", params());
        if let Some(v) = region {
            r = r.header("mcp-param-region", v);
        }
        r.send()
    };
    let ok = send(Some("eu-west")).await.unwrap();
    assert_eq!(ok.status(), 200);
    for (what, header) in [("missing", None), ("different", Some("us-east"))] {
        let resp = send(header).await.unwrap();
        assert_eq!(resp.status(), 400, "{what}");
        assert_eq!(
            resp.json::<Value>().await.unwrap()["error"]["code"],
            -32020,
            "{what}"
        );
    }
    assert_eq!(
        gw.fake.calls.lock().unwrap().len(),
        1,
        "only the matching call ran"
    );
}
