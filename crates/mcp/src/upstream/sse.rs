//! A tiny incremental `text/event-stream` parser (just what MCP servers send).

use crate::jsonrpc::{self, Message};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SseEvent {
    /// The `event:` field; empty means the default `message`.
    pub event: String,
    pub data: String,
    pub id: Option<String>,
}

/// Feed it bytes as they arrive; it returns complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    current: SseEvent,
    has_data: bool,
}

impl SseParser {
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(pos) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            let mut line = &self.buf[start..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            start = end + 1;
            if let Some(ev) = self.line(&line) {
                out.push(ev);
            }
        }
        self.buf.drain(..start);
        out
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            if !self.has_data && self.current.event.is_empty() {
                return None;
            }
            self.has_data = false;
            return Some(std::mem::take(&mut self.current));
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.current.event = value.to_string(),
            "data" => {
                if self.has_data {
                    self.current.data.push('\n');
                }
                self.current.data.push_str(value);
                self.has_data = true;
            }
            "id" => self.current.id = Some(value.to_string()),
            _ => {}
        }
        None
    }
}

/// Reads JSON-RPC messages from `message` events of an SSE body into `inbound` until
/// the stream ends or `stop` fires. Other events go to `on_other` (e.g. `endpoint`).
pub(crate) async fn pump<S, E>(
    server: &str,
    mut body: S,
    inbound: &mpsc::Sender<Message>,
    stop: &CancellationToken,
    mut on_other: impl FnMut(SseEvent),
) -> Result<(), String>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut parser = SseParser::default();
    loop {
        let chunk = tokio::select! {
            c = body.next() => c,
            _ = stop.cancelled() => return Ok(()),
        };
        let chunk = match chunk {
            None => return Ok(()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(c)) => c,
        };
        for ev in parser.feed(&chunk) {
            if ev.event.is_empty() || ev.event == "message" {
                if ev.data.trim().is_empty() {
                    continue; // priming event carrying only an id
                }
                match jsonrpc::parse(ev.data.as_bytes()) {
                    Ok(incoming) => {
                        for m in incoming.into_messages() {
                            if inbound.send(m).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!(server, error = %e, "ignoring a non JSON-RPC SSE event")
                    }
                }
            } else {
                on_other(ev);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_split_chunks_multiline_data_and_comments() {
        let mut p = SseParser::default();
        assert!(
            p.feed(b": keepalive\n\nevent: endpoint\r\ndata: /message?s")
                .is_empty()
        );
        let evs = p.feed(b"essionId=1\r\n\r\ndata: {\"a\":\ndata: 1}\n\n");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].event, "endpoint");
        assert_eq!(evs[0].data, "/message?sessionId=1");
        assert_eq!(evs[1].event, "");
        assert_eq!(evs[1].data, "{\"a\":\n1}");
    }
}
