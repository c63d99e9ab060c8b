//! DNS-rebinding protection: `Host` must name us, and a browser `Origin` must be one we
//! trust. Loopback names are always allowed; LAN names come from configuration.
//! The server crate runs the same check on every route (its `guard` middleware).

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;

/// A refusal as the MCP endpoint answers one: a JSON-RPC error without an id, so MCP
/// clients show `message` instead of failing to parse the body.
pub fn refusal(status: StatusCode, message: String) -> Response {
    super::streamable::rpc_error(status, super::protocol::SERVER_ERROR, message)
}

/// Whether `host` (a `Host` header value or an origin's host, port included or not) is
/// allowed: loopback with any port, or listed in `allowed` (`"*"` allows everything; an
/// entry with a port must match it, one without matches any port).
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    if allowed.iter().any(|a| a == "*") {
        return true;
    }
    let host = host.trim().to_ascii_lowercase();
    let bare = strip_port(&host);
    if matches!(bare, "localhost" | "127.0.0.1" | "[::1]") {
        return true;
    }
    allowed.iter().any(|a| {
        let a = a.trim().to_ascii_lowercase();
        if strip_port(&a) == a {
            a == bare
        } else {
            a == host
        }
    })
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // IPv6 literal: keep the brackets.
        return rest.find(']').map_or(host, |i| &host[..i + 2]);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("host `{0}` is not allowed")]
    Host(String),
    #[error("origin `{0}` is not allowed")]
    Origin(String),
}

/// Checks `Host` (or the URI authority under HTTP/2) and `Origin`.
pub fn check(
    allowed_hosts: &[String],
    allowed_origins: &[String],
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), GuardError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| uri.authority().map(|a| a.as_str().to_owned()));
    if let Some(host) = &host
        && !host_allowed(allowed_hosts, host)
    {
        return Err(GuardError::Host(host.clone()));
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("").trim();
    if allowed_origins
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
    {
        return Ok(());
    }
    let origin_host = origin
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    let same_origin = host
        .as_deref()
        .is_some_and(|h| !origin_host.is_empty() && h.eq_ignore_ascii_case(origin_host));
    if same_origin || (!origin_host.is_empty() && host_allowed(allowed_hosts, origin_host)) {
        Ok(())
    } else {
        Err(GuardError::Origin(origin.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn loopback_and_configured_hosts() {
        let allowed = hosts(&["litellm.linuxserver.lan", "gw:8080"]);
        for ok in [
            "localhost:4000",
            "127.0.0.1",
            "[::1]:4000",
            "LiteLLM.linuxserver.lan:4000",
            "gw:8080",
        ] {
            assert!(host_allowed(&allowed, ok), "{ok}");
        }
        for bad in [
            "evil.com",
            "gw:9090",
            "127.0.0.2:4000",
            "localhost.evil.com",
        ] {
            assert!(!host_allowed(&allowed, bad), "{bad}");
        }
        assert!(host_allowed(&hosts(&["*"]), "anything:1"));
    }

    #[test]
    fn origins() {
        let uri: Uri = "/mcp".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "localhost:4000".parse().unwrap());
        assert_eq!(check(&[], &[], &uri, &h), Ok(()));
        h.insert(header::ORIGIN, "http://localhost:3000".parse().unwrap());
        assert_eq!(check(&[], &[], &uri, &h), Ok(()));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(matches!(
            check(&[], &[], &uri, &h),
            Err(GuardError::Origin(_))
        ));
        assert_eq!(
            check(&[], &hosts(&["https://evil.example"]), &uri, &h),
            Ok(())
        );
        h.insert(header::HOST, "evil.example".parse().unwrap());
        assert!(matches!(
            check(&[], &[], &uri, &h),
            Err(GuardError::Host(_))
        ));
    }
}
