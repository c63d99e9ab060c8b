//! Who is signed in to the UI: a random session token in an HttpOnly, SameSite=Strict
//! cookie, mapped in memory to the session's CSRF token. Only the SHA-256 of a session
//! token is kept, so a memory dump does not yield a usable cookie.
//!
//! Sign-in takes the master key (as the password, any user name), or
//! `UI_USERNAME`/`UI_PASSWORD` when both are set in the environment (LiteLLM's
//! variables). Sessions live in this process: behind a load balancer, use sticky
//! sessions or sign in per replica.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::state::AppState;

pub const COOKIE: &str = "gatehouse_ui";
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the oldest goes first when a new one needs room.
const MAX_SESSIONS: usize = 1024;

#[derive(Clone)]
pub struct Session {
    pub csrf: String,
    expires: Instant,
}

#[derive(Default)]
pub struct Sessions {
    by_token_hash: Mutex<HashMap<[u8; 32], Session>>,
}

fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// Starts a session; returns its cookie token.
    pub fn create(&self) -> String {
        let token = random_hex();
        let session = Session {
            csrf: random_hex(),
            expires: Instant::now() + LIFETIME,
        };
        let mut map = self
            .by_token_hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_SESSIONS {
            let now = Instant::now();
            map.retain(|_, s| s.expires > now);
            if map.len() >= MAX_SESSIONS
                && let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        map.insert(digest(&token), session);
        token
    }

    /// The live session named by the request's cookie.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let token = cookie(headers)?;
        let key = digest(token);
        let mut map = self
            .by_token_hash
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match map.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn end(&self, headers: &HeaderMap) {
        if let Some(token) = cookie(headers) {
            self.by_token_hash
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&digest(token));
        }
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
        let sessions = Sessions::default();
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

    #[test]
    fn sessions_are_bounded() {
        let sessions = Sessions::default();
        for _ in 0..MAX_SESSIONS + 10 {
            sessions.create();
        }
        assert!(sessions.by_token_hash.lock().unwrap().len() <= MAX_SESSIONS);
    }
}
