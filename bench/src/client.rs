//! One keep-alive HTTP/1.1 connection that sends the same prepared request over and over
//! and times each exchange: to the first body byte and to the end of the body.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::BenchError;
use crate::mcp;

/// Where requests go: a loopback address and the key that address accepts.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub api_key: String,
}

impl Target {
    /// Parses `http://127.0.0.1:PORT` (what the mock and the gateway print). Anything
    /// but a loopback IP is refused: the benchmark must never load a remote host.
    pub fn from_url(url: &str, api_key: &str) -> Result<Target, BenchError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| BenchError::NotLoopback(url.to_string()))?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let addr: SocketAddr = authority
            .parse()
            .map_err(|_| BenchError::NotLoopback(url.to_string()))?;
        if !addr.ip().is_loopback() {
            return Err(BenchError::NotLoopback(url.to_string()));
        }
        Ok(Target {
            addr,
            api_key: api_key.to_string(),
        })
    }
}

/// What a response must look like to count as served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A `chat.completion` JSON object.
    Completion,
    /// An SSE stream of chunks closed by `data: [DONE]`.
    Stream,
    /// Any 2xx body (health probes).
    Ok,
    /// A JSON-RPC response (JSON or SSE) with the request's id and a `result`.
    RpcResult,
}

/// A request built once and cloned per send (headers and body are cheap to clone).
#[derive(Debug, Clone)]
pub struct Prepared {
    method: Method,
    path: &'static str,
    headers: HeaderMap,
    body: Bytes,
    expect: Expect,
    /// JSON-RPC requests get a fresh id per send (ids must not repeat within a session).
    rpc: Option<RpcBody>,
}

/// A JSON-RPC body split around its id.
#[derive(Debug, Clone)]
struct RpcBody {
    before_id: &'static str,
    after_id: &'static str,
    method: mcp::Method,
    /// Shared by the clones of one `Prepared` (one route's session).
    next_id: Arc<AtomicU64>,
}

impl Prepared {
    /// `POST /v1/chat/completions` for model `bench`, streaming or not.
    pub fn chat(target: &Target, stream: bool) -> Prepared {
        Prepared::chat_with(target, stream, "Say hello to the benchmark", "")
    }

    /// The same with another user message and extra top-level fields (`extra` starts
    /// with a comma), which the gateway forwards and the bench's upstream reads.
    pub fn chat_with(target: &Target, stream: bool, content: &str, extra: &str) -> Prepared {
        let body = format!(
            r#"{{"model":"bench","messages":[{{"role":"user","content":"{content}"}}],"stream":{stream}{extra}}}"#
        );
        Prepared {
            method: Method::POST,
            path: "/v1/chat/completions",
            headers: headers(target, true),
            body: Bytes::from(body),
            expect: if stream {
                Expect::Stream
            } else {
                Expect::Completion
            },
            rpc: None,
        }
    }

    /// `GET path` (e.g. `/health/liveliness`).
    pub fn get(target: &Target, path: &'static str) -> Prepared {
        Prepared {
            method: Method::GET,
            path,
            headers: headers(target, false),
            body: Bytes::new(),
            expect: Expect::Ok,
            rpc: None,
        }
    }

    /// An MCP streamable-HTTP `POST path` with a fixed body (session set-up: `initialize`,
    /// `notifications/initialized`); any 2xx counts.
    pub fn mcp_post(
        target: &Target,
        path: &'static str,
        session: Option<&str>,
        body: String,
    ) -> Prepared {
        Prepared {
            method: Method::POST,
            path,
            headers: mcp_headers(target, session),
            body: Bytes::from(body),
            expect: Expect::Ok,
            rpc: None,
        }
    }

    /// `DELETE path` ending the session `session`; any 2xx counts.
    pub fn mcp_delete(target: &Target, path: &'static str, session: &str) -> Prepared {
        Prepared {
            method: Method::DELETE,
            path,
            headers: mcp_headers(target, Some(session)),
            body: Bytes::new(),
            expect: Expect::Ok,
            rpc: None,
        }
    }

    /// `method` in the session `session`, a fresh JSON-RPC id per send; the response must
    /// carry that id and a `result`.
    pub fn mcp(
        target: &Target,
        path: &'static str,
        session: &str,
        method: mcp::Method,
    ) -> Prepared {
        let (before_id, after_id) = method.body_parts();
        Prepared {
            method: Method::POST,
            path,
            headers: mcp_headers(target, Some(session)),
            body: Bytes::new(),
            expect: Expect::RpcResult,
            rpc: Some(RpcBody {
                before_id,
                after_id,
                method,
                // 1 is the `initialize` request's id.
                next_id: Arc::new(AtomicU64::new(2)),
            }),
        }
    }

