//! What one request says about the cache, as LiteLLM reads it: the body's `cache` object
//! (`no-cache`, `no-store`, `ttl`, `s-maxage`, `namespace`, `use-cache`) and the
//! `Cache-Control` request header (`no-cache`, `no-store`, `max-age`, `s-maxage`).

use std::time::Duration;

use axum::http::HeaderMap;
use serde_json::{Map, Value};

use crate::error::ApiError;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controls {
    /// Do not answer from the cache (the answer may still be stored).
    pub no_cache: bool,
    /// Do not store this answer.
    pub no_store: bool,
    /// How long to keep this answer.
    pub ttl: Option<Duration>,
    /// Accept a cached answer only if it is at most this old.
    pub max_age: Option<Duration>,
    pub namespace: Option<String>,
    /// `use-cache: true`: opts in when the cache is `mode: default_off`.
    pub opt_in: bool,
}

const NAMESPACE_MAX: usize = 128;

/// Removes the body's `cache` object (it is LiteLLM's, never an upstream parameter) and
/// reads it with the `Cache-Control` header. A malformed `cache` is the client's error.
pub fn read(body: &mut Map<String, Value>, headers: &HeaderMap) -> Result<Controls, ApiError> {
    let mut c = Controls::default();
    for value in headers.get_all(axum::http::header::CACHE_CONTROL) {
        let Ok(text) = value.to_str() else { continue };
        for directive in text.split(',').map(str::trim) {
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            match name.to_ascii_lowercase().as_str() {
                "no-cache" => c.no_cache = true,
                "no-store" => c.no_store = true,
                "max-age" | "s-maxage" => {
                    if let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok()) {
                        c.max_age = Some(Duration::from_secs(secs));
                    }
                }
                _ => {}
            }
        }
    }
    let Some(cache) = body.remove("cache") else {
        return Ok(c);
    };
    let Value::Object(cache) = cache else {
        return Err(invalid(
            "'cache' must be an object such as {\"no-cache\": true}",
        ));
    };
    for (name, value) in &cache {
        match name.as_str() {
            "no-cache" => c.no_cache |= flag(name, value)?,
            "no-store" => c.no_store |= flag(name, value)?,
            "use-cache" => c.opt_in = flag(name, value)?,
            "ttl" => c.ttl = Some(seconds(name, value)?),
            "s-maxage" => c.max_age = Some(seconds(name, value)?),
            "namespace" => match value {
                Value::String(ns) if !ns.is_empty() && ns.len() <= NAMESPACE_MAX => {
                    c.namespace = Some(ns.clone());
                }
                _ => {
                    return Err(invalid(&format!(
                        "'cache.namespace' must be a non-empty string of at most {NAMESPACE_MAX} bytes"
                    )));
                }
            },
            // LiteLLM's other per-request cache keys change nothing here.
            _ => {}
        }
    }
    Ok(c)
}

fn flag(name: &str, value: &Value) -> Result<bool, ApiError> {
    value
        .as_bool()
        .ok_or_else(|| invalid(&format!("'cache.{name}' must be true or false")))
}

fn seconds(name: &str, value: &Value) -> Result<Duration, ApiError> {
    match value.as_f64() {
        Some(s) if s >= 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s.min(1e9))),
        _ => Err(invalid(&format!(
            "'cache.{name}' must be a non-negative number of seconds"
        ))),
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::InvalidParam {
        message: message.to_owned(),
        param: "cache",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn body_controls_are_read_and_removed() {
        let mut b = body(json!({"model": "m", "cache": {"no-cache": true, "ttl": 5,
            "s-maxage": 2, "namespace": "team-a", "use-cache": true}}));
        let c = read(&mut b, &HeaderMap::new()).unwrap();
        assert!(!b.contains_key("cache"));
        assert!(c.no_cache && !c.no_store && c.opt_in);
        assert_eq!(c.ttl, Some(Duration::from_secs(5)));
        assert_eq!(c.max_age, Some(Duration::from_secs(2)));
        assert_eq!(c.namespace.as_deref(), Some("team-a"));
    }

    #[test]
    fn header_directives_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert("cache-control", "No-Store, max-age=30".parse().unwrap());
        let c = read(&mut Map::new(), &headers).unwrap();
        assert!(c.no_store && !c.no_cache);
        assert_eq!(c.max_age, Some(Duration::from_secs(30)));
    }

    #[test]
    fn malformed_controls_are_refused_with_the_param() {
        for bad in [
            json!({"cache": true}),
            json!({"cache": {"ttl": "soon"}}),
            json!({"cache": {"ttl": -1}}),
            json!({"cache": {"no-store": "yes"}}),
            json!({"cache": {"namespace": ""}}),
        ] {
            let err = read(&mut body(bad.clone()), &HeaderMap::new()).unwrap_err();
            assert!(
                matches!(err, ApiError::InvalidParam { param: "cache", .. }),
                "{bad}"
            );
        }
    }
}
