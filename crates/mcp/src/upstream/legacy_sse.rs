//! Legacy HTTP+SSE transport (MCP 2024-11-05): one long GET stream carries every
//! server message; the first `endpoint` event names the URL we POST our messages to.

use super::http::{client, header_map, parse_url};
use super::{DeathNote, UpstreamError, sse};
use crate::jsonrpc::Message;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use reqwest::{Client, Url};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use gatehouse_config::McpServerConfig;

pub struct SseTransport {
    name: String,
    client: Client,
    endpoint: Url,
    headers: HeaderMap,
    death: DeathNote,
}

impl SseTransport {
    /// Opens the stream and waits for the `endpoint` event (the caller bounds the wait).
    pub(crate) async fn connect(
        name: &str,
        cfg: &McpServerConfig,
        inbound: mpsc::Sender<Message>,
        death: DeathNote,
    ) -> Result<SseTransport, UpstreamError> {
        let url = parse_url(cfg)?;
        let headers = header_map(cfg)?;
        let client = client()?;
        let resp = client
            .get(url.clone())
            .headers(headers.clone())
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| UpstreamError::Spawn(format!("GET {url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(UpstreamError::Spawn(format!(
                "GET {url}: HTTP {}",
                resp.status()
            )));
        }
        let (endpoint_tx, endpoint_rx) = oneshot::channel::<String>();
        let stream_death = death.clone();
        let server = name.to_string();
        tokio::spawn(async move {
            let mut endpoint_tx = Some(endpoint_tx);
            let stop = stream_death.token().clone();
            let body = Box::pin(resp.bytes_stream());
            let on_other = |ev: sse::SseEvent| {
                if ev.event == "endpoint" {
                    if let Some(tx) = endpoint_tx.take() {
                        let _ = tx.send(ev.data);
                    }
                } else {
                    tracing::debug!(server = %server, event = %ev.event, "ignoring SSE event");
                }
            };
            let why = match sse::pump(&server, body, &inbound, &stop, on_other).await {
                Ok(()) => "SSE stream ended".to_string(),
                Err(e) => format!("SSE stream broke: {e}"),
            };
            stream_death.die(why);
        });
        let data = endpoint_rx.await.map_err(|_| {
            UpstreamError::Spawn("SSE stream ended before the `endpoint` event".into())
        })?;
        let endpoint = url
            .join(data.trim())
            .map_err(|e| UpstreamError::Protocol(format!("bad endpoint `{data}`: {e}")))?;
        // Our messages carry the server's configured headers: a server (or whoever
        // injected the event) must not point them at another host.
        if !super::http::same_origin(&url, &endpoint) {
            return Err(UpstreamError::Protocol(format!(
                "the `endpoint` event names another origin ({}); refused",
                gatehouse_config::redact::url(endpoint.as_str())
            )));
        }
        Ok(SseTransport {
            name: name.to_string(),
            client,
            endpoint,
            headers,
            death,
        })
    }

    /// POSTs one message to the endpoint; `extra` headers go on this POST only and
    /// replace configured ones of the same name.
    pub(crate) async fn send(
        &self,
        msg: &Value,
        extra: Option<&HeaderMap>,
    ) -> Result<(), UpstreamError> {
        let body = serde_json::to_vec(msg).map_err(|e| UpstreamError::Protocol(e.to_string()))?;
        let mut req = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone());
        if let Some(extra) = extra {
            req = req.headers(extra.clone());
        }
        let resp = req
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    self.death.die(format!("cannot connect: {e}"));
                    UpstreamError::NotDelivered(e.to_string())
                } else {
                    UpstreamError::Transport(e.to_string())
                }
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text = super::read_capped(resp, super::MAX_ERROR_BODY)
            .await
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let snippet: String = text.chars().take(300).collect();
        if status == reqwest::StatusCode::NOT_FOUND {
            self.death
                .die("SSE session unknown to the server (HTTP 404)");
            return Err(UpstreamError::NotDelivered(format!("HTTP 404: {snippet}")));
        }
        Err(UpstreamError::Transport(format!(
            "HTTP {status}: {snippet}"
        )))
    }

    pub(crate) async fn close(&self) {
        tracing::debug!(server = %self.name, "closing SSE stream");
        self.death.die("closed by gatehouse");
    }
}
