//! Per-server client headers: a client sends `x-mcp-<server>-<header>` and only calls
//! routed to `<server>` carry `<header>` upstream, so a credential meant for one MCP
//! server never reaches another.
//!
//! Server names (and aliases) are `[a-zA-Z0-9_]`, never `-`, so the first `-` after
//! `x-mcp-` ends the server part unambiguously.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Prefix of every per-server client header.
pub const PREFIX: &str = "x-mcp-";

/// Headers a client may not set on an upstream request: they belong to the gateway's
/// own session with the server or to the HTTP framing.
const RESERVED: &[&str] = &[
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "accept",
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "host",
    "proxy-authorization",
    "proxy-connection",
];

/// Whether a client may set `name` (lowercase) on an upstream request.
pub fn is_forwardable(name: &str) -> bool {
    !name.is_empty() && !RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name))
}

/// The headers of `headers` meant for `server` (its configured name or `alias`), with
/// the `x-mcp-<server>-` prefix stripped: `x-mcp-db_main-authorization: Bearer x` →
/// `("authorization", "Bearer x")`. Matching is case-insensitive; headers whose value is
/// not visible ASCII, and reserved ones (`mcp-session-id`, `host`, `content-type`, ...),
/// are left out.
pub fn client_headers_for(
    server: &str,
    alias: Option<&str>,
    headers: &HeaderMap,
) -> Vec<(String, String)> {
    let labels: Vec<&str> = std::iter::once(server).chain(alias).collect();
    pick(&labels, headers)
}

/// As [`client_headers_for`] with any number of labels (name plus every alias).
pub(crate) fn pick(labels: &[&str], headers: &HeaderMap) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        // `HeaderName`s are lowercase already.
        let Some(rest) = name.as_str().strip_prefix(PREFIX) else {
            continue;
        };
        let Some((label, header)) = rest.split_once('-') else {
            continue;
        };
        if !labels.iter().any(|l| l.eq_ignore_ascii_case(label)) || !is_forwardable(header) {
            continue;
        }
        let Ok(value) = value.to_str() else { continue };
        out.push((header.to_string(), value.to_string()));
    }
    out
}

/// Only the `x-mcp-*` headers of a request: what per-server selection needs later,
/// without keeping the gateway's own credentials and cookies around.
pub fn prefixed_only(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        if name.as_str().starts_with(PREFIX) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Builds the header map for one upstream request; reserved names are dropped.
pub(crate) fn to_header_map(pairs: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::try_from(k.as_str())
            .map_err(|_| format!("invalid client header name `{k}`"))?;
        if !is_forwardable(name.as_str()) {
            continue;
        }
        let value = HeaderValue::try_from(v.as_str())
            .map_err(|_| format!("invalid value for client header `{k}`"))?;
        // A repeated name replaces the earlier value: one credential per header.
        map.insert(name, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                HeaderName::try_from(*k).unwrap(),
                HeaderValue::try_from(*v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn picks_only_the_servers_own_headers() {
        let h = map(&[
            ("X-MCP-db_main-Authorization", "Bearer a"),
            ("x-mcp-db-authorization", "Bearer b"),
            ("x-mcp-db_main-x-tenant", "t1"),
            ("x-mcp-servers", "db_main,db"),
            ("authorization", "Bearer gateway"),
        ]);
        assert_eq!(
            client_headers_for("db_main", None, &h),
            vec![
                ("authorization".to_string(), "Bearer a".to_string()),
                ("x-tenant".to_string(), "t1".to_string()),
            ]
        );
        assert_eq!(
            client_headers_for("db", None, &h),
            vec![("authorization".to_string(), "Bearer b".to_string())]
        );
        assert!(client_headers_for("other", None, &h).is_empty());
    }

    #[test]
    fn alias_and_case_match() {
        let h = map(&[("x-mcp-GH-authorization", "token z")]);
        assert_eq!(
            client_headers_for("github_prod", Some("gh"), &h),
            vec![("authorization".to_string(), "token z".to_string())]
        );
        assert!(client_headers_for("github_prod", None, &h).is_empty());
    }

    #[test]
    fn reserved_headers_are_not_forwarded() {
        let h = map(&[
            ("x-mcp-a-mcp-session-id", "stolen"),
            ("x-mcp-a-host", "evil"),
            ("x-mcp-a-content-type", "text/plain"),
            ("x-mcp-a-", "empty name"),
        ]);
        assert!(client_headers_for("a", None, &h).is_empty());
        let m = to_header_map(&[
            ("mcp-session-id".into(), "x".into()),
            ("authorization".into(), "y".into()),
        ])
        .unwrap();
        assert_eq!(m.len(), 1);
        assert!(to_header_map(&[("bad name".into(), "x".into())]).is_err());
    }

    #[test]
    fn prefixed_only_drops_the_rest() {
        let h = map(&[
            ("authorization", "Bearer gw"),
            ("x-mcp-a-authorization", "k"),
        ]);
        let kept = prefixed_only(&h);
        assert_eq!(kept.len(), 1);
        assert!(kept.contains_key("x-mcp-a-authorization"));
    }
}
