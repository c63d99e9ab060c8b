//! Who is signed in to the UI: a sealed session token in an HttpOnly, SameSite=Strict
//! cookie. The token carries its expiry and a nonce, authenticated with HMAC-SHA256 under
//! a key derived from the sign-in secrets (the master key, `UI_USERNAME`/`UI_PASSWORD`),
//! so any replica sharing the config — and this one after a config reload or a restart —
//! accepts it, with no session table to share; changing the master key or the UI
//! password ends every session. The CSRF token is derived from the nonce the same way.
//!
//! Sign-in takes the master key (as the password, any user name), or
//! `UI_USERNAME`/`UI_PASSWORD` when both are set in the environment (LiteLLM's
//! variables). Signing out clears the cookie and revokes the token on this replica
//! (a bounded list until it expires); a copy of the cookie taken before sign-out stays
//! valid on the other replicas until it expires (12 hours).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::state::AppState;

pub const COOKIE: &str = "gatehouse_ui";
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Signed-out tokens remembered at most (each until its expiry).
const MAX_REVOKED: usize = 4096;
/// Tokens longer than this are not even looked at (bounded work on hostile input).
const MAX_TOKEN_LEN: usize = 256;
const VERSION: &str = "s1";

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub struct Session {
    pub csrf: String,
}

pub struct Sessions {
    key: [u8; 32],
    /// Nonce → expiry (unix seconds) of tokens signed out here.
    revoked: Mutex<HashMap<String, u64>>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Sessions {
    /// Sessions sealed under a key derived from `secrets` (empty secrets: a random key,
    /// valid in this process only).
    pub fn new(secrets: &[&str]) -> Self {
        let key = if secrets.iter().all(|s| s.is_empty()) {
            rand::random()
        } else {
            let mut hash = Sha256::new();
            hash.update(b"gatehouse ui session v1");
            for secret in secrets {
                // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
                hash.update((secret.len() as u64).to_be_bytes());
                hash.update(secret.as_bytes());
            }
            hash.finalize().into()
        };
        Self {
            key,
            revoked: Mutex::new(HashMap::new()),
        }
    }

    fn mac(&self, parts: &[&str]) -> String {
        // HMAC accepts keys of any length: this cannot fail.
        let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(&self.key) else {
            return String::new();
        };
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(b".");
        }
        hex::encode(mac.finalize().into_bytes())
    }

    /// Starts a session; returns its cookie token.
    pub fn create(&self) -> String {
        let expires = (now_secs() + LIFETIME.as_secs()).to_string();
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let mac = self.mac(&[VERSION, &expires, &nonce]);
        format!("{VERSION}.{expires}.{nonce}.{mac}")
    }

    /// The live session named by the request's cookie.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let (nonce, _) = self.open(cookie(headers)?)?;
        let revoked = self
            .revoked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if revoked.contains_key(nonce) {
            return None;
        }
        Some(Session {
            csrf: self.mac(&["csrf", nonce]),
        })
    }

    /// A token's nonce and expiry, when it is ours, intact and not expired.
    fn open<'a>(&self, token: &'a str) -> Option<(&'a str, u64)> {
        if token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let mut parts = token.split('.');
        let (version, expires, nonce, mac) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != VERSION || parts.next().is_some() {
            return None;
        }
        let expected = self.mac(&[VERSION, expires, nonce]);
        if !bool::from(expected.as_bytes().ct_eq(mac.as_bytes())) {
            return None;
        }
        let expires: u64 = expires.parse().ok()?;
        (expires > now_secs()).then_some((nonce, expires))
    }

    /// Signs the request's session out on this replica.
    pub fn end(&self, headers: &HeaderMap) {
        let Some((nonce, expires)) = cookie(headers).and_then(|t| self.open(t)) else {
            return;
        };
        let mut revoked = self
            .revoked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if revoked.len() >= MAX_REVOKED {
            let now = now_secs();
            revoked.retain(|_, until| *until > now);
            if revoked.len() >= MAX_REVOKED
                && let Some(first) = revoked
                    .iter()
                    .min_by_key(|(_, until)| **until)
                    .map(|(n, _)| n.clone())
            {
                // Full of live revocations: the one expiring first goes (its session
                // could be resumed until then — the price of a bounded list).
                revoked.remove(&first);
            }
        }
        revoked.insert(nonce.to_owned(), expires);
    }
}

impl Session {
    /// Whether a posted form carries this session's CSRF token.
    pub fn csrf_ok(&self, posted: Option<&str>) -> bool {
        posted.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.csrf.as_bytes())))
    }
}

fn cookie(headers: &HeaderMap) -> Option<&str> {
    cookie_named(headers, COOKIE)
}

/// The value of the request cookie `wanted`, when set and not empty.
pub fn cookie_named<'a>(headers: &'a HeaderMap, wanted: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// `Set-Cookie` for a new session. `Secure` when the request reached us over HTTPS
/// (directly or through a proxy that says so).
pub fn set_cookie(token: &str, headers: &HeaderMap) -> HeaderValue {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    let value = format!(
        "{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{}",
        LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static(""))
}