    /// The request to send and, for JSON-RPC, the id it carries and its method.
    fn request(&self) -> (Request<Full<Bytes>>, Option<(u64, mcp::Method)>) {
        let (body, id) = match &self.rpc {
            Some(rpc) => {
                let id = rpc.next_id.fetch_add(1, Ordering::Relaxed);
                let body = format!("{}{id}{}", rpc.before_id, rpc.after_id);
                (Bytes::from(body), Some((id, rpc.method)))
            }
            None => (self.body.clone(), None),
        };
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = http::Uri::from_static(self.path);
        *req.headers_mut() = self.headers.clone();
        (req, id)
    }
}

/// JSON in, JSON or SSE out, the session and protocol headers once a session exists.
fn mcp_headers(target: &Target, session: Option<&str>) -> HeaderMap {
    let mut headers = headers(target, true);
    headers.insert(ACCEPT, HeaderValue::from_static(mcp::ACCEPT));
    headers.insert(
        HeaderName::from_static(mcp::VERSION_HEADER),
        HeaderValue::from_static(mcp::PROTOCOL_VERSION),
    );
    if let Some(id) = session.and_then(|s| HeaderValue::from_str(s).ok()) {
        headers.insert(HeaderName::from_static(mcp::SESSION_HEADER), id);
    }
    headers
}

fn headers(target: &Target, json: bool) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(3);
    if let Ok(host) = HeaderValue::from_str(&target.addr.to_string()) {
        headers.insert(HOST, host);
    }
    // An upstream that takes no key (an MCP server) gets no Authorization header.
    if !target.api_key.is_empty()
        && let Ok(auth) = HeaderValue::from_str(&format!("Bearer {}", target.api_key))
    {
        headers.insert(AUTHORIZATION, auth);
    }
    if json {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    headers
}

/// Time from sending the request to the first body byte and to the end of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub first_byte: Duration,
    pub full: Duration,
}

/// A request that did not count as served. After any failure the connection is in an
/// unknown state and must be replaced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("transport: {0}")]
    Transport(String),
    #[error("unexpected body: {0}")]
    BadBody(String),
    #[error("no complete response within {0:?}")]
    Timeout(Duration),
}

/// One client connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    /// Reused across requests so reading a body does not allocate on the client side.
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Conn, BenchError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| BenchError::Connect { addr, source })?;
        // Same as the gateway and any sane client: small requests leave at once.
        stream
            .set_nodelay(true)
            .map_err(|source| BenchError::Connect { addr, source })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| BenchError::Handshake { addr, source })?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the peer closes;
            // either way the next send on this Conn reports it.
            let _ = conn.await;
        });
        Ok(Conn {
            sender,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends `req` and reads the whole response, within `timeout`.
    pub async fn send(&mut self, req: &Prepared, timeout: Duration) -> Result<Timing, Failure> {
        match tokio::time::timeout(timeout, self.exchange(req)).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout(timeout)),
        }
    }

    /// Sends `req` once and returns the status, headers and body whatever the status
    /// (set-up steps that need a response header, e.g. `Mcp-Session-Id`).
    pub async fn fetch(
        &mut self,
        req: &Prepared,
        timeout: Duration,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), Failure> {
        let (request, _) = req.request();
        match tokio::time::timeout(timeout, self.roundtrip(request)).await {
            Ok(Ok((_, status, headers))) => Ok((status, headers, self.buf.clone())),
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(Failure::Timeout(timeout)),
        }
    }

    async fn exchange(&mut self, req: &Prepared) -> Result<Timing, Failure> {
        let (request, rpc_id) = req.request();
        let (timing, status, _) = self.roundtrip(request).await?;
        if !status.is_success() {
            return Err(Failure::Status {
                status: status.as_u16(),
                body: snippet(&self.buf),
            });
        }
        match rpc_id {
            Some((id, method)) => mcp::check_response(&self.buf, id, Some(method))
                .map_err(|e| Failure::BadBody(format!("{e}; body: {}", snippet(&self.buf))))?,
            None => check_body(req.expect, &self.buf)?,
        }
        Ok(timing)
    }

    /// One request/response; the body is left in `self.buf`.
    async fn roundtrip(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<(Timing, StatusCode, HeaderMap), Failure> {
        self.sender
            .ready()
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let started = Instant::now();
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| Failure::Transport(e.to_string()))?;
        let (parts, mut body) = response.into_parts();
        self.buf.clear();
        let mut first_byte = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Failure::Transport(e.to_string()))?;
            if let Ok(data) = frame.into_data()
                && !data.is_empty()
            {
                first_byte.get_or_insert_with(|| started.elapsed());
                self.buf.extend_from_slice(&data);
            }
        }
        let full = started.elapsed();
        let timing = Timing {
            first_byte: first_byte.unwrap_or(full),
            full,
        };
        Ok((timing, parts.status, parts.headers))
    }
}

