//! Streamable HTTP transport (MCP 2025-03-26 and later): every message is a POST whose
//! answer is JSON or an SSE stream; an optional GET stream carries server notifications.

use super::{DeathNote, UpstreamError, sse};
use crate::jsonrpc::{self, Message};
use gatehouse_config::McpServerConfig;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, StatusCode, Url};
use serde_json::Value;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;

pub const SESSION_HEADER: &str = "mcp-session-id";
pub const VERSION_HEADER: &str = "mcp-protocol-version";
const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// Builds the configured `headers` once; invalid ones are a configuration error.
pub(crate) fn header_map(cfg: &McpServerConfig) -> Result<HeaderMap, UpstreamError> {
    let mut map = HeaderMap::new();
    for (k, v) in &cfg.headers {
        let name = HeaderName::try_from(k.as_str())
            .map_err(|_| UpstreamError::Config(format!("invalid header name `{k}`")))?;
        let value = HeaderValue::try_from(v.as_str())
            .map_err(|_| UpstreamError::Config(format!("invalid value for header `{k}`")))?;
        map.insert(name, value);
    }
    Ok(map)
}

pub(crate) fn parse_url(cfg: &McpServerConfig) -> Result<Url, UpstreamError> {
    let url = cfg
        .url
        .as_deref()
        .ok_or_else(|| UpstreamError::Config("server without `url`".into()))?;
    Url::parse(url).map_err(|e| UpstreamError::Config(format!("invalid url `{url}`: {e}")))
}

/// The client for one HTTP MCP server. Redirects are followed within the server's own
/// origin only: its configured headers (tokens, `x-mcp-*-authorization` values) must not
/// be replayed to another host, and reqwest strips only the standard auth headers.
pub(crate) fn client() -> Result<Client, UpstreamError> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| same_origin(first, attempt.url()));
        if attempt.previous().len() > 5 {
            attempt.error("too many redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            let to = gatehouse_config::redact::url(attempt.url().as_str());
            attempt.error(format!("redirect to another origin refused ({to})"))
        }
    });
    Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(policy)
        .build()
        .map_err(|e| UpstreamError::Transport(e.to_string()))
}

/// Scheme, host and port agree (an `http` → `https` upgrade is another origin too).
pub(crate) fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// reqwest's top-level message hides the cause ("error sending request"); keep it.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