pub fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("gatehouse_ui=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// How the login form is checked.
pub struct Credentials {
    /// `UI_USERNAME` / `UI_PASSWORD`, both set and non-empty.
    ui_user: Option<(String, String)>,
}

impl Credentials {
    pub fn from_env() -> Self {
        let get = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        Self {
            ui_user: get("UI_USERNAME").zip(get("UI_PASSWORD")),
        }
    }

    /// What sessions are sealed under: everything that lets an operator sign in.
    pub fn secrets<'a>(&'a self, state: &'a AppState) -> [&'a str; 3] {
        let (user, pass) = self
            .ui_user
            .as_ref()
            .map_or(("", ""), |(u, p)| (u.as_str(), p.as_str()));
        let settings = (
            &state.config.general_settings,
            &state.config.litellm_settings,
        );
        let master = settings
            .0
            .master_key
            .as_deref()
            .or(settings.1.master_key.as_deref());
        [master.unwrap_or(""), user, pass]
    }

    pub fn has_ui_user(&self) -> bool {
        self.ui_user.is_some()
    }

    /// The master key as the password (checked by the API's own authentication, in
    /// constant time), or the UI user and password.
    pub fn check(&self, state: &AppState, username: &str, password: &str) -> bool {
        if let Some((user, pass)) = &self.ui_user {
            let u = user.as_bytes().ct_eq(username.as_bytes());
            let p = pass.as_bytes().ct_eq(password.as_bytes());
            if bool::from(u & p) {
                return true;
            }
        }
        let mut headers = HeaderMap::new();
        let Ok(value) = HeaderValue::from_str(&format!("Bearer {password}")) else {
            return false;
        };
        headers.insert(header::AUTHORIZATION, value);
        // Virtual keys authenticate too, but only an admin may sign in.
        !password.is_empty()
            && state
                .auth
                .authenticate(&headers)
                .is_ok_and(|caller| caller.is_admin)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sessions_are_found_by_cookie_and_end() {
        let sessions = Sessions::new(&["sk-master"]);
        let token = sessions.create();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("other=1; {COOKIE}={token}").parse().unwrap(),
        );
        let s = sessions.find(&headers).unwrap();
        assert!(s.csrf_ok(Some(&s.csrf.clone())));
        assert!(!s.csrf_ok(Some("nope")));
        assert!(!s.csrf_ok(None));
        sessions.end(&headers);
        assert!(sessions.find(&headers).is_none());
        let mut forged = HeaderMap::new();
        forged.insert(header::COOKIE, format!("{COOKIE}=abc").parse().unwrap());
        assert!(sessions.find(&forged).is_none());
    }

    fn with_cookie(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, format!("{COOKIE}={token}").parse().unwrap());
        headers
    }

    #[test]
    fn a_session_is_honoured_wherever_the_secrets_are_the_same() {
        let here = Sessions::new(&["sk-master", ""]);
        let token = here.create();
        // Another replica, or this one after a reload: same config, same key.
        let there = Sessions::new(&["sk-master", ""]);
        let a = here.find(&with_cookie(&token)).unwrap();
        let b = there.find(&with_cookie(&token)).unwrap();
        assert_eq!(a.csrf, b.csrf, "the CSRF token is the same everywhere");
        // A new master key ends every session.
        assert!(
            Sessions::new(&["sk-rotated", ""])
                .find(&with_cookie(&token))
                .is_none()
        );
        // Without secrets the key is random: valid in this process only.
        let random = Sessions::new(&[]);
        let t = random.create();
        assert!(random.find(&with_cookie(&t)).is_some());
        assert!(Sessions::new(&[]).find(&with_cookie(&t)).is_none());
    }

    #[test]
    fn altered_or_expired_tokens_are_refused() {
        let sessions = Sessions::new(&["sk-master"]);
        let token = sessions.create();
        let parts: Vec<&str> = token.split('.').collect();
        // A later expiry with the old MAC.
        let later = format!("{}.{}.{}.{}", parts[0], u64::MAX, parts[2], parts[3]);
        assert!(sessions.find(&with_cookie(&later)).is_none());
        // Expired, correctly sealed.
        let past = "1".to_owned();
        let mac = sessions.mac(&[VERSION, &past, parts[2]]);
        let expired = format!("{VERSION}.{past}.{}.{mac}", parts[2]);
        assert!(sessions.find(&with_cookie(&expired)).is_none());
        for garbage in ["s1", "s1.1.2", "s1.a.b.c.d", &"x".repeat(10_000)] {
            assert!(sessions.find(&with_cookie(garbage)).is_none(), "{garbage}");
        }
    }

    #[test]
    fn revocations_are_bounded() {
        let sessions = Sessions::new(&["sk-master"]);
        for _ in 0..MAX_REVOKED + 10 {
            sessions.end(&with_cookie(&sessions.create()));
        }
        assert!(sessions.revoked.lock().unwrap().len() <= MAX_REVOKED);
    }
}
