//! A fake `Backend` and an HTTP harness shared by the downstream endpoint tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Extension;
use gatehouse_mcp::McpCaller;
use gatehouse_mcp::downstream::{
    Backend, BackendError, BoxFut, EndpointSettings, EventStream, RequestContext, ServerInfo,
    UpstreamEvent, broadcast_events, router,
};
use serde_json::{Value, json};
use tokio::sync::broadcast;

// ---------------------------------------------------------------- fake backend

pub struct Fake {
    pub events: broadcast::Sender<UpstreamEvent>,
    pub cancelled: AtomicBool,
    pub calls: Mutex<Vec<(String, String, Value)>>,
}

impl Fake {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            events: broadcast::channel(16).0,
            cancelled: AtomicBool::new(false),
            calls: Mutex::new(Vec::new()),
        })
    }
}

pub fn tool(name: &str) -> Value {
    json!({"name": name, "description": format!("{name} tool"), "inputSchema": {"type": "object"}})
}

pub fn text(t: &str) -> Value {
    json!({"content": [{"type": "text", "text": t}], "isError": false})
}

impl Backend for Fake {
    fn servers(&self) -> Vec<ServerInfo> {
        ["alpha", "beta", "secret"]
            .iter()
            .map(|n| ServerInfo {
                name: (*n).into(),
                prefix: (*n).into(),
                description: Some(format!("the {n} server")),
                transport: "stdio".into(),
                status: "ready".into(),
                tool_count: (*n != "secret").then_some(if *n == "alpha" { 3 } else { 2 }),
            })
            .collect()
    }

    fn resolve(&self, name: &str) -> Option<String> {
        match name {
            "alpha" | "beta" | "secret" | "gamma" => Some(name.into()),
            "b" => Some("beta".into()),
            _ => None,
        }
    }

    fn may_use(&self, caller: &McpCaller, server: &str) -> bool {
        caller.is_admin
            || caller
                .allowed_servers
                .as_ref()
                .is_none_or(|a| a.iter().any(|s| s == server))
    }

    fn list_tools<'a>(&'a self, server: &'a str) -> BoxFut<'a, Result<Vec<Value>, BackendError>> {
        Box::pin(async move {
            match server {
                "alpha" => Ok(vec![tool("echo"), tool("slow"), tool("sample")]),
                "beta" => Ok(vec![tool("echo"), tool("weird name!")]),
                // Reachable only as /mcp/gamma (not in `servers()`): a 2026-07-28 tool
                // whose `region` argument is mirrored in `Mcp-Param-Region`.
                "gamma" => Ok(vec![json!({"name": "regional", "inputSchema": {
                    "type": "object", "properties": {
                        "region": {"type": "string", "x-mcp-header": "Region"},
                        "q": {"type": "string"}}}})]),
                "secret" => Ok(vec![tool("launch")]),
                _ => Err(BackendError::UnknownServer(server.into())),
            }
        })
    }

    fn call_tool<'a>(
        &'a self,
        server: &'a str,
        tool: &'a str,
        arguments: Value,
        ctx: RequestContext,
    ) -> BoxFut<'a, Result<Value, BackendError>> {
        Box::pin(async move {
            self.calls
                .lock()
                .unwrap()
                .push((server.into(), tool.into(), arguments.clone()));
            match tool {
                "slow" => {
                    let steps = arguments.get("steps").and_then(Value::as_u64).unwrap_or(3);
                    let delay = arguments
                        .get("delay_ms")
                        .and_then(Value::as_u64)
                        .unwrap_or(50);
                    for i in 1..=steps {
                        tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(delay)) => {}
                            () = ctx.cancel.cancelled() => {
                                self.cancelled.store(true, Ordering::SeqCst);
                                return Err(BackendError::Cancelled);
                            }
                        }
                        ctx.report_progress(
                            i as f64,
                            Some(steps as f64),
                            Some(format!("step {i}")),
                        );
                    }
                    Ok(text("slow done"))
                }
                "sample" => {
                    let r = ctx
                        .client_request(
                            "sampling/createMessage",
                            json!({"messages": [], "maxTokens": 10}),
                        )
                        .await?;
                    let said = r["content"]["text"].as_str().unwrap_or("?").to_owned();
                    Ok(text(&format!("model said: {said}")))
                }
                _ => Ok(text(&format!("{server}/{tool}: {arguments}"))),
            }
        })
    }

    fn request<'a>(
        &'a self,
        server: &'a str,
        method: &'a str,
        params: Value,
        _ctx: RequestContext,
    ) -> BoxFut<'a, Result<Value, BackendError>> {
        Box::pin(async move {
            let not_found = || BackendError::Rpc {
                code: -32601,
                message: "Method not found".into(),
                data: None,
            };
            match (server, method) {
                ("alpha", "prompts/list") => Ok(json!({"prompts": [{"name": "greet"}]})),
                ("alpha", "prompts/get") => Ok(
                    json!({"messages": [{"role": "user", "content": {"type": "text", "text": format!("hello from {}", params["name"])}}]}),
                ),
                ("alpha", "resources/list") => {
                    Ok(json!({"resources": [{"uri": "test://static/1", "name": "one"}]}))
                }
                ("alpha", "resources/templates/list") => Ok(
                    json!({"resourceTemplates": [{"uriTemplate": "test://static/{id}", "name": "t"}]}),
                ),
                ("alpha", "resources/read") => {
                    let uri = params["uri"].as_str().unwrap_or_default();
                    Ok(json!({"contents": [{"uri": uri, "text": format!("content of {uri}")}]}))
                }
                (_, "logging/setLevel") => Ok(json!({})),
                _ => Err(not_found()),
            }
        })
    }

    fn subscribe(&self) -> Option<EventStream> {
        Some(broadcast_events(self.events.subscribe(), Some))
    }

    fn toolset(&self, name: &str) -> Option<Vec<(String, Option<Vec<String>>)>> {
        (name == "mix").then(|| {
            vec![
                ("alpha".into(), Some(vec!["echo".into()])),
                ("b".into(), None),
                ("secret".into(), None),
            ]
        })
    }
}

