//! The running config as the UI shows it: every secret replaced. A value is secret when
//! its field name says so (key, secret, password, token, authorization, credential), when
//! it sits in a `headers` or `env` map (stdio servers' env and upstream headers carry
//! tokens), or when it is a URL's user-info or a credential-looking query parameter.

use serde_json::{Map, Value};

pub const REDACTED: &str = "••• redacted";

/// Words of a field name (split on `_` and `-`) that make its value a secret.
const SECRET_WORDS: &[&str] = &[
    "key",
    "apikey",
    "secret",
    "password",
    "passwd",
    "token",
    "authorization",
    "credential",
    "credentials",
];
/// Names that contain a secret word but are not secrets.
const NOT_SECRET: &[&str] = &["key_alias", "env_key", "api_key_env", "key_name"];
const SECRET_MAPS: &[&str] = &["headers", "env", "extra_headers"];

fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    // Prices and limits: `input_cost_per_token`, `max_tokens`.
    if NOT_SECRET.contains(&n.as_str()) || n.contains("per_token") {
        return false;
    }
    n.split(['_', '-']).any(|w| SECRET_WORDS.contains(&w))
}

pub fn redact(value: &Value) -> Value {
    walk(value, false)
}

fn walk(value: &Value, secret: bool) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let inner = secret || SECRET_MAPS.contains(&k.to_ascii_lowercase().as_str());
                let scalar = !v.is_object() && !v.is_array();
                let v = if scalar && ((secret_name(k) && !v.is_null()) || inner) {
                    Value::String(REDACTED.into())
                } else {
                    walk(v, inner)
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| walk(v, secret)).collect()),
        Value::String(_) if secret => Value::String(REDACTED.into()),
        Value::String(s) => Value::String(redact_url(s)),
        other => other.clone(),
    }
}

/// `scheme://user:pass@host/...?key=...` → `scheme://***@host/...?key=***`.
pub fn redact_url(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_string();
    };
    let rest = &s[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if secret_name(k) || k.eq_ignore_ascii_case("sig") => {
                        format!("{k}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{}://{authority}{tail}", &s[..scheme_end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_replaced_and_the_rest_kept() {
        let config = json!({
            "model_list": [{"model_name": "gpt", "litellm_params": {
                "model": "openai/gpt-4o", "api_key": "sk-live-123",
                "api_base": "https://user:pw@example.com/v1?api-key=abc&x=1"}}],
            "general_settings": {"master_key": "sk-master", "database_url": "postgres://u:p@db/gh"},
            "mcp_servers": {"fs": {"command": "npx", "env": {"GITHUB_PAT": "ghp_x"},
                                   "headers": {"X-Custom": "v"}}},
            "virtual_keys": [{"key": "sk-v", "key_alias": "team-a"}],
            "router_settings": {"redis_password": "hunter2", "num_retries": 2},
            "model_info": {"input_cost_per_token": 0.5, "max_tokens": 100,
                           "aws_secret_access_key": "AKIA-secret", "x-api-key": "hdr-secret"},
        });
        let out = redact(&config).to_string();
        for secret in [
            "sk-live-123",
            "sk-master",
            "ghp_x",
            "sk-v",
            "hunter2",
            ":pw@",
            "u:p@",
            "abc",
            "\"v\"",
            "AKIA-secret",
            "hdr-secret",
        ] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        for kept in [
            "openai/gpt-4o",
            "team-a",
            "example.com/v1",
            "x=1",
            "npx",
            "\"num_retries\":2",
            "\"input_cost_per_token\":0.5",
            "\"max_tokens\":100",
        ] {
            assert!(out.contains(kept), "{kept} lost: {out}");
        }
    }
}
