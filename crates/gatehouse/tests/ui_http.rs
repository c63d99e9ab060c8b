#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! The admin UI's HTTP contract against the real binary, without a browser: who may
//! sign in (master key, UI_USERNAME/UI_PASSWORD; not a virtual key, not a wrong key),
//! the cookie's attributes, CSRF on every form, security headers, no secret in pages.

mod common;

use common::Gateway;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

const MASTER: &str = "sk-master-ui-http";

fn config() -> String {
    format!(
        r#"
model_list:
  - model_name: m
    litellm_params: {{model: openai/gpt-4o, api_base: "http://user:hunter2@127.0.0.1:9/v1", api_key: sk-upstream-secret}}
virtual_keys:
  - api_key: sk-virtual-ui-test
    key_alias: v
general_settings:
  master_key: {MASTER}
"#
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value of `name` among the response's Set-Cookie headers.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_string()
}

/// Signs in; returns (session cookie header line, status, body of the answer).
async fn sign_in(gw: &Gateway, username: &str, password: &str) -> (Option<String>, StatusCode) {
    let c = client();
    let form = c.get(format!("{}/ui/login", gw.url)).send().await.unwrap();
    let login_cookie = cookie_value(&set_cookie(&form, "gatehouse_login").unwrap());
    let csrf = hidden(&form.text().await.unwrap(), "csrf");
    let resp = c
        .post(format!("{}/ui/login", gw.url))
        .header(COOKIE, format!("gatehouse_login={login_cookie}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    (set_cookie(&resp, "gatehouse_ui"), resp.status())
}

/// A signed-in page's HTML.
async fn page(c: &reqwest::Client, gw: &Gateway, jar: &str, path: &str) -> String {
    c.get(format!("{}{path}", gw.url))
        .header(COOKIE, jar)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A form posted with the session cookie.
async fn post(
    c: &reqwest::Client,
    gw: &Gateway,
    jar: &str,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    c.post(format!("{}{path}", gw.url))
        .header(COOKIE, jar)
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn who_may_sign_in() {
    let gw = Gateway::start_with(
        &config(),
        &[],
        &[("UI_USERNAME", "ops"), ("UI_PASSWORD", "correct horse")],
    );
    let (cookie, status) = sign_in(&gw, "admin", "sk-wrong").await;
    assert_eq!((cookie, status), (None, StatusCode::UNAUTHORIZED));
    let (cookie, status) = sign_in(&gw, "admin", "sk-virtual-ui-test").await;
    assert_eq!(
        (cookie, status),
        (None, StatusCode::UNAUTHORIZED),
        "a virtual key is not an operator"
    );
    let (cookie, status) = sign_in(&gw, "ops", "wrong horse").await;
    assert_eq!((cookie, status), (None, StatusCode::UNAUTHORIZED));
    let (cookie, status) = sign_in(&gw, "ops", "correct horse").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = cookie.unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let (cookie, status) = sign_in(&gw, "anyone", MASTER).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(cookie.is_some());

    // The login form itself refuses a post without its own token.
    let resp = client()
        .post(format!("{}/ui/login", gw.url))
        .form(&[("username", "admin"), ("password", MASTER)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&resp, "gatehouse_ui").is_none());
}

#[tokio::test]
async fn pages_need_a_session_and_forms_their_csrf_token() {
    let gw = Gateway::start(&config());
    let c = client();
    for page in [
        "/ui",
        "/ui/keys",
        "/ui/config",
        "/ui/spend",
        "/ui/audit",
        "/ui/models",
        "/ui/mcp",
    ] {
        let resp = c.get(format!("{}{page}", gw.url)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(resp.headers()[LOCATION], "/ui/login", "{page}");
        // A bearer key is not a session.
        let resp = c
            .get(format!("{}{page}", gw.url))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER, "{page}");
    }
    let session = cookie_value(&sign_in(&gw, "admin", MASTER).await.0.unwrap());
    let jar = format!("gatehouse_ui={session}");
    let keys = c
        .get(format!("{}/ui/keys", gw.url))
        .header(COOKIE, &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), StatusCode::OK);
    let csp = keys.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(keys.headers()["x-frame-options"], "DENY");
    assert_eq!(keys.headers()["cache-control"], "no-store");
    let html = keys.text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    assert!(html.contains(">v<"), "the config key is listed by alias");
    assert!(
        !html.contains("sk-virtual-ui-test"),
        "no key value in the page"
    );

    // Every form refuses a missing or foreign token, and does nothing.
    for (path, form) in [
        ("/ui/keys", vec![("key_alias", "forged")]),
        ("/ui/keys/action", vec![("op", "delete"), ("key", "x")]),
        ("/ui/mcp/none/call", vec![("tool", "echo")]),
        ("/ui/logout", vec![]),
    ] {
        for token in [None, Some("0".repeat(64))] {
            let mut fields: Vec<(&str, String)> =
                form.iter().map(|(k, v)| (*k, v.to_string())).collect();
            if let Some(t) = &token {
                fields.push(("csrf", t.clone()));
            }
            let resp = c
                .post(format!("{}{path}", gw.url))
                .header(COOKIE, &jar)
                .form(&fields)
                .send()
                .await
                .unwrap();
            assert_eq!(
                resp.status(),
                StatusCode::FORBIDDEN,
                "{path} with {token:?}"
            );
        }
    }
    let list = page(&c, &gw, &jar, "/ui/keys").await;
    assert!(!list.contains("forged"));

    // With the token: a key is created and shown once.
    let created = post(
        &c,
        &gw,
        &jar,
        "/ui/keys",
        &[
            ("csrf", csrf.as_str()),
            ("key_alias", "made-by-form"),
            ("rpm_limit", "7"),
            ("mcp_mode", "all"),
        ],
    )
    .await
    .text()
    .await
    .unwrap();
    let at = created.find("id=\"new-key\">").unwrap() + "id=\"new-key\">".len();
    let key = &created[at..at + created[at..].find('<').unwrap()];
    assert!(key.starts_with("sk-"), "{key}");
    let info = c
        .get(format!("{}/key/info", gw.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        info.status(),
        StatusCode::OK,
        "the new key works on the API"
    );
    let again = page(&c, &gw, &jar, "/ui/keys").await;
    assert!(again.contains("made-by-form") && again.contains("7 rpm") && !again.contains(key));

    // Bad input comes back as a message, not an error page.
    let bad = c
        .post(format!("{}/ui/keys", gw.url))
        .header(COOKIE, &jar)
        .form(&[
            ("csrf", csrf.as_str()),
            ("key_alias", "x"),
            ("rpm_limit", "lots"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::OK);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("rpm_limit: a whole number")
    );

    // The config page hides every secret.
    let config = page(&c, &gw, &jar, "/ui/config").await;
    for secret in [
        MASTER,
        "sk-upstream-secret",
        "hunter2",
        "sk-virtual-ui-test",
    ] {
        assert!(!config.contains(secret), "{secret} on the config page");
    }
    assert!(config.contains("openai/gpt-4o"));

    // Log out: the cookie no longer opens pages.
    let out = c
        .post(format!("{}/ui/logout", gw.url))
        .header(COOKIE, &jar)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        set_cookie(&out, "gatehouse_ui")
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = c
        .get(format!("{}/ui/keys", gw.url))
        .header(COOKIE, &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_session_works_on_every_replica_and_ends_with_a_new_master_key() {
    // Two replicas of one config (no sticky sessions): signed in on one, the other
    // serves the pages and accepts the same CSRF token.
    let a = Gateway::start(&config());
    let b = Gateway::start(&config());
    let c = client();
    let session = cookie_value(&sign_in(&a, "admin", MASTER).await.0.unwrap());
    let jar = format!("gatehouse_ui={session}");
    let on_a = c
        .get(format!("{}/ui/keys", a.url))
        .header(COOKIE, &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(on_a.status(), StatusCode::OK);
    let csrf = hidden(&on_a.text().await.unwrap(), "csrf");
    let on_b = c
        .get(format!("{}/ui/keys", b.url))
        .header(COOKIE, &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(
        on_b.status(),
        StatusCode::OK,
        "replica b refused a's session"
    );
    assert_eq!(hidden(&on_b.text().await.unwrap(), "csrf"), csrf);
    let made = post(
        &c,
        &b,
        &jar,
        "/ui/keys",
        &[("csrf", &csrf), ("key_alias", "from-b")],
    )
    .await;
    assert!(
        made.status().is_success() || made.status() == StatusCode::SEE_OTHER,
        "{}",
        made.status()
    );
    // Another master key (a rotated one): the old cookie is no session there.
    let rotated = Gateway::start(&config().replace(MASTER, "sk-master-rotated"));
    let resp = c
        .get(format!("{}/ui/keys", rotated.url))
        .header(COOKIE, &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    // A forged cookie is no session anywhere.
    let resp = c
        .get(format!("{}/ui/keys", a.url))
        .header(COOKIE, "gatehouse_ui=s1.99999999999.00.00")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}