// ---------------------------------------------------------------- harness

pub fn admin() -> McpCaller {
    McpCaller {
        key_id: "admin".into(),
        key_hash: None,
        allowed_servers: None,
        is_admin: true,
    }
}

pub fn restricted() -> McpCaller {
    McpCaller {
        key_id: "team-a".into(),
        key_hash: Some("abc".into()),
        allowed_servers: Some(vec!["alpha".into(), "beta".into()]),
        is_admin: false,
    }
}

pub struct Gw {
    pub base: String,
    pub http: reqwest::Client,
    pub fake: Arc<Fake>,
}

pub async fn serve_with(caller: McpCaller, settings: EndpointSettings) -> Gw {
    let fake = Fake::new();
    let app = router(fake.clone(), settings).layer(Extension(caller));
    listen(app, fake).await
}

/// Serves `app` on a free loopback port.
async fn listen(app: axum::Router, fake: Arc<Fake>) -> Gw {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Gw {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        fake,
    }
}

pub async fn serve(caller: McpCaller) -> Gw {
    serve_with(caller, EndpointSettings::default()).await
}

pub const ACCEPT: &str = "application/json, text/event-stream";

impl Gw {
    pub fn post(&self, path: &str, session: Option<&str>, body: &Value) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("accept", ACCEPT)
            .json(body);
        if let Some(s) = session {
            r = r.header("mcp-session-id", s);
        }
        r
    }

    pub async fn initialize_at(
        &self,
        path: &str,
        version: &str,
        headers: &[(&str, &str)],
    ) -> (String, Value) {
        let mut r = self.post(
            path,
            None,
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": version, "capabilities": {"sampling": {}},
                "clientInfo": {"name": "test", "version": "1"}}}),
        );
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let sid = resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = resp.json().await.unwrap();
        (sid, body)
    }

    pub async fn initialize(&self) -> String {
        self.initialize_at("/mcp", "2025-11-25", &[]).await.0
    }

    pub async fn rpc_at(&self, path: &str, sid: &str, method: &str, params: Value) -> Value {
        let resp = self
            .post(
                path,
                Some(sid),
                &json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{method}");
        let body = response_message(resp).await;
        assert_eq!(body["id"], 7);
        body
    }

    pub async fn rpc(&self, sid: &str, method: &str, params: Value) -> Value {
        self.rpc_at("/mcp", sid, method, params).await
    }
}

#[derive(Debug, Clone)]
pub struct Ev {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl Ev {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

/// Reads SSE events off a streaming response.
pub struct Sse {
    resp: reqwest::Response,
    buf: String,
}

impl Sse {
    pub fn new(resp: reqwest::Response) -> Self {
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Self {
            resp,
            buf: String::new(),
        }
    }

    pub async fn next(&mut self) -> Option<Ev> {
        loop {
            if let Some(i) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..i + 2).collect();
                if block.starts_with(':') {
                    continue;
                }
                let mut ev = Ev {
                    id: None,
                    event: None,
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        ev.id = Some(v.into());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        ev.event = Some(v.into());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        ev.data.push_str(v);
                    }
                }
                return Some(ev);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.resp.chunk())
                .await
                .expect("SSE event within 10s")
                .unwrap()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    pub async fn all(mut self) -> Vec<Ev> {
        let mut v = Vec::new();
        while let Some(e) = self.next().await {
            v.push(e);
        }
        v
    }
}

/// The JSON-RPC response in a POST answer, whether sent as JSON or as an SSE stream.
pub async fn response_message(resp: reqwest::Response) -> Value {
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    if ct.starts_with("application/json") {
        return resp.json().await.unwrap();
    }
    let events = Sse::new(resp).all().await;
    events
        .iter()
        .filter(|e| !e.data.is_empty())
        .map(Ev::json)
        .find(|m| m.get("id").is_some() && m.get("method").is_none())
        .expect("a response on the stream")
}

pub fn tool_names(list: &Value) -> Vec<String> {
    list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

pub fn result_text(v: &Value) -> String {
    v["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// An endpoint whose caller comes from each request's `x-test-caller` header
/// (`key_id|key_hash|server,server`; `*` for every server), as the server's auth layer
/// would derive it from the presented key at that moment.
pub async fn serve_callers(settings: EndpointSettings) -> Gw {
    use axum::extract::Request;
    use axum::middleware::{self, Next};
    async fn who(mut req: Request, next: Next) -> axum::response::Response {
        let raw = req
            .headers()
            .get("x-test-caller")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("anon|anon|*")
            .to_owned();
        let parts: Vec<&str> = raw.split('|').collect();
        let servers = parts.get(2).copied().unwrap_or("*");
        req.extensions_mut().insert(McpCaller {
            key_id: parts[0].into(),
            key_hash: Some(parts.get(1).copied().unwrap_or("h").into()),
            allowed_servers: (servers != "*").then(|| {
                servers
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            }),
            is_admin: false,
        });
        next.run(req).await
    }
    let fake = Fake::new();
    let app = router(fake.clone(), settings).layer(middleware::from_fn(who));
    listen(app, fake).await
}
