//! The downstream endpoint over real HTTP against an in-test `Backend` (our own seam, so
//! the session and transport mechanics can be checked precisely).
// Test helpers outside `#[test]` fns are not covered by clippy's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod transport_support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use gatehouse_mcp::downstream::{EndpointSettings, UpstreamEvent, router};
use serde_json::{Value, json};
use transport_support::*;

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn initialize_negotiates_and_lists_prefixed_tools_of_usable_servers() {
    let gw = serve(restricted()).await;
    let (sid, init) = gw.initialize_at("/mcp", "2025-06-18", &[]).await;
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert!(init["result"]["capabilities"]["tools"].is_object());
    let (_, init) = gw.initialize_at("/mcp", "2099-01-01", &[]).await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");

    let names = tool_names(&gw.rpc(&sid, "tools/list", json!({})).await);
    assert_eq!(
        names,
        [
            "alpha-echo",
            "alpha-sample",
            "alpha-slow",
            "beta-echo",
            "beta-weird_name_"
        ],
        "secret is not usable by this key; sorted by name"
    );
}

#[tokio::test]
async fn tools_call_routes_by_prefix_and_maps_sanitized_names_back() {
    let gw = serve(admin()).await;
    let sid = gw.initialize().await;
    let r = gw
        .rpc(
            &sid,
            "tools/call",
            json!({"name": "beta-weird_name_", "arguments": {"x": 1}}),
        )
        .await;
    assert_eq!(result_text(&r["result"]), r#"beta/weird name!: {"x":1}"#);
    let r = gw
        .rpc(
            &sid,
            "tools/call",
            json!({"name": "alpha-echo", "arguments": {}}),
        )
        .await;
    assert_eq!(result_text(&r["result"]), "alpha/echo: {}");

    let r = gw
        .rpc(&sid, "tools/call", json!({"name": "nope-echo"}))
        .await;
    assert_eq!(
        r["result"]["isError"], true,
        "unknown tool is a tool error: {r}"
    );
    assert!(result_text(&r["result"]).contains("nope-echo"));
    assert!(r.get("error").is_none());
}

#[tokio::test]
async fn header_selects_servers_and_refuses_unknown_or_forbidden_ones() {
    let gw = serve(restricted()).await;
    let (sid, _) = gw
        .initialize_at("/mcp", "2025-11-25", &[("x-mcp-servers", "b")])
        .await;
    let names = tool_names(&gw.rpc(&sid, "tools/list", json!({})).await);
    assert_eq!(
        names,
        ["beta-echo", "beta-weird_name_"],
        "alias b selects beta"
    );

    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let resp = gw
        .post("/mcp", None, &init)
        .header("x-mcp-servers", "alpha, nosuch")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let msg = resp.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains("nosuch") && msg.contains("alpha") && msg.contains("beta"),
        "{msg}"
    );

    let resp = gw
        .post("/mcp", None, &init)
        .header("x-mcp-servers", "secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let msg = resp.json::<Value>().await.unwrap()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("secret"), "{msg}");

    let resp = gw.post("/mcp/secret", None, &init).send().await.unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn trailing_slash_and_single_server_paths() {
    let gw = serve(admin()).await;
    let (sid, _) = gw.initialize_at("/mcp/", "2025-06-18", &[]).await;
    assert!(
        tool_names(&gw.rpc_at("/mcp/", &sid, "tools/list", json!({})).await)
            .contains(&"alpha-echo".to_owned())
    );

    let (sid, init) = gw.initialize_at("/mcp/alpha", "2025-06-18", &[]).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "gatehouse/alpha");
    let names = tool_names(&gw.rpc_at("/mcp/alpha", &sid, "tools/list", json!({})).await);
    assert_eq!(names, ["echo", "sample", "slow"]);
    let r = gw
        .rpc_at("/mcp/alpha", &sid, "tools/call", json!({"name": "echo"}))
        .await;
    assert_eq!(result_text(&r["result"]), "alpha/echo: {}");
    // A session belongs to the route that created it.
    let resp = gw
        .post(
            "/mcp",
            Some(&sid),
            &json!({"jsonrpc":"2.0","id":1,"method":"ping"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

#[tokio::test]
async fn session_lifecycle_status_codes() {
    let gw = serve(admin()).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let resp = gw.post("/mcp", None, &ping).send().await.unwrap();
    assert_eq!(resp.status(), 400, "no session id");
    let resp = gw.post("/mcp", Some("bogus"), &ping).send().await.unwrap();
    assert_eq!(resp.status(), 404, "unknown session");

    let sid = gw.initialize().await;
    let r = gw.rpc(&sid, "ping", json!({})).await;
    assert_eq!(r["result"], json!({}));
    let resp = gw
        .post(
            "/mcp",
            Some(&sid),
            &json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);

    let resp = gw
        .http
        .delete(format!("{}/mcp", gw.base))
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = gw.post("/mcp", Some(&sid), &ping).send().await.unwrap();
    assert_eq!(resp.status(), 404, "deleted session");
    let resp = gw
        .http
        .delete(format!("{}/mcp", gw.base))
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // Another key cannot use this key's session.
    let other = serve(restricted()).await;
    let sid2 = other.initialize().await;
    assert_eq!(
        other
            .post("/mcp", Some(&sid2), &ping)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn malformed_json_and_invalid_messages() {
    let gw = serve(admin()).await;
    let resp = gw
        .http
        .post(format!("{}/mcp", gw.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);

    let sid = gw.initialize().await;
    let resp = gw
        .post("/mcp", Some(&sid), &json!({"id": 1, "method": "ping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"]["code"], -32600);
    let r = gw.rpc(&sid, "no/such/method", json!({})).await;
    assert_eq!(r["error"]["code"], -32601);
}

/// A `server/discover` without the 2026-07-28 envelope is a malformed modern request:
/// 400 with -32602 (not -32022), so a dual-era client falls back to `initialize`.
#[tokio::test]
async fn server_discover_without_an_envelope_is_invalid_params_without_a_session() {
    let gw = serve(admin()).await;
    let resp = gw
        .post(
            "/mcp",
            None,
            &json!({"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("mcp-session-id").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32602);
}

#[tokio::test]
async fn progress_is_streamed_with_event_ids_before_the_result() {
    let gw = serve(admin()).await;
    let sid = gw.initialize().await;
    let resp = gw
        .post(
            "/mcp",
            Some(&sid),
            &json!({"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{
            "name":"alpha-slow","arguments":{"steps":3},"_meta":{"progressToken":"tok-9"}}}),
        )
        .send()
        .await
        .unwrap();
    let events = Sse::new(resp).all().await;
    assert_eq!(events.len(), 5, "priming, 3 progress, result: {events:?}");
    assert_eq!(events[0].data, "", "priming event");
    assert!(
        events.iter().all(|e| e.id.is_some()),
        "every event has an id"
    );
    for (i, e) in events[1..4].iter().enumerate() {
        let n = e.json();
        assert_eq!(n["method"], "notifications/progress");
        assert_eq!(n["params"]["progressToken"], "tok-9");
        assert_eq!(n["params"]["progress"], (i + 1) as f64);
        assert_eq!(n["params"]["total"], 3.0);
    }
    let last = events[4].json();
    assert_eq!(last["id"], "c1");
    assert_eq!(result_text(&last["result"]), "slow done");
}

#[tokio::test]
async fn a_dropped_stream_is_resumed_with_last_event_id() {
    let gw = serve(admin()).await;
    let sid = gw.initialize().await;
    let resp = gw
        .post("/mcp", Some(&sid), &json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{
            "name":"alpha-slow","arguments":{"steps":4,"delay_ms":100},"_meta":{"progressToken":1}}}))
        .send()
        .await
        .unwrap();
    let mut sse = Sse::new(resp);
    let _priming = sse.next().await.unwrap();
    let first = sse.next().await.unwrap();
    assert_eq!(first.json()["params"]["progress"], 1.0);
    drop(sse); // connection lost mid-call

    let resp = gw
        .http
        .get(format!("{}/mcp", gw.base))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .header("last-event-id", first.id.clone().unwrap())
        .send()
        .await
        .unwrap();
    let rest = Sse::new(resp).all().await;
    let progress: Vec<f64> = rest
        .iter()
        .filter(|e| e.json()["method"] == "notifications/progress")
        .map(|e| e.json()["params"]["progress"].as_f64().unwrap())
        .collect();
    assert_eq!(progress, [2.0, 3.0, 4.0], "nothing lost, nothing repeated");
    let last = rest.last().unwrap().json();
    assert_eq!(last["id"], 5);
    assert_eq!(result_text(&last["result"]), "slow done");
}

#[tokio::test]
async fn standalone_stream_carries_upstream_notifications_rewritten() {
    let gw = serve(admin()).await;
    let sid = gw.initialize().await;
    let resp = gw
        .http
        .get(format!("{}/mcp", gw.base))
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut sse = Sse::new(resp);
    assert_eq!(sse.next().await.unwrap().data, "", "priming");
    let send = |method: &str, params: Value| {
        gw.fake
            .events
            .send(UpstreamEvent {
                server: "alpha".into(),
                method: method.into(),
                params,
            })
            .unwrap();
    };
    send("notifications/tools/list_changed", json!({}));
    send(
        "notifications/resources/updated",
        json!({"uri": "test://static/1"}),
    );
    send(
        "notifications/message",
        json!({"level": "info", "data": "hi"}),
    );
    let a = sse.next().await.unwrap().json();
    assert_eq!(a["method"], "notifications/tools/list_changed");
    let b = sse.next().await.unwrap().json();
    assert_eq!(b["params"]["uri"], "alpha+test://static/1");
    let c = sse.next().await.unwrap().json();
    assert_eq!(c["params"]["logger"], "alpha");

    // GET without Accept: text/event-stream is refused.
    let resp = gw
        .http
        .get(format!("{}/mcp", gw.base))
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 406);
}

#[tokio::test]
async fn host_and_origin_are_validated() {
    let settings = EndpointSettings {
        allowed_hosts: vec!["litellm.linuxserver.lan".into()],
        ..EndpointSettings::default()
    };
    let gw = serve_with(admin(), settings).await;
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let ok = gw
        .post("/mcp", None, &init)
        .header("host", "litellm.linuxserver.lan:4000")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let bad = gw
        .post("/mcp", None, &init)
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 403);
    let bad = gw
        .post("/mcp", None, &init)
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 403);
    let ok = gw
        .post("/mcp", None, &init)
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let bad = gw
        .http
        .get(format!("{}/v1/mcp/servers", gw.base))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 403);

    let open = serve_with(
        admin(),
        EndpointSettings {
            allowed_hosts: vec!["*".into()],
            ..EndpointSettings::default()
        },
    )
    .await;
    let ok = open
        .post("/mcp", None, &init)
        .header("host", "anything.lan")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn prompts_and_resources_are_namespaced_and_routed_back() {
    let gw = serve(admin()).await;
    let sid = gw.initialize().await;
    let p = gw.rpc(&sid, "prompts/list", json!({})).await;
    assert_eq!(
        p["result"]["prompts"],
        json!([{"name": "alpha-greet"}]),
        "beta has no prompts and is skipped"
    );
    let g = gw
        .rpc(&sid, "prompts/get", json!({"name": "alpha-greet"}))
        .await;
    assert_eq!(
        g["result"]["messages"][0]["content"]["text"],
        "hello from \"greet\""
    );

    let r = gw.rpc(&sid, "resources/list", json!({})).await;
    let uri = r["result"]["resources"][0]["uri"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(uri, "alpha+test://static/1");
    let t = gw.rpc(&sid, "resources/templates/list", json!({})).await;
    assert_eq!(
        t["result"]["resourceTemplates"][0]["uriTemplate"],
        "alpha+test://static/{id}"
    );
    let read = gw.rpc(&sid, "resources/read", json!({"uri": uri})).await;
    assert_eq!(
        read["result"]["contents"][0]["uri"],
        "alpha+test://static/1"
    );
    assert_eq!(
        read["result"]["contents"][0]["text"],
        "content of test://static/1"
    );
    let bad = gw
        .rpc(&sid, "resources/read", json!({"uri": "test://static/1"}))
        .await;
    // A URI of no server of the endpoint: the handshake era's resource-not-found.
    assert_eq!(bad["error"]["code"], -32002);
    let lvl = gw
        .rpc(&sid, "logging/setLevel", json!({"level": "debug"}))
        .await;
    assert_eq!(lvl["result"], json!({}));
}

#[tokio::test]
async fn cancellation_reaches_the_running_call() {
    let gw = serve(admin()).await;
    let sid = gw.initialize().await;
    let call = {
        let req = gw.post(
            "/mcp",
            Some(&sid),
            &json!({"jsonrpc":"2.0","id":42,"method":"tools/call","params":{
            "name":"alpha-slow","arguments":{"steps":50,"delay_ms":100}}}),
        );
        tokio::spawn(async move { response_message(req.send().await.unwrap()).await })
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    let resp = gw
        .post("/mcp", Some(&sid), &json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":42,"reason":"user"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let answered = tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answered["error"]["code"], -32800, "{answered}");
    assert!(
        gw.fake.cancelled.load(Ordering::SeqCst),
        "the backend saw the cancellation"
    );
}

#[tokio::test]
async fn sampling_requests_are_relayed_to_the_client_and_answered() {
    let gw = serve(admin()).await;
    let sid = gw.initialize().await; // declares the sampling capability
    let resp = gw
        .post(
            "/mcp",
            Some(&sid),
            &json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"alpha-sample"}}),
        )
        .send()
        .await
        .unwrap();
    let mut sse = Sse::new(resp);
    let mut request = None;
    while let Some(e) = sse.next().await {
        if !e.data.is_empty() {
            request = Some(e.json());
            break;
        }
    }
    let request = request.unwrap();
    assert_eq!(request["method"], "sampling/createMessage");
    let answer = json!({"jsonrpc":"2.0","id": request["id"],"result":{"role":"assistant","content":{"type":"text","text":"42"},"model":"m"}});
    let resp = gw.post("/mcp", Some(&sid), &answer).send().await.unwrap();
    assert_eq!(resp.status(), 202);
    let last = sse.next().await.unwrap().json();
    assert_eq!(last["id"], 3);
    assert_eq!(result_text(&last["result"]), "model said: 42");
}

#[tokio::test]
async fn batches_only_where_the_revision_allows_them() {
    let gw = serve(admin()).await;
    let (old, _) = gw.initialize_at("/mcp", "2025-03-26", &[]).await;
    let batch = json!([
        {"jsonrpc":"2.0","id":1,"method":"ping"},
        {"jsonrpc":"2.0","method":"notifications/initialized"},
        {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"alpha-echo"}}
    ]);
    let resp = gw.post("/mcp", Some(&old), &batch).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let arr: Value = resp.json().await.unwrap();
    let arr = arr.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    assert_eq!(arr[0]["id"], 1);
    assert_eq!(result_text(&arr[1]["result"]), "alpha/echo: {}");

    let (new, _) = gw.initialize_at("/mcp", "2025-06-18", &[]).await;
    let resp = gw.post("/mcp", Some(&new), &batch).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn legacy_sse_pair() {
    let gw = serve(admin()).await;
    let resp = gw
        .http
        .get(format!("{}/mcp/sse", gw.base))
        .header("x-mcp-servers", "alpha")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut sse = Sse::new(resp);
    let ep = sse.next().await.unwrap();
    assert_eq!(ep.event.as_deref(), Some("endpoint"));
    assert!(
        ep.data.starts_with("/mcp/message?sessionId="),
        "{}",
        ep.data
    );
    let url = format!("{}{}", gw.base, ep.data);

    let post = |body: Value| gw.http.post(&url).json(&body).send();
    let r = post(json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"old","version":"1"}}})).await.unwrap();
    assert_eq!(r.status(), 202);
    let init = sse.next().await.unwrap();
    assert_eq!(init.event.as_deref(), Some("message"));
    assert_eq!(init.json()["result"]["protocolVersion"], "2024-11-05");
    assert_eq!(
        post(json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await
            .unwrap()
            .status(),
        202
    );
    assert_eq!(
        post(json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}))
            .await
            .unwrap()
            .status(),
        202
    );
    let list = sse.next().await.unwrap().json();
    assert_eq!(list["id"], 2);
    assert_eq!(
        tool_names(&list),
        ["alpha-echo", "alpha-sample", "alpha-slow"]
    );

    let unknown = gw
        .http
        .post(format!("{}/mcp/message?sessionId=nope", gw.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    drop(sse);
    // The session ends with its stream.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        post(json!({"jsonrpc":"2.0","id":3,"method":"ping"}))
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn litellm_style_catalog_and_invoke_streams() {
    let gw = serve(restricted()).await;
    let resp = gw
        .http
        .post(format!("{}/mcp/tools", gw.base))
        .header("x-mcp-servers", "alpha,beta")
        .send()
        .await
        .unwrap();
    let events = Sse::new(resp).all().await;
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].event.as_deref(), Some("tools"));
    assert_eq!(events[0].json()["server"], "alpha");
    assert_eq!(events[1].json()["tools"][1]["name"], "beta-weird_name_");
    assert_eq!(events[2].event.as_deref(), Some("done"));
    assert_eq!(events[2].json(), json!({"servers": 2, "tools": 5}));

    let resp = gw
        .http
        .post(format!("{}/mcp/invoke", gw.base))
        .json(&json!({"server": "alpha", "tool": "slow", "arguments": {"steps": 2}}))
        .send()
        .await
        .unwrap();
    let events = Sse::new(resp).all().await;
    let kinds: Vec<_> = events.iter().map(|e| e.event.clone().unwrap()).collect();
    assert_eq!(kinds, ["progress", "progress", "result"]);
    assert_eq!(events[1].json()["progress"], 2.0);
    assert_eq!(result_text(&events[2].json()), "slow done");

    let resp = gw
        .http
        .post(format!("{}/mcp/invoke", gw.base))
        .json(&json!({"name": "beta-echo", "arguments": {"a": "b"}}))
        .send()
        .await
        .unwrap();
    let events = Sse::new(resp).all().await;
    assert_eq!(result_text(&events[0].json()), r#"beta/echo: {"a":"b"}"#);

    let resp = gw
        .http
        .post(format!("{}/mcp/invoke", gw.base))
        .json(&json!({"server": "secret", "tool": "launch"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
}

#[tokio::test]
async fn json_rest_routes() {
    let gw = serve(restricted()).await;
    let servers: Value = gw
        .http
        .get(format!("{}/v1/mcp/servers", gw.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<_> = servers["servers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    assert_eq!(servers["servers"][0]["tool_count"], 3);
    assert_eq!(servers["servers"][0]["transport"], "stdio");
    assert_eq!(servers["servers"][0]["status"], "ready");
    assert_eq!(servers["servers"][0]["description"], "the alpha server");

    let tools: Value = gw
        .http
        .get(format!("{}/v1/mcp/tools", gw.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tools["tools"].as_array().unwrap().len(), 5);
    assert_eq!(tools["tools"][0]["name"], "alpha-echo");

    let call = |body: Value| {
        gw.http
            .post(format!("{}/v1/mcp/tools/call", gw.base))
            .json(&body)
            .send()
    };
    let r: Value = call(json!({"name": "alpha-echo", "arguments": {"m": 1}}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(result_text(&r), r#"alpha/echo: {"m":1}"#);
    let r: Value = call(json!({"server": "b", "tool": "weird name!"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(result_text(&r), "beta/weird name!: {}");
    assert_eq!(
        call(json!({"server": "secret", "tool": "launch"}))
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        call(json!({"server": "zzz", "tool": "launch"}))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(call(json!({"arguments": {}})).await.unwrap().status(), 400);
    let calls = gw.fake.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "refused calls never reached the backend");
}

#[tokio::test]
async fn missing_caller_is_unauthorized() {
    let fake = Fake::new();
    let app = router(fake, EndpointSettings::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/mcp"))
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn sessions_are_bounded_in_number_and_idle_time() {
    let settings = EndpointSettings {
        max_sessions: 1,
        session_idle: Duration::from_millis(300),
        ..EndpointSettings::default()
    };
    let gw = serve_with(admin(), settings).await;
    let sid = gw.initialize().await;
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let resp = gw.post("/mcp", None, &init).send().await.unwrap();
    assert_eq!(resp.status(), 503, "the one slot is taken");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let resp = gw.post("/mcp", Some(&sid), &ping).send().await.unwrap();
    assert_eq!(resp.status(), 404, "idle session expired");
    let resp = gw.post("/mcp", None, &init).send().await.unwrap();
    assert_eq!(resp.status(), 200, "its slot is free again");
}
