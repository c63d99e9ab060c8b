//! Helpers shared by the hub tests: locating the npm peers, configs, HTTP servers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_config::Config;
use gatehouse_mcp::{Hub, ServerState};
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const INSTALL: &str = "npm install --prefix /root/.cache/gatehouse/npm @modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/server-filesystem@2026.8.31 @modelcontextprotocol/server-postgres@0.6.2 supergateway@4.0.0";

pub fn npm_module(rel: &str) -> String {
    let prefix = std::env::var("GATEHOUSE_NPM_PREFIX")
        .unwrap_or_else(|_| "/root/.cache/gatehouse/npm".into());
    let path = PathBuf::from(prefix).join("node_modules").join(rel);
    assert!(
        path.exists(),
        "MCP test server missing: {} does not exist.\nInstall the peers with:\n  {INSTALL}\n(or set GATEHOUSE_NPM_PREFIX)",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

pub fn everything() -> String {
    npm_module("@modelcontextprotocol/server-everything/dist/index.js")
}

pub fn filesystem() -> String {
    npm_module("@modelcontextprotocol/server-filesystem/dist/index.js")
}

pub fn config(servers: Value) -> Config {
    serde_json::from_value(json!({ "mcp_servers": servers })).unwrap()
}

pub fn everything_stdio() -> Value {
    json!({ "command": "node", "args": [everything(), "stdio"] })
}

pub fn started(cfg: Config) -> Arc<Hub> {
    let hub = Hub::from_config(&cfg).unwrap();
    hub.start();
    hub
}

pub fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn state_of(hub: &Hub, server: &str) -> ServerState {
    hub.status()
        .into_iter()
        .find(|s| s.name == server)
        .unwrap()
        .state
}

/// A server-everything HTTP process (`streamableHttp` or `sse` mode) on a free port.
pub struct HttpServer {
    pub child: std::process::Child,
    pub port: u16,
}

impl HttpServer {
    pub fn start(mode: &str) -> HttpServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        HttpServer::start_on(mode, port)
    }

    pub fn start_on(mode: &str, port: u16) -> HttpServer {
        let child = std::process::Command::new("node")
            .arg(everything())
            .arg(mode)
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server-everything {mode} did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        HttpServer { child, port }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn process_alive(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// The Python interpreter of the venv holding the `mcp` 2.x SDK.
pub fn python() -> PathBuf {
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

/// The Python interpreter of the venv holding the `mcp` 1.x SDK (handshake era only).
pub fn python_v1() -> PathBuf {
    let venv = std::env::var("GATEHOUSE_VENV_MCP1")
        .unwrap_or_else(|_| "/root/.cache/gatehouse/venv-mcp1".into());
    let py = PathBuf::from(venv).join("bin/python");
    assert!(
        py.exists(),
        "{} missing: python3 -m venv /root/.cache/gatehouse/venv-mcp1 && /root/.cache/gatehouse/venv-mcp1/bin/pip install 'mcp<2'",
        py.display()
    );
    py
}

/// `tests/py/handshake_server.py` over stdio: a handshake-era server (Python SDK 1.x)
/// whose prompt and resource elicit.
pub fn handshake_stdio() -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/handshake_server.py");
    json!({ "command": python_v1(), "args": [script] })
}

/// `tests/py/modern_server.py`: a 2026-07-28 server on the Python SDK's server API.
pub struct PyServer {
    pub child: std::process::Child,
    pub port: u16,
}

impl PyServer {
    pub fn start() -> PyServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/modern_server.py");
        let child = std::process::Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "modern_server.py did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        PyServer { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until every named server is ready (or fails the test after 30 s).
pub async fn wait_ready(hub: &Hub, servers: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for s in servers {
        while state_of(hub, s) != ServerState::Ready {
            assert!(
                Instant::now() < deadline,
                "{s} not ready: {:?}",
                state_of(hub, s)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Serves the hub's MCP endpoint (default settings, the master key's view) on a free
/// loopback port; returns its base URL.
pub async fn serve_hub(hub: &Arc<Hub>) -> String {
    use axum::Extension;
    use gatehouse_mcp::McpCaller;
    use gatehouse_mcp::downstream::{EndpointSettings, router};
    let admin = McpCaller {
        key_id: "master".into(),
        key_hash: None,
        allowed_servers: None,
        is_admin: true,
    };
    let app = router(hub.clone(), EndpointSettings::default()).layer(Extension(admin));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}