/// Cheap shape checks: enough to catch an error body or a cut stream passing as a
/// success, without parsing JSON on the client (which would cost the same on both
/// paths but add noise).
pub fn check_body(expect: Expect, body: &[u8]) -> Result<(), Failure> {
    let ok = match expect {
        Expect::Ok => true,
        // Needs the request's id: checked by `mcp::check_response` instead.
        Expect::RpcResult => false,
        Expect::Completion => {
            body.first() == Some(&b'{')
                && contains(body, b"\"chat.completion\"")
                && contains(body, b"\"choices\"")
        }
        Expect::Stream => {
            contains(body, b"chat.completion.chunk")
                && body.trim_ascii_end().ends_with(b"data: [DONE]")
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Failure::BadBody(snippet(body)))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        let t = Target::from_url("http://127.0.0.1:4000", "k").unwrap();
        assert_eq!(t.addr.port(), 4000);
        assert!(Target::from_url("http://[::1]:80/v1", "k").is_ok());
        assert!(Target::from_url("http://10.0.0.1:4000", "k").is_err());
        assert!(Target::from_url("https://127.0.0.1:4000", "k").is_err());
        assert!(Target::from_url("http://localhost:4000", "k").is_err());
    }

    #[test]
    fn mcp_requests_carry_the_session_and_a_fresh_id_each() {
        let direct = Target::from_url("http://127.0.0.1:7000", "").unwrap();
        let req = Prepared::mcp(&direct, "/mcp", "sess-1", mcp::Method::ToolsCall);
        let copy = req.clone();
        let (first, first_id) = req.request();
        let (_, second_id) = copy.request();
        assert_eq!(first_id.map(|(id, _)| id), Some(2));
        assert_eq!(
            second_id.map(|(id, _)| id),
            Some(3),
            "clones share the counter"
        );
        let h = first.headers();
        assert_eq!(h["mcp-session-id"], "sess-1");
        assert_eq!(h["mcp-protocol-version"], mcp::PROTOCOL_VERSION);
        assert_eq!(h[ACCEPT], mcp::ACCEPT);
        assert!(h.get(AUTHORIZATION).is_none(), "no key, no Authorization");
        let via = Target::from_url("http://127.0.0.1:7001", "sk-m").unwrap();
        let init = Prepared::mcp_post(&via, "/mcp/ev", None, mcp::initialize_body(1));
        let (init, id) = init.request();
        assert!(id.is_none());
        assert_eq!(init.headers()[AUTHORIZATION], "Bearer sk-m");
        assert!(init.headers().get("mcp-session-id").is_none());
        assert_eq!(init.uri().path(), "/mcp/ev");
    }

    #[test]
    fn body_checks_reject_errors_and_cut_streams() {
        let completion = br#"{"id":"x","object":"chat.completion","choices":[]}"#;
        assert!(check_body(Expect::Completion, completion).is_ok());
        let error = br#"{"error":{"message":"nope"}}"#;
        assert!(check_body(Expect::Completion, error).is_err());
        let stream = b"data: {\"object\":\"chat.completion.chunk\"}\n\ndata: [DONE]\n\n";
        assert!(check_body(Expect::Stream, stream).is_ok());
        let cut = b"data: {\"object\":\"chat.completion.chunk\"}\n\n";
        assert!(check_body(Expect::Stream, cut).is_err());
        let in_band_error =
            b"data: {\"object\":\"chat.completion.chunk\"}\n\ndata: {\"error\":{}}\n\n";
        assert!(check_body(Expect::Stream, in_band_error).is_err());
    }
}
