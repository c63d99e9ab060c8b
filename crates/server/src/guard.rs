//! Browser defences for every route, ahead of auth.
//!
//! A gateway without keys (local mode) is reachable by every web page the user opens:
//! the browser cannot read a cross-site answer, but it sends the request, and a request
//! is enough to run a tool with side effects. Two checks close that:
//! - **Host/Origin** (DNS rebinding, cross-site): `Host` must name us and a browser
//!   `Origin` must be trusted — the MCP endpoint's own check
//!   ([`gatehouse_mcp::downstream::guard::check`]), here run on every route.
//! - **JSON only** (local mode): a body whose `Content-Type` is not JSON is refused with
//!   415. A page can send `text/plain`, form or multipart bodies cross-site without a
//!   CORS preflight; it cannot send `application/json` without one, and the preflight
//!   is answered only for `allowed_origins`.
//!
//! With keys on, a rebinding or cross-site page cannot present a key, so any `Host` is
//! accepted unless the operator lists `allowed_hosts`, and bodies are not sniffed.

use std::sync::Arc;

use axum::body::HttpBody;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gatehouse_llm::ErrorKind;
use gatehouse_mcp::downstream::guard;

use crate::error::ApiError;

/// What the guard enforces; built once from the state.
#[derive(Debug, Clone)]
pub struct Guard {
    /// `Host` names accepted besides loopback (`"*"`: any).
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted besides loopback, same-origin and `allowed_hosts`.
    pub allowed_origins: Vec<String>,
    /// Refuse non-JSON bodies (local mode).
    pub json_only: bool,
}

impl Guard {
    /// The policy for a server with (`local == false`) or without keys.
    pub fn new(local: bool, allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let allowed_hosts = if allowed_hosts.is_empty() && !local {
            vec!["*".to_owned()]
        } else {
            allowed_hosts.to_vec()
        };
        Self {
            allowed_hosts,
            allowed_origins: allowed_origins.to_vec(),
            json_only: local,
        }
    }

    fn check(&self, req: &Request) -> Result<(), Refusal> {
        guard::check(
            &self.allowed_hosts,
            &self.allowed_origins,
            req.uri(),
            req.headers(),
        )
        .map_err(|e| Refusal::Forbidden(e.to_string()))?;
        let ui_form = req.uri().path() == "/ui" || req.uri().path().starts_with("/ui/");
        if self.json_only && carries_body(req) && !ui_form && !is_json(req.headers()) {
            return Err(Refusal::NotJson(content_type(req.headers())));
        }
        Ok(())
    }
}

/// Why the guard refused a request.
#[derive(Debug)]
enum Refusal {
    Forbidden(String),
    /// The `Content-Type` sent (empty when none).
    NotJson(String),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotJson(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    fn message(&self) -> String {
        match self {
            Self::Forbidden(why) => format!(
                "{why}: this gateway answers loopback names and general_settings.allowed_hosts \
                 / allowed_origins only"
            ),
            Self::NotJson(sent) if sent.is_empty() => {
                "request body without a Content-Type: send 'Content-Type: application/json'".into()
            }
            Self::NotJson(sent) => format!(
                "Content-Type `{sent}` is not accepted: send the body as 'Content-Type: \
                 application/json'"
            ),
        }
    }

    /// The refusal in the dialect of the route: MCP clients parse JSON-RPC errors,
    /// Anthropic clients Anthropic errors, everyone else OpenAI's.
    fn into_response(self, path: &str) -> Response {
        let status = self.status();
        let message = self.message();
        if is_mcp_path(path) {
            return guard::refusal(status, message);
        }
        if path.starts_with("/v1/messages") {
            let kind = match self {
                Self::Forbidden(_) => ErrorKind::PermissionDenied,
                Self::NotJson(_) => ErrorKind::InvalidRequest,
            };
            let body = gatehouse_llm::messages_in::error_body(kind, &message);
            return (status, axum::Json(body)).into_response();
        }
        match self {
            Self::Forbidden(_) => ApiError::Forbidden(message),
            Self::NotJson(_) => ApiError::UnsupportedMediaType(message),
        }
        .into_response()
    }
}

/// The MCP endpoint's JSON-RPC routes (`/v1/mcp/*` is REST and answers OpenAI errors).
fn is_mcp_path(path: &str) -> bool {
    path == "/mcp" || path.starts_with("/mcp/")
}

/// Whether the request has a body to read. An empty POST (`/key/delete` without
/// arguments is refused later anyway) carries nothing a page could smuggle.
fn carries_body(req: &Request) -> bool {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let body = req.body();
    !(body.is_end_stream() || body.size_hint().exact() == Some(0))
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(100)
                .collect()
        })
        .unwrap_or_default()
}

/// `application/json` or any `application/*+json`, parameters (charset) ignored.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json"
        || mime
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// Middleware: refuse what [`Guard`] refuses, before anything else reads the request.
pub async fn browser_guard(State(g): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    match g.check(&req) {
        Ok(()) => next.run(req).await,
        Err(refusal) => {
            tracing::warn!(
                path = req.uri().path(),
                reason = %refusal.message(),
                "request refused by the browser guard"
            );
            let mut response = refusal.into_response(req.uri().path());
            // Caches and browsers must not reuse a refusal for another Origin.
            response
                .headers_mut()
                .insert(header::VARY, HeaderValue::from_static("origin"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn req(method: Method, headers: &[(&str, &str)], body: &'static str) -> Request {
        let mut b = Request::builder()
            .method(method)
            .uri("/v1/chat/completions");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::from(body)).unwrap()
    }

    #[test]
    fn local_mode_refuses_foreign_hosts_origins_and_non_json() {
        let g = Guard::new(true, &[], &[]);
        let host = ("host", "127.0.0.1:4000");
        let json = ("content-type", "application/json; charset=utf-8");
        assert!(g.check(&req(Method::POST, &[host, json], "{}")).is_ok());
        assert!(
            g.check(&req(
                Method::POST,
                &[host, ("content-type", "application/vnd.x+json")],
                "{}"
            ))
            .is_ok()
        );
        // Empty bodies and GETs carry nothing to refuse.
        assert!(g.check(&req(Method::POST, &[host], "")).is_ok());
        assert!(g.check(&req(Method::GET, &[host], "")).is_ok());
        for ct in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            assert!(matches!(
                g.check(&req(Method::POST, &[host, ("content-type", ct)], "{}")),
                Err(Refusal::NotJson(_))
            ));
        }
        assert!(matches!(
            g.check(&req(Method::POST, &[host], "{}")),
            Err(Refusal::NotJson(s)) if s.is_empty()
        ));
        assert!(matches!(
            g.check(&req(
                Method::POST,
                &[("host", "rebind.evil.com:4000"), json],
                "{}"
            )),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            g.check(&req(
                Method::GET,
                &[host, ("origin", "https://evil.example")],
                ""
            )),
            Err(Refusal::Forbidden(_))
        ));
    }

    #[test]
    fn with_keys_any_host_and_any_body() {
        let g = Guard::new(false, &[], &[]);
        let r = req(
            Method::POST,
            &[("host", "gw.lan"), ("content-type", "text/plain")],
            "{}",
        );
        assert!(g.check(&r).is_ok());
        // Listing hosts turns the Host check on again.
        let g = Guard::new(false, &["gw.lan".to_owned()], &[]);
        assert!(g.check(&r).is_ok());
        let other = req(Method::GET, &[("host", "other.lan")], "");
        assert!(matches!(g.check(&other), Err(Refusal::Forbidden(_))));
    }
}
