//! Who is calling: the key on the request, checked against the master key and the
//! virtual keys, becomes a [`Caller`] request extension for every later layer.
//!
//! Keys are never compared as plain strings: the presented key is hashed (SHA-256 hex,
//! LiteLLM's scheme) and the master key is compared in constant time. Virtual keys are
//! found by their hash, so no stored secret is ever compared byte by byte.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use gatehouse_mcp::McpCaller;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// A virtual key as the store keeps it (the store's record: models, MCP servers,
/// limits, budget, expiry).
pub use gatehouse_store::KeyRecord as KeyInfo;

/// Finds a virtual key by the SHA-256 hex of the presented secret. Must answer from
/// memory: it runs on every request.
pub trait KeyResolver: Send + Sync {
    fn lookup(&self, key_hash: &str) -> Option<Arc<KeyInfo>>;
}

/// The store's in-memory cache is the resolver in production: loaded at start-up,
/// updated at once by the admin API, refreshed from the database every few seconds.
impl KeyResolver for gatehouse_store::KeyCache {
    fn lookup(&self, key_hash: &str) -> Option<Arc<KeyInfo>> {
        gatehouse_store::KeyCache::lookup(self, key_hash)
    }
}

/// SHA-256 hex of a key: how keys are stored and matched (LiteLLM's hash).
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// How requests are authenticated.
pub enum Auth {
    /// No master key and no keys anywhere: auth is off and the server binds loopback only.
    Local,
    Keys {
        master_key_hash: Option<[u8; 32]>,
        resolver: Arc<dyn KeyResolver>,
    },
}

impl Auth {
    pub fn new(master_key: Option<&str>, resolver: Arc<dyn KeyResolver>, any_keys: bool) -> Self {
        match master_key.filter(|k| !k.is_empty()) {
            None if !any_keys => Self::Local,
            master => Self::Keys {
                master_key_hash: master.map(|k| Sha256::digest(k.as_bytes()).into()),
                resolver,
            },
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Self::Local)
    }

    /// Authenticates the key in `headers`.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let (master_key_hash, resolver) = match self {
            Self::Local => return Ok(Caller::local()),
            Self::Keys {
                master_key_hash,
                resolver,
            } => (master_key_hash, resolver),
        };
        let presented = presented_key(headers)?.ok_or_else(|| {
            ApiError::Unauthorized(
                "no API key: send it as 'Authorization: Bearer <key>' (or x-api-key)".into(),
            )
        })?;
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if let Some(master) = master_key_hash
            && bool::from(master.ct_eq(&digest))
        {
            return Ok(Caller::admin());
        }
        let key_hash = hex::encode(digest);
        let info = resolver
            .lookup(&key_hash)
            .ok_or_else(|| ApiError::Unauthorized("invalid API key".into()))?;
        if info.blocked {
            return Err(ApiError::Unauthorized("this API key is blocked".into()));
        }
        if info.is_expired(chrono::Utc::now()) {
            return Err(ApiError::Unauthorized("this API key has expired".into()));
        }
        if info.over_budget() {
            return Err(ApiError::BudgetExceeded(format!(
                "Budget has been exceeded! Current cost: {}, Max budget: {}",
                info.spend,
                info.max_budget.unwrap_or_default()
            )));
        }
        Ok(Caller {
            key_id: info
                .key_alias
                .clone()
                .unwrap_or_else(|| format!("key-{}", &key_hash[..12])),
            is_admin: false,
            key: Some(info),
        })
    }
}

/// The key sent with a request: `Authorization: Bearer`, `x-api-key` (Anthropic
/// clients), `api-key` (Azure clients) or `x-litellm-api-key`. An `Authorization` value
/// without the Bearer scheme (`Authorization: sk-...`, `Basic ...`) is refused rather
/// than guessed at, as LiteLLM does.
fn presented_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    if let Some(value) = headers.get("authorization") {
        let value = value.to_str().unwrap_or("").trim();
        let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthorized(
                "the Authorization header must use the Bearer scheme: send \
                 'Authorization: Bearer <key>' (or the key alone in x-api-key)"
                    .into(),
            ));
        }
        let key = rest.trim();
        if !key.is_empty() {
            return Ok(Some(key));
        }
    }
    Ok(["x-api-key", "api-key", "x-litellm-api-key"]
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|k| !k.is_empty()))
}

/// The authenticated caller, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Non-secret name for logs: the alias, `master`, `local`, or a hash prefix.
    pub key_id: String,
    pub is_admin: bool,
    pub key: Option<Arc<KeyInfo>>,
}

impl Caller {
    fn local() -> Self {
        Self {
            key_id: "local".into(),
            is_admin: true,
            key: None,
        }
    }

    fn admin() -> Self {
        Self {
            key_id: "master".into(),
            is_admin: true,
            key: None,
        }
    }

    /// May this caller use the public model `name` (in `access_groups`)?
    pub fn may_use_model(&self, name: &str, access_groups: &[String]) -> bool {
        let Some(key) = &self.key else { return true };
        key.models.is_empty()
            || key.models.iter().any(|m| {
                m == name || m == "*" || m == "all-proxy-models" || access_groups.contains(m)
            })
    }

