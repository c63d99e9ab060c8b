//! The admin web UI at `/ui`: server-rendered HTML pages over the same state the API
//! serves from, with one small vendored script and stylesheet compiled into the binary
//! (no Node toolchain, no CDN, no external fonts; see docs/design.md for why).
//!
//! - `session`: sign-in (master key or `UI_USERNAME`/`UI_PASSWORD`), the HttpOnly
//!   SameSite=Strict session cookie, CSRF tokens.
//! - `html`: escaping and the page shell; `charts`: inline SVG.
//! - `pages/*`: one module per page. Key changes go through the key admin API's own
//!   handlers (`routes::keys`), so the UI and `/key/*` cannot disagree.
//!
//! The UI sits outside the API-key middleware (a browser sends a cookie, not a bearer
//! key); every handler here checks the session itself through [`Ui::signed_in`], and
//! every POST its CSRF token through [`Ui::form_session`].

mod charts;
mod html;
mod pages;
mod redact;
mod schema_form;
mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::state::AppState;
use session::{Credentials, Session, Sessions};

/// The UI's own state beside the application's.
pub struct Ui {
    pub app: Arc<AppState>,
    sessions: Sessions,
    credentials: Credentials,
}

/// A posted form, in order (tool forms have dynamic field names).
pub type FormFields = Vec<(String, String)>;

pub fn field<'a>(form: &'a FormFields, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

pub fn router(app: Arc<AppState>) -> Router {
    let credentials = Credentials::from_env();
    let sessions = Sessions::new(&credentials.secrets(&app));
    let ui = Arc::new(Ui {
        app,
        sessions,
        credentials,
    });
    Router::new()
        .route("/ui", get(pages::overview::page))
        .route("/ui/", get(pages::overview::page))
        .route(
            "/ui/login",
            get(pages::login::form).post(pages::login::submit),
        )
        .route("/ui/logout", post(logout))
        .route("/ui/models", get(pages::models::page))
        .route("/ui/mcp", get(pages::mcp::list))
        .route("/ui/mcp/{server}", get(pages::mcp::server))
        .route("/ui/mcp/{server}/call", post(pages::mcp::call))
        .route("/ui/keys", get(pages::keys::page).post(pages::keys::create))
        .route("/ui/keys/action", post(pages::keys::action))
        .route("/ui/spend", get(pages::logs::spend))
        .route("/ui/audit", get(pages::logs::audit))
        .route("/ui/config", get(pages::config::page))
        .route("/ui/assets/app.css", get(css))
        .route("/ui/assets/app.js", get(js))
        .with_state(ui)
        .layer(axum::middleware::map_response(security_headers))
}

impl Ui {
    /// The session of a signed-in operator, or the redirect to the login page.
    #[allow(clippy::result_large_err)]
    pub fn signed_in(&self, headers: &HeaderMap) -> Result<Session, Response> {
        self.sessions
            .find(headers)
            .ok_or_else(|| Redirect::to("/ui/login").into_response())
    }

    /// The session of a POST whose CSRF token matches; 403 otherwise.
    #[allow(clippy::result_large_err)]
    pub fn form_session(
        &self,
        headers: &HeaderMap,
        form: &FormFields,
    ) -> Result<Session, Response> {
        let session = self.signed_in(headers)?;
        if session.csrf_ok(field(form, "csrf")) {
            Ok(session)
        } else {
            Err((
                StatusCode::FORBIDDEN,
                axum::response::Html(html::bare(
                    "Refused",
                    "<h1>Refused</h1><p>This form was not issued by this session (missing or wrong CSRF token). <a href=\"/ui\">Back</a></p>",
                )),
            )
                .into_response())
        }
    }

    /// A full page in the signed-in shell.
    pub fn page(&self, title: &str, active: &str, session: &Session, body: &str) -> Response {
        let shell = html::Shell {
            title,
            active,
            csrf: &session.csrf,
        };
        axum::response::Html(shell.render(body)).into_response()
    }
}

async fn logout(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Form(form): Form<FormFields>,
) -> Response {
    if let Err(refused) = ui.form_session(&headers, &form) {
        return refused;
    }
    ui.sessions.end(&headers);
    let mut response = Redirect::to("/ui/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie());
    response
}

/// Nothing on these pages may be framed, cached, or load from elsewhere.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = |h: &mut HeaderMap, name: &'static str, value: &'static str| {
        h.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    // `same-origin`, not `no-referrer`: with no referrer, Chromium sends `Origin: null`
    // on the UI's own form posts, which the browser guard rightly refuses.
    set(h, "referrer-policy", "same-origin");
    if !h.contains_key(header::CACHE_CONTROL) {
        set(h, "cache-control", "no-store");
    }
    response
}

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        JS,
    )
}
