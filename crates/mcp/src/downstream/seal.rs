//! Sealed session ids: a handshake-era `Mcp-Session-Id` that carries what any replica
//! needs to continue the session — its route, scope, catalog mode, protocol revision and
//! client capabilities — authenticated with HMAC-SHA256 so it cannot be forged or altered.
//!
//! `gh1.<base64url(json)>.<base64url(mac)>`. The key comes from `mcp_settings.session_secret`
//! (by default the master key), so replicas sharing a config share it; without one a
//! random key makes ids valid on this process only. The owner is sealed as a keyed digest
//! of the key's hash, not the hash itself. A sealed id is honoured for [`MAX_AGE`] after
//! it was minted. Upstream session ids are not sealed: the hub keeps one shared upstream
//! session per server per replica and re-initialises it when an upstream forgets it, so a
//! resumed downstream session needs none of the first replica's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::scope::Scope;

type HmacSha256 = Hmac<Sha256>;

const PREFIX: &str = "gh1.";
/// How long a sealed id may be resumed on another replica (or after a restart).
pub const MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// Ids longer than this are not even parsed (bounded work on hostile input).
const MAX_ID_LEN: usize = 8 * 1024;

/// The sealing secret; never printed.
#[derive(Clone)]
pub struct SessionSecret(pub String);

impl std::fmt::Debug for SessionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionSecret(***)")
    }
}

/// What a sealed id carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sealed {
    /// Keyed digest of the owner ([`crate::McpCaller::owner`]).
    pub owner: String,
    pub route: String,
    pub scope: Scope,
    pub version: String,
    pub capabilities: Value,
    /// Unix seconds when minted.
    pub minted: u64,
    /// Makes every id unique.
    pub nonce: String,
}

pub struct Sealer {
    /// One SHA-256 block: HMAC uses a key of this size as is.
    key: [u8; 64],
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Sealer {
    /// `secret`: the configured secret (or master key); `None` picks a random key.
    pub fn new(secret: Option<&str>) -> Self {
        let material = secret.map_or_else(
            || {
                format!(
                    "{}{}",
                    uuid::Uuid::new_v4().simple(),
                    uuid::Uuid::new_v4().simple()
                )
            },
            str::to_owned,
        );
        let half = |label: &[u8]| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update(b"gatehouse mcp session seal v1\0");
            h.update(label);
            h.update(material.as_bytes());
            h.finalize().into()
        };
        let mut key = [0u8; 64];
        key[..32].copy_from_slice(&half(b"a"));
        key[32..].copy_from_slice(&half(b"b"));
        Self { key }
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as KeyInit>::new(&self.key.into())
    }

    /// The sealed form of an owner: equal owners, equal tags; the key hash is not revealed.
    pub fn owner_tag(&self, owner: &str) -> String {
        let mut m = self.mac();
        m.update(b"owner\0");
        m.update(owner.as_bytes());
        hex::encode(&m.finalize().into_bytes()[..16])
    }

    /// A new sealed id for a session of `owner`.
    pub fn seal(
        &self,
        owner: &str,
        route: &str,
        scope: &Scope,
        version: &str,
        capabilities: &Value,
    ) -> String {
        let sealed = Sealed {
            owner: self.owner_tag(owner),
            route: route.to_owned(),
            scope: scope.clone(),
            version: version.to_owned(),
            capabilities: capabilities.clone(),
            minted: now(),
            nonce: uuid::Uuid::new_v4().simple().to_string(),
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&sealed).unwrap_or_default());
        let mut m = self.mac();
        m.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
        format!("{PREFIX}{body}.{tag}")
    }

    /// The contents of an authentic, unexpired id minted with this key.
    pub fn open(&self, id: &str) -> Option<Sealed> {
        if id.len() > MAX_ID_LEN {
            return None;
        }
        let (body, tag) = id.strip_prefix(PREFIX)?.split_once('.')?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        let mut m = self.mac();
        m.update(body.as_bytes());
        // Constant-time comparison.
        m.verify_slice(&tag).ok()?;
        let sealed: Sealed = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).ok()?).ok()?;
        (now().saturating_sub(sealed.minted) <= MAX_AGE.as_secs()).then_some(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::downstream::scope::ScopedServer;
    use serde_json::json;

    fn scope() -> Scope {
        Scope {
            servers: vec![ScopedServer {
                name: "files".into(),
                prefix: "fs".into(),
                tools: Some(vec!["read".into()]),
            }],
            single: false,
            lazy: true,
        }
    }

    #[test]
    fn seals_round_trip_and_refuse_forgery() {
        let a = Sealer::new(Some("sk-master"));
        let id = a.seal(
            "hash-1",
            "",
            &scope(),
            "2025-11-25",
            &json!({"sampling": {}}),
        );
        let s = a.open(&id).unwrap();
        assert_eq!(s.scope, scope());
        assert_eq!(s.owner, a.owner_tag("hash-1"));
        assert_ne!(s.owner, a.owner_tag("hash-2"));
        assert!(!id.contains("hash-1"), "the key hash is not revealed");
        // Another replica with the same secret opens it; another secret does not.
        assert!(Sealer::new(Some("sk-master")).open(&id).is_some());
        assert!(Sealer::new(Some("other")).open(&id).is_none());
        assert!(Sealer::new(None).open(&id).is_none());
        // Any change to the body breaks the MAC.
        let (body, tag) = id.strip_prefix(PREFIX).unwrap().split_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(body).unwrap();
        let text = String::from_utf8(bytes.clone())
            .unwrap()
            .replace("\"lazy\":true", "\"lazy\":false");
        bytes = text.into_bytes();
        let forged = format!("{PREFIX}{}.{tag}", URL_SAFE_NO_PAD.encode(bytes));
        assert!(a.open(&forged).is_none());
        assert!(a.open("gh1.garbage").is_none());
        assert!(a.open(&"x".repeat(20_000)).is_none());
    }
}