    /// The MCP catalog mode this key asked for (`metadata: {"mcp_catalog": "lazy"}`), for
    /// every MCP endpoint it uses and its chat tool loops.
    pub fn catalog_mode(&self) -> Option<gatehouse_mcp::CatalogMode> {
        self.key
            .as_ref()?
            .metadata
            .get("mcp_catalog")
            .and_then(serde_json::Value::as_str)
            .and_then(gatehouse_mcp::CatalogMode::parse)
    }

    /// Who owns what this caller leaves behind (pending tool turns, stored responses): the
    /// key's hash, never its alias (aliases are not unique); the master key and local
    /// mode share one owner.
    pub fn owner(&self) -> &str {
        match &self.key {
            Some(key) => &key.token_hash,
            None => &self.key_id,
        }
    }

    /// The view of this caller the MCP hub needs.
    pub fn mcp(&self) -> McpCaller {
        McpCaller {
            key_id: self.key_id.clone(),
            key_hash: self.key.as_ref().map(|k| k.token_hash.clone()),
            allowed_servers: self.key.as_ref().and_then(|k| k.mcp_servers.clone()),
            is_admin: self.is_admin,
        }
    }
}

/// Paths that answer without a key: liveness probes only.
fn is_public(path: &str) -> bool {
    matches!(path, "/health/liveliness" | "/health/liveness")
}

/// Middleware: authenticate, then leave [`Caller`] and [`McpCaller`] for the handlers.
pub async fn require_key(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    if is_public(req.uri().path()) {
        return next.run(req).await;
    }
    match state.auth.authenticate(req.headers()) {
        Ok(caller) => {
            req.extensions_mut().insert(caller.mcp());
            // A key may ask for the lazy MCP catalog for every endpoint it uses
            // (`metadata: {"mcp_catalog": "lazy"}`); `?catalog=` on the URL still wins.
            if let Some(mode) = caller.catalog_mode() {
                req.extensions_mut().insert(mode);
            }
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(err) => {
            // Anthropic clients (Claude Code, the SDKs) parse only Anthropic error bodies.
            let mut response = if req.uri().path().starts_with("/v1/messages") {
                crate::dialects::errors::anthropic_response(&err)
            } else {
                err.into_response()
            };
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    fn key(pairs: &[(&'static str, &str)]) -> Option<String> {
        presented_key(&headers(pairs)).unwrap().map(str::to_owned)
    }

    #[test]
    fn key_sources() {
        assert_eq!(
            key(&[("authorization", "Bearer sk-1")]).as_deref(),
            Some("sk-1")
        );
        assert_eq!(
            key(&[("authorization", "bearer  sk-2 ")]).as_deref(),
            Some("sk-2")
        );
        assert_eq!(key(&[("x-api-key", "sk-3")]).as_deref(), Some("sk-3"));
        assert_eq!(key(&[("api-key", "sk-4")]).as_deref(), Some("sk-4"));
        assert_eq!(
            key(&[("x-litellm-api-key", "sk-5")]).as_deref(),
            Some("sk-5")
        );
        assert_eq!(key(&[("authorization", "Bearer ")]), None);
    }

    #[test]
    fn authorization_without_bearer_scheme_is_refused_with_advice() {
        for value in ["sk-1", "Basic dXNlcjpwYXNz", "Bearersk-1", "Token sk-1"] {
            let err = presented_key(&headers(&[("authorization", value)])).unwrap_err();
            assert!(
                matches!(&err, ApiError::Unauthorized(m) if m.contains("Bearer <key>")),
                "{value}: {err}"
            );
        }
        // Even next to a valid x-api-key: the client is misconfigured, say so.
        assert!(
            presented_key(&headers(&[
                ("authorization", "sk-1"),
                ("x-api-key", "sk-1")
            ]))
            .is_err()
        );
    }

    struct Keys(std::collections::HashMap<String, Arc<KeyInfo>>);

    impl KeyResolver for Keys {
        fn lookup(&self, key_hash: &str) -> Option<Arc<KeyInfo>> {
            self.0.get(key_hash).cloned()
        }
    }

    #[test]
    fn master_and_virtual_keys() {
        let now = chrono::Utc::now();
        let mut record = KeyInfo::new("sk-virtual", gatehouse_store::KeySource::Config, now);
        record.key_alias = Some("test".into());
        record.models = vec!["gpt".into()];
        let mut over = KeyInfo::new("sk-over", gatehouse_store::KeySource::Api, now);
        over.max_budget = Some(1.0);
        over.spend = 2.0;
        let keys = Keys(
            [
                (hash_key("sk-virtual"), Arc::new(record)),
                (hash_key("sk-over"), Arc::new(over)),
            ]
            .into_iter()
            .collect(),
        );
        let auth = Auth::new(Some("sk-master"), Arc::new(keys), true);
        let admin = auth
            .authenticate(&headers(&[("authorization", "Bearer sk-master")]))
            .unwrap();
        assert!(admin.is_admin);
        let v = auth
            .authenticate(&headers(&[("x-api-key", "sk-virtual")]))
            .unwrap();
        assert_eq!(v.key_id, "test");
        assert!(v.may_use_model("gpt", &[]));
        assert!(!v.may_use_model("claude", &[]));
        assert!(
            auth.authenticate(&headers(&[("authorization", "Bearer nope")]))
                .is_err()
        );
        assert!(auth.authenticate(&HeaderMap::new()).is_err());
        assert!(matches!(
            auth.authenticate(&headers(&[("authorization", "Bearer sk-over")])),
            Err(ApiError::BudgetExceeded(_))
        ));
    }
}