fn read<T: Clone>(l: &RwLock<Option<T>>) -> Option<T> {
    l.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn write<T>(l: &RwLock<Option<T>>, v: T) {
    *l.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(v);
}

struct Shared {
    name: String,
    client: Client,
    url: Url,
    headers: HeaderMap,
    session: RwLock<Option<String>>,
    version: RwLock<Option<String>>,
    inbound: mpsc::Sender<Message>,
    death: DeathNote,
    /// Open SSE response streams by request id: closing one is how a 2026-07-28 server
    /// learns the request was cancelled.
    streams:
        std::sync::Mutex<std::collections::HashMap<String, tokio_util::sync::CancellationToken>>,
}

pub struct HttpTransport {
    shared: Arc<Shared>,
}

impl HttpTransport {
    pub(crate) fn new(
        name: &str,
        cfg: &McpServerConfig,
        inbound: mpsc::Sender<Message>,
        death: DeathNote,
    ) -> Result<HttpTransport, UpstreamError> {
        Ok(HttpTransport {
            shared: Arc::new(Shared {
                name: name.to_string(),
                client: client()?,
                url: parse_url(cfg)?,
                headers: header_map(cfg)?,
                session: RwLock::new(None),
                version: RwLock::new(None),
                inbound,
                death,
                streams: std::sync::Mutex::default(),
            }),
        })
    }

    /// Closes the SSE response stream of request `id`, if one is open.
    pub(crate) fn close_stream(&self, id: &str) {
        let token = self
            .shared
            .streams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
        if let Some(t) = token {
            t.cancel();
        }
    }

    pub(crate) fn session_id(&self) -> Option<String> {
        read(&self.shared.session)
    }

    pub(crate) fn set_protocol_version(&self, v: &str) {
        write(&self.shared.version, v.to_string());
    }

    /// Back to no `MCP-Protocol-Version` header (after a failed 2026-07-28 probe).
    pub(crate) fn clear_protocol_version(&self) {
        *self
            .shared
            .version
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// POSTs one message; `extra` headers go on this POST only.
    pub(crate) async fn send(
        &self,
        msg: &Value,
        extra: Option<&HeaderMap>,
    ) -> Result<(), UpstreamError> {
        let s = &self.shared;
        let body = serde_json::to_vec(msg).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        let mut req = s
            .with_session_and(s.client.post(s.url.clone()), extra)
            .header(ACCEPT, ACCEPT_BOTH)
            .header(CONTENT_TYPE, "application/json");
        if read(&s.version).as_deref() == Some(super::modern::MODERN_VERSION) {
            // 2026-07-28 servers check these against the body.
            let (method, name) = super::modern::routing_headers(msg);
            if let Some(m) = method {
                req = req.header("mcp-method", m);
            }
            if let Some(n) = name {
                req = req.header("mcp-name", super::modern::header_value(n));
            }
        }
        let req = req.body(body);
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                // The server is gone; the supervisor reconnects with backoff.
                s.death.die(format!("cannot connect: {e}"));
                UpstreamError::NotDelivered(e.to_string())
            } else {
                // The connection broke: maybe after the server read the message, so no
                // retry, but a fresh connection for whatever comes next.
                let e = error_chain(&e);
                s.death.die(format!("request failed: {e}"));
                UpstreamError::Closed(e)
            }
        })?;
        if let Some(id) = resp
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            && read(&s.session).is_none()
        {
            write(&s.session, id.to_string());
        }
        let status = resp.status();
        let has_session = read(&s.session).is_some();
        if status == StatusCode::NOT_FOUND && has_session {
            s.death.die("session expired (HTTP 404)");
            return Err(UpstreamError::NotDelivered("session expired".into()));
        }
        if !status.is_success() {
            let text = super::read_capped(resp, super::MAX_ERROR_BODY)
                .await
                .ok()
                .flatten()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            // 2026-07-28 servers answer JSON-RPC errors with 4xx statuses (-32601 → 404,
            // -32602/-32022 → 400): relay them as the request's answer.
            if let Ok(incoming) = jsonrpc::parse(text.as_bytes()) {
                let msgs = incoming.into_messages();
                // An id-less error is about the session or the request itself (handled
                // below), not an answer to our request.
                let answers =
                    |m: &Message| matches!(m, Message::Response(r) if r.id != jsonrpc::Id::Null);
                if !msgs.is_empty() && msgs.iter().all(answers) {
                    for m in msgs {
                        let _ = s.inbound.send(m).await;
                    }
                    return Ok(());
                }
            }
            let snippet: String = text.chars().take(300).collect();
            // The TypeScript SDK's servers answer 400 "No valid session ID" instead of
            // the 404 the spec asks for; treat both as "re-initialize".
            if status == StatusCode::BAD_REQUEST
                && has_session
                && snippet.to_ascii_lowercase().contains("session")
            {
                s.death
                    .die(format!("session rejected (HTTP 400: {snippet})"));
                return Err(UpstreamError::NotDelivered("session rejected".into()));
            }
            return Err(UpstreamError::Transport(format!(
                "HTTP {status}: {snippet}"
            )));
        }
        if status == StatusCode::ACCEPTED || status == StatusCode::NO_CONTENT {
            return Ok(());
        }
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        if is_sse {
            // Read in the background: the stream may carry notifications for a while
            // before the response, and the caller waits on its own pending slot.
            let shared = self.shared.clone();
            let stop = shared.death.token().child_token();
            let id = msg
                .get("id")
                .filter(|_| msg.get("method").is_some())
                .map(Value::to_string);
            if let Some(id) = &id {
                shared
                    .streams
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(id.clone(), stop.clone());
            }
            // 2026-07-28 streams are not resumable: one that ends without the answer is
            // the request's end (the waiter learns it now, not at its timeout).
            let unanswered = (read(&s.version).as_deref() == Some(super::modern::MODERN_VERSION))
                .then(|| msg.get("id").and_then(jsonrpc::Id::from_value))
                .flatten()
                .filter(|_| id.is_some());
            tokio::spawn(async move {
                let body = Box::pin(resp.bytes_stream());
                if let Err(e) = sse::pump(&shared.name, body, &shared.inbound, &stop, |_| {}).await
                {
                    tracing::debug!(server = %shared.name, error = %e, "SSE response stream broke");
                }
                // After the stream's own messages, so an answer it carried wins (the
                // dispatcher ignores this one then).
                if let Some(rid) = unanswered.filter(|_| !stop.is_cancelled()) {
                    let e = jsonrpc::RpcError::new(
                        jsonrpc::codes::INTERNAL_ERROR,
                        "the server closed the response stream without answering",
                    );
                    let _ = shared
                        .inbound
                        .send(Message::Response(jsonrpc::Response::err(rid, e)))
                        .await;
                }
                if let Some(id) = id {
                    shared
                        .streams
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&id);
                }
            });
            return Ok(());
        }
        let bytes = super::read_capped(resp, super::stdio::MAX_MESSAGE)
            .await
            .map_err(|e| UpstreamError::Transport(e.to_string()))?
            .ok_or_else(|| {
                UpstreamError::Protocol(format!(
                    "the answer is longer than {} MiB",
                    super::stdio::MAX_MESSAGE / (1024 * 1024)
                ))
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let incoming =
            jsonrpc::parse(&bytes).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        for m in incoming.into_messages() {
            let _ = s.inbound.send(m).await;
        }
        Ok(())
    }

    /// Opens the optional GET stream for server-initiated messages (best effort:
    /// servers may answer 405, and then we simply do without).
    pub(crate) fn open_get_stream(&self) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let stop = shared.death.token().clone();
            let mut failures = 0u32;
            while !stop.is_cancelled() && failures < 3 {
                let req = shared
                    .with_session(shared.client.get(shared.url.clone()))
                    .header(ACCEPT, "text/event-stream");
                let resp = tokio::select! {
                    r = req.send() => r,
                    _ = stop.cancelled() => return,
                };
                match resp {
                    Ok(r) if r.status().is_success() => {
                        failures = 0;
                        tracing::debug!(server = %shared.name, "GET stream open");
                        let body = Box::pin(r.bytes_stream());
                        if let Err(e) =
                            sse::pump(&shared.name, body, &shared.inbound, &stop, |_| {}).await
                        {
                            // A stream cut mid-body means the server went away: reconnect
                            // now rather than on the next call's stale pooled connection.
                            shared.death.die(format!("notification stream broke: {e}"));
                            return;
                        }
                    }
                    Ok(r) if r.status() == StatusCode::METHOD_NOT_ALLOWED => return,
                    Ok(r) => {
                        tracing::debug!(server = %shared.name, status = %r.status(), "GET stream refused");
                        failures += 1;
                    }
                    Err(e) => {
                        tracing::debug!(server = %shared.name, error = %error_chain(&e), "GET stream failed");
                        failures += 1;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.cancelled() => return,
                }
            }
        });
    }

    /// Ends the session with DELETE (servers may refuse; that is fine).
    pub(crate) async fn close(&self) {
        let s = &self.shared;
        s.death.die("closed by gatehouse");
        if read(&s.session).is_none() {
            return;
        }
        let req = s
            .with_session(s.client.delete(s.url.clone()))
            .timeout(Duration::from_secs(2));
        if let Err(e) = req.send().await {
            tracing::debug!(server = %s.name, error = %e, "DELETE of the MCP session failed");
        }
    }
}

impl Shared {
    fn with_session(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        self.with_session_and(req, None)
    }

    /// Configured headers, then `extra` (same name: `extra` wins, for this request
    /// only), then the session's own headers, which `extra` cannot carry.
    fn with_session_and(
        &self,
        req: reqwest::RequestBuilder,
        extra: Option<&HeaderMap>,
    ) -> reqwest::RequestBuilder {
        let mut req = req.headers(self.headers.clone());
        if let Some(extra) = extra {
            req = req.headers(extra.clone());
        }
        if let Some(id) = read(&self.session) {
            req = req.header(SESSION_HEADER, id);
        }
        if let Some(v) = read(&self.version) {
            req = req.header(VERSION_HEADER, v);
        }
        req
    }
}
