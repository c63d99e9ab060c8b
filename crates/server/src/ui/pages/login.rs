//! Sign in and the login form. The form carries a CSRF token too (double submit: the
//! same random value in a short-lived cookie and in the form), so another site cannot
//! sign a browser in to a session of its choosing.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use crate::ui::html::{bare, esc, notice};
use crate::ui::{FormFields, Ui, field, session};

const LOGIN_COOKIE: &str = "gatehouse_login";
/// Slows guessing down; a real operator does not notice.
const FAILURE_DELAY: Duration = Duration::from_millis(400);

fn render(ui: &Ui, status: StatusCode, message: Option<&str>) -> Response {
    let token = hex::encode(rand::random::<[u8; 16]>());
    let local = ui.app.auth.is_local();
    let user_field = if ui.credentials.has_ui_user() {
        "<label>User name <input name=\"username\" autocomplete=\"username\" required></label>"
    } else {
        "<input type=\"hidden\" name=\"username\" value=\"admin\">"
    };
    let secret_label = if ui.credentials.has_ui_user() {
        "Password (or the master key)"
    } else {
        "Master key"
    };
    let intro = if local {
        notice(
            "warn",
            "Local mode: no master key is configured, so anyone on this machine may sign in. Set general_settings.master_key to protect the UI.",
        )
    } else {
        String::new()
    };
    let message = message.map(|m| notice("error", m)).unwrap_or_default();
    let required = if local { "" } else { " required" };
    let body = format!(
        "<section class=\"login\"><h1>Gatehouse</h1>{intro}{message}\
         <form method=\"post\" action=\"/ui/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">{user_field}\
         <label>{secret_label} <input type=\"password\" name=\"password\" autocomplete=\"current-password\" autofocus{required}></label>\
         <button type=\"submit\">Sign in</button></form></section>",
        token = esc(&token),
    );
    let mut response = (status, Html(bare("Sign in", &body))).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={token}; Path=/ui/login; HttpOnly; SameSite=Strict; Max-Age=900"
    )) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

pub async fn form(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    if ui.sessions.find(&headers).is_some() {
        return Redirect::to("/ui").into_response();
    }
    render(&ui, StatusCode::OK, None)
}

pub async fn submit(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Form(form): Form<FormFields>,
) -> Response {
    let posted = field(&form, "csrf").unwrap_or_default();
    let issued = session::cookie_named(&headers, LOGIN_COOKIE).unwrap_or_default();
    if posted.is_empty() || !bool::from(posted.as_bytes().ct_eq(issued.as_bytes())) {
        return render(
            &ui,
            StatusCode::FORBIDDEN,
            Some("The form expired or was not issued here; try again."),
        );
    }
    let username = field(&form, "username").unwrap_or_default();
    let password = field(&form, "password").unwrap_or_default();
    let ok = ui.app.auth.is_local() || ui.credentials.check(&ui.app, username, password);
    if !ok {
        tokio::time::sleep(FAILURE_DELAY).await;
        tracing::warn!("UI sign-in refused");
        return render(
            &ui,
            StatusCode::UNAUTHORIZED,
            Some("Wrong key or password."),
        );
    }
    let token = ui.sessions.create();
    tracing::info!("UI sign-in");
    let mut response = Redirect::to("/ui").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::set_cookie(&token, &headers));
    response
}
