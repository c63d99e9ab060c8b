//! The hub against real MCP servers from npm (see /work/shared/PEERS.md).
//!
//! The servers live outside the repo under `$GATEHOUSE_NPM_PREFIX` (default
//! /root/.cache/gatehouse/npm). A missing server fails the test with the install command.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_mcp::{Hub, HubError, HubSettings, McpCaller, ServerState};
use serde_json::json;
use std::time::{Duration, Instant};

mod hub_support;
use hub_support::*;

async fn list_and_echo(hub: &Hub, server: &str) {
    let tools = hub.list_tools(server).await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"echo"), "tools: {names:?}");
    assert!(names.contains(&"get-sum"), "tools: {names:?}");
    let echo = tools.iter().find(|t| t.name == "echo").unwrap();
    assert_eq!(echo.input_schema["properties"]["message"]["type"], "string");
    let r = hub
        .call_tool(server, "echo", json!({"message": "hello gatehouse"}), None)
        .await
        .unwrap();
    assert_eq!(text_of(&r), "Echo: hello gatehouse");
    let r = hub
        .call_tool(server, "get-sum", json!({"a": 2, "b": 40}), None)
        .await
        .unwrap();
    assert!(text_of(&r).contains("42"), "{r}");
}

#[tokio::test]
async fn stdio_everything_lists_and_calls_echo() {
    let hub = started(config(json!({ "everything": everything_stdio() })));
    list_and_echo(&hub, "everything").await;
    let st = hub.status().remove(0);
    assert_eq!(st.state, ServerState::Ready);
    assert_eq!(st.transport, "stdio");
    assert!(st.tools >= 10, "{st:?}");
    assert!(st.protocol_version.is_some());
    // Concurrent calls share one session and are correlated by id.
    let calls = (0..8).map(|i| {
        let hub = hub.clone();
        async move {
            hub.call_tool(
                "everything",
                "echo",
                json!({"message": format!("m{i}")}),
                None,
            )
            .await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(text_of(&r.unwrap()), format!("Echo: m{i}"));
    }
    assert_eq!(hub.status()[0].restarts, 0);
    hub.shutdown().await;
}

#[tokio::test]
async fn filesystem_server_reads_a_file_we_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let file = root.join("note.txt");
    std::fs::write(&file, "gatehouse was here\n").unwrap();
    let hub = started(config(json!({
        "fs": { "command": "node", "args": [filesystem(), root.to_string_lossy()] }
    })));
    let tools = hub.list_tools("fs").await.unwrap();
    assert!(tools.iter().any(|t| t.name == "read_text_file"));
    let r = hub
        .call_tool(
            "fs",
            "read_text_file",
            json!({"path": file.to_string_lossy()}),
            None,
        )
        .await
        .unwrap();
    assert_ne!(r["isError"], json!(true), "{r}");
    assert_eq!(text_of(&r).trim(), "gatehouse was here");
    // A path outside the allowed directory is a tool-level error, not a hub error.
    let r = hub
        .call_tool(
            "fs",
            "read_text_file",
            json!({"path": "/etc/hostname"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r["isError"], json!(true), "{r}");
    hub.shutdown().await;
}

#[tokio::test]
async fn streamable_http_everything_lists_and_calls() {
    let srv = HttpServer::start("streamableHttp");
    let hub = started(config(json!({
        "web": { "url": format!("http://127.0.0.1:{}/mcp", srv.port), "transport": "http",
                 "headers": {"X-Test": "1"} }
    })));
    list_and_echo(&hub, "web").await;
    let st = hub.status().remove(0);
    assert_eq!(st.transport, "http");
    assert!(st.protocol_version.is_some());
    // A long call streams its answer over SSE after progress notifications.
    let r = hub
        .call_tool(
            "web",
            "trigger-long-running-operation",
            json!({"duration": 0.3, "steps": 2}),
            None,
        )
        .await
        .unwrap();
    assert!(text_of(&r).contains("completed"), "{r}");
    hub.shutdown().await;
}

#[tokio::test]
async fn legacy_sse_everything_lists_and_calls() {
    let srv = HttpServer::start("sse");
    let hub = started(config(json!({
        "legacy": { "url": format!("http://127.0.0.1:{}/sse", srv.port), "transport": "sse" }
    })));
    list_and_echo(&hub, "legacy").await;
    assert_eq!(hub.status()[0].transport, "sse");
    hub.shutdown().await;
}

#[tokio::test]
async fn killed_stdio_server_recovers_on_next_call() {
    let hub = started(config(json!({ "everything": everything_stdio() })));
    list_and_echo(&hub, "everything").await;
    let pid = hub.status()[0].pid.unwrap();
    assert!(
        std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_alive(pid)
        || state_of(&hub, "everything") == ServerState::Ready && hub.status()[0].pid == Some(pid)
    {
        assert!(
            Instant::now() < deadline,
            "the hub did not notice the dead server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = hub
        .call_tool("everything", "echo", json!({"message": "again"}), None)
        .await
        .unwrap();
    assert_eq!(text_of(&r), "Echo: again");
    let st = hub.status().remove(0);
    assert_eq!(st.state, ServerState::Ready);
    assert!(st.restarts >= 1, "{st:?}");
    assert_ne!(st.pid, Some(pid));
    hub.shutdown().await;
}

#[tokio::test]
async fn unknown_and_filtered_tools() {
    let hub = started(config(json!({
        "ev": { "command": "node", "args": [everything(), "stdio"], "disallowed_tools": ["get-sum"] },
        "only": { "command": "node", "args": [everything(), "stdio"], "allowed_tools": ["echo"] }
    })));
    let err = hub
        .call_tool("ev", "no-such-tool", json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        HubError::UnknownTool {
            server: "ev".into(),
            tool: "no-such-tool".into()
        }
    );
    let err = hub
        .call_tool("nowhere", "echo", json!({}), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HubError::UnknownServer { known, .. } if known == &["ev", "only"]),
        "{err:?}"
    );

    let names: Vec<String> = hub
        .list_tools("ev")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(names.contains(&"echo".to_string()));
    assert!(
        !names.contains(&"get-sum".to_string()),
        "disallowed tool listed: {names:?}"
    );
    let err = hub
        .call_tool("ev", "get-sum", json!({"a": 1, "b": 2}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, HubError::UnknownTool { .. }), "{err:?}");

    let names: Vec<String> = hub
        .list_tools("only")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["echo".to_string()]);
    let err = hub
        .call_tool("only", "get-sum", json!({"a": 1, "b": 2}), None)
        .await
        .unwrap_err();
    assert!(matches!(err, HubError::UnknownTool { .. }), "{err:?}");
    // Forwarded tools/list goes through the same filter.
    let listed = hub.request("only", "tools/list", None).await.unwrap();
    assert_eq!(listed["tools"].as_array().unwrap().len(), 1);
    hub.shutdown().await;
}

#[tokio::test]
async fn slow_tool_times_out_and_the_session_survives() {
    let hub = started(config(json!({ "everything": everything_stdio() })));
    hub.list_tools("everything").await.unwrap();
    let started_at = Instant::now();
    let err = hub
        .call_tool(
            "everything",
            "trigger-long-running-operation",
            json!({"duration": 10, "steps": 5}),
            Some(Duration::from_millis(500)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, HubError::Timeout { .. }), "{err:?}");
    assert!(started_at.elapsed() < Duration::from_secs(3));
    let r = hub
        .call_tool("everything", "echo", json!({"message": "still here"}), None)
        .await
        .unwrap();
    assert_eq!(text_of(&r), "Echo: still here");
    assert_eq!(hub.status()[0].restarts, 0);

    // The per-server `timeout` applies when the caller gives none.
    let hub2 = started(config(json!({
        "slow": { "command": "node", "args": [everything(), "stdio"], "timeout": 0.4 }
    })));
    let err = hub2
        .call_tool(
            "slow",
            "trigger-long-running-operation",
            json!({"duration": 10, "steps": 5}),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        HubError::Timeout {
            server: "slow".into(),
            seconds: 0.4
        }
    );
    hub.shutdown().await;
    hub2.shutdown().await;
}

#[tokio::test]
async fn broken_server_does_not_affect_others() {
    let hub = started(config(json!({
        "broken": { "command": "/nonexistent/gatehouse-no-such-server" },
        "everything": everything_stdio(),
    })));
    list_and_echo(&hub, "everything").await;
    let err = hub.list_tools("broken").await.unwrap_err();
    let HubError::Unavailable { server, reason } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(server, "broken");
    assert!(reason.contains("gatehouse-no-such-server"), "{reason}");
    match state_of(&hub, "broken") {
        ServerState::Failed { reason } => assert!(reason.contains("No such file"), "{reason}"),
        other => panic!("broken server state: {other:?}"),
    }
    assert_eq!(state_of(&hub, "everything"), ServerState::Ready);
    hub.shutdown().await;
}

#[tokio::test]
async fn shutdown_kills_the_process_group() {
    // The server runs under a shell: killing only the direct child would leave node behind.
    let cmd = format!("node {} stdio; echo exited >&2", everything());
    let hub = started(config(
        json!({ "wrapped": { "command": "sh", "args": ["-c", cmd] } }),
    ));
    list_and_echo(&hub, "wrapped").await;
    let pgid = hub.status()[0].pid.unwrap();
    let members = || {
        let out = std::process::Command::new("pgrep")
            .args(["-g", &pgid.to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert!(members() >= 2, "expected sh and node in the group");
    hub.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while members() > 0 {
        assert!(
            Instant::now() < deadline,
            "process group {pgid} survived shutdown"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state_of(&hub, "wrapped"), ServerState::Stopped);
}

#[tokio::test]
async fn aggregated_names_aliases_and_access() {
    let mut cfg = config(json!({
        "everything": {
            "command": "node", "args": [everything(), "stdio"],
            "api_keys": ["sk-team-a"]
        }
    }));
    cfg.litellm_settings
        .mcp_aliases
        .insert("ev".into(), "everything".into());
    let hub = started(cfg);
    hub.list_tools("everything").await.unwrap();
    assert_eq!(hub.resolve("ev").as_deref(), Some("everything"));
    assert_eq!(
        hub.split_prefixed("everything-get-sum"),
        Some(("everything".into(), "get-sum".into()))
    );
    assert_eq!(
        hub.split_prefixed("ev-get-sum"),
        Some(("everything".into(), "get-sum".into()))
    );
    assert_eq!(hub.split_prefixed("everything-nope"), None);
    assert_eq!(hub.split_prefixed("other-echo"), None);
    let prefixed = hub
        .list_tools_prefixed("everything", Some("ev"))
        .await
        .unwrap();
    assert!(prefixed.iter().any(|t| t.name == "ev-get-sum"));
    // Alias works for calls too.
    let r = hub
        .call_tool("ev", "echo", json!({"message": "via alias"}), None)
        .await
        .unwrap();
    assert_eq!(text_of(&r), "Echo: via alias");

    let sha = |s: &str| gatehouse_mcp::hub::sha256_hex(s);
    let caller = |key: Option<&str>, servers: Option<Vec<&str>>, admin: bool| McpCaller {
        key_id: "k".into(),
        key_hash: key.map(sha),
        allowed_servers: servers.map(|v| v.into_iter().map(String::from).collect()),
        is_admin: admin,
    };
    assert!(hub.may_use(&caller(Some("sk-team-a"), None, false), "everything"));
    assert!(hub.may_use(
        &caller(Some("sk-team-a"), Some(vec!["everything"]), false),
        "ev"
    ));
    assert!(!hub.may_use(&caller(Some("sk-team-b"), None, false), "everything"));
    assert!(!hub.may_use(&caller(None, None, false), "everything"));
    assert!(!hub.may_use(
        &caller(Some("sk-team-a"), Some(vec!["other"]), false),
        "everything"
    ));
    assert!(hub.may_use(&caller(None, Some(vec![]), true), "everything"));
    assert!(!hub.may_use(&caller(None, None, true), "nowhere") || hub.resolve("nowhere").is_none());
    hub.shutdown().await;
}

#[tokio::test]
async fn oversized_results_are_truncated() {
    let settings = HubSettings {
        max_output_bytes: 200,
        ..HubSettings::default()
    };
    let hub = Hub::with_settings(
        &config(json!({ "everything": everything_stdio() })),
        settings,
    )
    .unwrap();
    hub.start();
    let long = "x".repeat(5000);
    let r = hub
        .call_tool("everything", "echo", json!({"message": long}), None)
        .await
        .unwrap();
    let text = text_of(&r);
    assert!(text.contains("output truncated"), "{text}");
    assert!(serde_json::to_vec(&r).unwrap().len() < 600, "{r}");
    let r = hub
        .call_tool("everything", "echo", json!({"message": "short"}), None)
        .await
        .unwrap();
    assert_eq!(text_of(&r), "Echo: short");
    hub.shutdown().await;
}

#[tokio::test]
async fn forwards_other_requests_and_rejects_bad_config() {
    let hub = started(config(json!({ "everything": everything_stdio() })));
    let prompts = hub
        .request("everything", "prompts/list", None)
        .await
        .unwrap();
    assert!(
        !prompts["prompts"].as_array().unwrap().is_empty(),
        "{prompts}"
    );
    let pong = hub.request("everything", "ping", None).await.unwrap();
    assert_eq!(pong, json!({}));
    let err = hub
        .request("everything", "no/such/method", None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, HubError::Upstream { code: -32601, .. }),
        "{err:?}"
    );
    hub.shutdown().await;

    let bad = Hub::from_config(&config(json!({ "bad-name": { "command": "x" } }))).unwrap_err();
    assert!(matches!(bad, HubError::InvalidConfig(_)), "{bad:?}");
    let bad = Hub::from_config(&config(json!({ "web": { "transport": "http" } }))).unwrap_err();
    assert!(matches!(bad, HubError::InvalidConfig(_)), "{bad:?}");
}

// Multi-threaded: the hub must notice the restart while this thread blocks starting node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_session_is_reinitialized_after_server_restart() {
    let srv = HttpServer::start("streamableHttp");
    let port = srv.port;
    let hub = started(config(json!({
        "web": { "url": format!("http://127.0.0.1:{port}/mcp") }
    })));
    list_and_echo(&hub, "web").await;
    drop(srv); // the new process knows nothing of our session
    let _srv = HttpServer::start_on("streamableHttp", port);
    let r = hub
        .call_tool("web", "echo", json!({"message": "new session"}), None)
        .await
        .unwrap();
    assert_eq!(text_of(&r), "Echo: new session");
    assert!(hub.status()[0].restarts >= 1, "{:?}", hub.status());
    hub.shutdown().await;
}

#[tokio::test]
async fn timeout_sends_notifications_cancelled_upstream() {
    // `tee` records exactly what the real server receives on stdin.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stdin.log");
    let cmd = format!("tee {} | node {} stdio", log.display(), everything());
    let hub = started(config(
        json!({ "everything": { "command": "sh", "args": ["-c", cmd] } }),
    ));
    hub.list_tools("everything").await.unwrap();
    let err = hub
        .call_tool(
            "everything",
            "trigger-long-running-operation",
            json!({"duration": 10, "steps": 5}),
            Some(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, HubError::Timeout { .. }), "{err:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = std::fs::read_to_string(&log).unwrap_or_default();
        let call_id = seen
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|m| m["method"] == "tools/call")
            .map(|m| m["id"].clone());
        let cancelled = seen
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|m| m["method"] == "notifications/cancelled");
        if let (Some(id), Some(c)) = (call_id, cancelled) {
            assert_eq!(c["params"]["requestId"], id, "cancelled the wrong request");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no notifications/cancelled sent; stdin was:\n{seen}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    hub.shutdown().await;
}

#[tokio::test]
async fn progress_notifications_are_relayed_with_forwarded_tools_call() {
    let hub = started(config(json!({ "everything": everything_stdio() })));
    hub.list_tools("everything").await.unwrap();
    let mut events = hub.subscribe();
    let params = json!({
        "name": "trigger-long-running-operation",
        "arguments": {"duration": 0.4, "steps": 2},
        "_meta": {"progressToken": "tok-1"}
    });
    let r = hub
        .request("everything", "tools/call", Some(params))
        .await
        .unwrap();
    assert!(text_of(&r).contains("completed"), "{r}");
    let mut progress = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if ev.notification.method == "notifications/progress" {
            assert_eq!(ev.server, "everything");
            progress.push(ev.notification.params.unwrap());
        }
    }
    assert_eq!(progress.len(), 2, "{progress:?}");
    assert_eq!(progress[0]["progressToken"], "tok-1");
    hub.shutdown().await;
}

#[tokio::test]
async fn call_options_progress_with_private_token_and_cancellation() {
    use gatehouse_mcp::CallOptions;
    use std::sync::{Arc, Mutex};
    let hub = started(config(json!({ "everything": everything_stdio() })));
    hub.list_tools("everything").await.unwrap();

    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let opts = CallOptions {
        on_progress: Some(Arc::new(move |p| sink.lock().unwrap().push(p))),
        ..CallOptions::default()
    };
    let args = json!({"duration": 0.4, "steps": 2});
    let r = hub
        .call_tool_with("everything", "trigger-long-running-operation", args, opts)
        .await
        .unwrap();
    assert!(text_of(&r).contains("completed"), "{r}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1]["progress"], 2);
    assert!(
        seen[0]["progressToken"]
            .as_str()
            .unwrap()
            .starts_with("gatehouse-"),
        "{seen:?}"
    );

    let cancel = tokio_util::sync::CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let opts = CallOptions {
        cancel: Some(cancel),
        ..CallOptions::default()
    };
    let t0 = Instant::now();
    let args = json!({"duration": 10, "steps": 5});
    let err = hub
        .call_tool_with("everything", "trigger-long-running-operation", args, opts)
        .await
        .unwrap_err();
    assert_eq!(err, HubError::Cancelled);
    assert!(t0.elapsed() < Duration::from_secs(3));
    let r = hub
        .call_tool(
            "everything",
            "echo",
            json!({"message": "after cancel"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(text_of(&r), "Echo: after cancel");
    hub.shutdown().await;
}

#[tokio::test]
async fn server_to_client_requests_are_relayed_to_the_calling_client() {
    use gatehouse_mcp::CallOptions;
    use gatehouse_mcp::upstream::ServerRequest;
    let settings = HubSettings {
        client_capabilities: json!({"roots": {}, "sampling": {}}),
        ..HubSettings::default()
    };
    let hub = Hub::with_settings(
        &config(json!({ "everything": everything_stdio() })),
        settings,
    )
    .unwrap();
    hub.start();
    // Capability-dependent tools appear after initialization (tools/list_changed).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let names: Vec<String> = hub
            .list_tools("everything")
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.name)
            .collect();
        if names.iter().any(|n| n == "trigger-sampling-request")
            && names.iter().any(|n| n == "get-roots-list")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "conditional tools never listed: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ServerRequest>(4);
    let client = tokio::spawn(async move {
        let mut methods = Vec::new();
        while let Some(req) = rx.recv().await {
            methods.push(req.request.method.clone());
            let answer = match req.request.method.as_str() {
                "sampling/createMessage" => json!({
                    "role": "assistant", "model": "test-model",
                    "content": {"type": "text", "text": "sampled by the client"}
                }),
                _ => json!({"roots": [{"uri": "file:///client-root", "name": "client"}]}),
            };
            let _ = req.respond.send(Ok(answer));
        }
        methods
    });
    let opts = CallOptions {
        client_requests: Some(tx.clone()),
        ..CallOptions::default()
    };
    let r = hub
        .call_tool_with(
            "everything",
            "trigger-sampling-request",
            json!({"prompt": "hi"}),
            opts.clone(),
        )
        .await
        .unwrap();
    assert!(text_of(&r).contains("sampled by the client"), "{r}");
    let r = hub
        .call_tool_with("everything", "get-roots-list", json!({}), opts)
        .await
        .unwrap();
    assert!(text_of(&r).contains("file:///client-root"), "{r}");
    // Without a relay the hub refuses for the client instead of hanging.
    let r = hub
        .call_tool(
            "everything",
            "trigger-sampling-request",
            json!({"prompt": "x"}),
            None,
        )
        .await;
    match r {
        Ok(v) => assert_eq!(v["isError"], json!(true), "{v}"),
        Err(e) => assert!(matches!(e, HubError::Upstream { .. }), "{e:?}"),
    }
    drop(tx);
    hub.shutdown().await;
    let methods = client.await.unwrap();
    assert!(
        methods.contains(&"sampling/createMessage".to_string()),
        "{methods:?}"
    );
    assert!(methods.contains(&"roots/list".to_string()), "{methods:?}");
}

#[tokio::test]
async fn postgres_server_runs_a_query() {
    let url = std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgresql://postgres@127.0.0.1:5432/postgres".into());
    assert!(
        std::net::TcpStream::connect("127.0.0.1:5432").is_ok()
            || std::env::var("GATEHOUSE_TEST_POSTGRES_URL").is_ok(),
        "this test needs Postgres at 127.0.0.1:5432 (trust auth, user postgres) or GATEHOUSE_TEST_POSTGRES_URL"
    );
    let server = npm_module("@modelcontextprotocol/server-postgres/dist/index.js");
    let hub = started(config(
        json!({ "pg": { "command": "node", "args": [server, url] } }),
    ));
    let tools = hub.list_tools("pg").await.unwrap();
    assert_eq!(
        tools.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        vec!["query"]
    );
    let r = hub
        .call_tool(
            "pg",
            "query",
            json!({"sql": "select 40 + 2 as answer"}),
            None,
        )
        .await
        .unwrap();
    assert_ne!(r["isError"], json!(true), "{r}");
    assert!(text_of(&r).contains("42"), "{r}");
    hub.shutdown().await;
}
