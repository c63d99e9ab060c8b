//! Keys: list with spend per key, create (models, MCP scopes, limits, budget, expiry),
//! block/unblock, regenerate, delete. Every change goes through the key admin API's own
//! handlers (`routes::keys`) with the master's authority, so validation, the cache
//! update and the store write are the API's. A new or regenerated key is shown once, in
//! the response to the form that made it, and never again.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Form, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_store::KeyFilter;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::routes::keys as api;
use crate::ui::html::{csrf_field, esc, money, notice, table, url_param, when};
use crate::ui::session::Session;
use crate::ui::{FormFields, Ui, field};

const PAGE_SIZE: u32 = 50;

/// The UI acts with the master key's authority (the operator signed in with it).
fn operator() -> Caller {
    Caller {
        key_id: "ui".into(),
        is_admin: true,
        key: None,
    }
}

pub async fn page(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let session = match ui.signed_in(&headers) {
        Ok(s) => s,
        Err(login) => return login,
    };
    let done = match q.get("done").map(String::as_str) {
        Some("blocked") => notice("ok", "Key blocked: it is refused from now on."),
        Some("unblocked") => notice("ok", "Key unblocked."),
        Some("deleted") => notice("ok", "Key deleted."),
        _ => String::new(),
    };
    let page_no = q
        .get("page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1u32)
        .max(1);
    render(&ui, &session, &done, page_no, &HashMap::new()).await
}

async fn render(
    ui: &Ui,
    session: &Session,
    top: &str,
    page_no: u32,
    sticky: &HashMap<&str, String>,
) -> Response {
    let mut body = top.to_string();
    let Some(p) = &ui.app.persistence else {
        body.push_str(&notice("warn", "No key store is configured."));
        return ui.page("Keys", "/ui/keys", session, &body);
    };
    body.push_str(&create_form(ui, session, sticky));
    match p
        .store
        .list(page_no, PAGE_SIZE, &KeyFilter::default())
        .await
    {
        Err(e) => body.push_str(&notice("error", &format!("key store: {e}"))),
        Ok(list) => {
            let now = chrono::Utc::now();
            let rows: Vec<Vec<String>> = list
                .keys
                .iter()
                .map(|k| {
                    let status = if k.blocked {
                        "<span class=\"bad\">blocked</span>"
                    } else if k.is_expired(now) {
                        "<span class=\"bad\">expired</span>"
                    } else if k.over_budget() {
                        "<span class=\"bad\">over budget</span>"
                    } else {
                        "<span class=\"ok\">active</span>"
                    };
                    let limits = [
                        k.rpm_limit.map(|v| format!("{v} rpm")),
                        k.tpm_limit.map(|v| format!("{v} tpm")),
                        k.max_parallel_requests.map(|v| format!("{v} parallel")),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", ");
                    let budget = match k.max_budget {
                        Some(b) => format!(
                            "{} / {}{}",
                            money(k.spend),
                            money(b),
                            k.budget_duration
                                .as_deref()
                                .map(|d| format!(" per {d}"))
                                .unwrap_or_default()
                        ),
                        None => money(k.spend),
                    };
                    vec![
                        esc(k.key_alias.as_deref().unwrap_or("—")),
                        format!("<code>{}</code>", esc(&k.key_prefix_display)),
                        esc(&if k.models.is_empty() {
                            "all".into()
                        } else {
                            k.models.join(", ")
                        }),
                        esc(&k.mcp_servers.as_ref().map_or("all".into(), |s| {
                            if s.is_empty() {
                                "none".into()
                            } else {
                                s.join(", ")
                            }
                        })),
                        esc(&limits),
                        format!(
                            "<a href=\"/ui/spend?key={}\">{}</a>",
                            url_param(&k.token_hash),
                            esc(&budget)
                        ),
                        status.to_string(),
                        esc(k.source.as_str()),
                        esc(&when(k.created_at)),
                        actions(session, &k.token_hash, k.blocked, k.key_alias.as_deref()),
                    ]
                })
                .collect();
            let _ = write!(
                body,
                "<h2>{} keys</h2>{}",
                list.total,
                table(
                    &[
                        "alias",
                        "key",
                        "models",
                        "MCP servers",
                        "limits",
                        "spend / budget",
                        "status",
                        "source",
                        "created",
                        ""
                    ],
                    &rows,
                    "No keys yet.",
                )
            );
            let pages = list.total.div_ceil(u64::from(PAGE_SIZE)).max(1);
            if pages > 1 {
                let _ = write!(body, "<nav class=\"pager\">Page {page_no} of {pages} ");
                if page_no > 1 {
                    let _ = write!(
                        body,
                        "<a href=\"/ui/keys?page={}\">← newer</a> ",
                        page_no - 1
                    );
                }
                if u64::from(page_no) < pages {
                    let _ = write!(
                        body,
                        "<a href=\"/ui/keys?page={}\">older →</a>",
                        page_no + 1
                    );
                }
                body.push_str("</nav>");
            }
        }
    }
    ui.page("Keys", "/ui/keys", session, &body)
}

fn actions(session: &Session, hash: &str, blocked: bool, alias: Option<&str>) -> String {
    let name = esc(alias.unwrap_or("this key"));
    let button = |op: &str, label: &str, confirm: Option<String>| {
        format!(
            "<form method=\"post\" action=\"/ui/keys/action\" class=\"inline\"{}>{}\
             <input type=\"hidden\" name=\"key\" value=\"{}\"><input type=\"hidden\" name=\"op\" value=\"{op}\">\
             <button type=\"submit\" class=\"small{}\">{label}</button></form>",
            confirm
                .map(|c| format!(" data-confirm=\"{c}\""))
                .unwrap_or_default(),
            csrf_field(&session.csrf),
            esc(hash),
            if op == "delete" { " danger" } else { "" },
        )
    };
    [
        if blocked {
            button("unblock", "Unblock", None)
        } else {
            button("block", "Block", None)
        },
        button(
            "regenerate",
            "Regenerate",
            Some(format!(
                "Replace the secret of {name}? The old one stops working at once."
            )),
        ),
        button(
            "delete",
            "Delete",
            Some(format!("Delete {name}? Its clients are refused at once.")),
        ),
    ]
    .concat()
}

fn create_form(ui: &Ui, session: &Session, sticky: &HashMap<&str, String>) -> String {
    let v = |k: &str| esc(sticky.get(k).map(String::as_str).unwrap_or(""));
    let mut models = String::new();
    for name in ui.app.router.names() {
        let _ = write!(
            models,
            "<label class=\"check\"><input type=\"checkbox\" name=\"model\" value=\"{n}\"> {n}</label>",
            n = esc(name)
        );
    }
    let mut servers = String::new();
    for name in ui.app.hub.server_names() {
        let _ = write!(
            servers,
            "<label class=\"check\"><input type=\"checkbox\" name=\"mcp\" value=\"{n}\"> {n}</label>",
            n = esc(&name)
        );
    }
    format!(
        "<details class=\"create\"{open}><summary>Create a key</summary>\
         <form method=\"post\" action=\"/ui/keys\" class=\"grid\">{csrf}\
         <label>Alias <input name=\"key_alias\" value=\"{alias}\" placeholder=\"team-a\"></label>\
         <fieldset><legend>Models (none checked: all)</legend>{models}</fieldset>\
         <fieldset><legend>MCP servers</legend>\
         <label class=\"check\"><input type=\"radio\" name=\"mcp_mode\" value=\"all\" checked> all</label>\
         <label class=\"check\"><input type=\"radio\" name=\"mcp_mode\" value=\"only\"> only the checked ones:</label>{servers}</fieldset>\
         <label>Max budget ($) <input name=\"max_budget\" inputmode=\"decimal\" value=\"{budget}\"></label>\
         <label>Budget period <input name=\"budget_duration\" placeholder=\"30d\" value=\"{period}\"></label>\
         <label>Requests/min <input name=\"rpm_limit\" inputmode=\"numeric\" value=\"{rpm}\"></label>\
         <label>Tokens/min <input name=\"tpm_limit\" inputmode=\"numeric\" value=\"{tpm}\"></label>\
         <label>Parallel requests <input name=\"max_parallel_requests\" inputmode=\"numeric\" value=\"{par}\"></label>\
         <label>Expires after <input name=\"duration\" placeholder=\"90d\" value=\"{dur}\"></label>\
         <button type=\"submit\">Create key</button></form></details>",
        open = if sticky.is_empty() { "" } else { " open" },
        csrf = csrf_field(&session.csrf),
        alias = v("key_alias"),
        budget = v("max_budget"),
        period = v("budget_duration"),
        rpm = v("rpm_limit"),
        tpm = v("tpm_limit"),
        par = v("max_parallel_requests"),
        dur = v("duration"),
    )
}

/// The `/key/generate` body for the create form.
fn generate_body(form: &FormFields) -> Result<Map<String, Value>, String> {
    let mut body = Map::new();
    let text = |name: &str| field(form, name).map(str::trim).filter(|v| !v.is_empty());
    for name in ["key_alias", "budget_duration", "duration"] {
        if let Some(v) = text(name) {
            body.insert(name.into(), json!(v));
        }
    }
    if let Some(v) = text("max_budget") {
        let b: f64 = v
            .parse()
            .map_err(|_| "Max budget: a number of dollars".to_string())?;
        body.insert("max_budget".into(), json!(b));
    }
    for name in ["rpm_limit", "tpm_limit", "max_parallel_requests"] {
        if let Some(v) = text(name) {
            let n: u64 = v.parse().map_err(|_| format!("{name}: a whole number"))?;
            body.insert(name.into(), json!(n));
        }
    }
    let all = |name: &str| -> Vec<&str> {
        form.iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    body.insert("models".into(), json!(all("model")));
    if field(form, "mcp_mode") == Some("only") {
        body.insert("mcp_servers".into(), json!(all("mcp")));
    }
    Ok(body)
}

fn shown_once(what: &str, key: &str) -> String {
    format!(
        "<section class=\"secret\" data-new-key><h2>{what}</h2>\
         <p>Copy it now: it is shown once and cannot be displayed again.</p>\
         <p><code id=\"new-key\">{}</code> <button type=\"button\" data-copy=\"new-key\">Copy</button></p></section>",
        esc(key)
    )
}

pub async fn create(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Form(form): Form<FormFields>,
) -> Response {
    let session = match ui.form_session(&headers, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let sticky: HashMap<&str, String> = [
        "key_alias",
        "max_budget",
        "budget_duration",
        "rpm_limit",
        "tpm_limit",
        "max_parallel_requests",
        "duration",
    ]
    .into_iter()
    .filter_map(|k| field(&form, k).map(|v| (k, v.to_string())))
    .collect();
    let body = match generate_body(&form) {
        Ok(b) => b,
        Err(e) => return render(&ui, &session, &notice("error", &e), 1, &sticky).await,
    };
    let result = api::generate(
        State(ui.app.clone()),
        Extension(operator()),
        Body::from(Value::Object(body).to_string()),
    )
    .await;
    match result {
        Ok(axum::Json(v)) => {
            let key = v.get("key").and_then(Value::as_str).unwrap_or_default();
            let top = shown_once("New key", key);
            render(&ui, &session, &top, 1, &HashMap::new()).await
        }
        Err(e) => render(&ui, &session, &notice("error", &e.to_string()), 1, &sticky).await,
    }
}

/// What a key action leads to.
enum Done {
    /// Back to the list with this notice (`?done=`).
    Redirect(&'static str),
    /// A new secret, shown once on this answer.
    Secret(String),
}

pub async fn action(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Form(form): Form<FormFields>,
) -> Response {
    let session = match ui.form_session(&headers, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let hash = field(&form, "key").unwrap_or_default().to_string();
    let op = field(&form, "op").unwrap_or_default();
    let body = |v: Value| Body::from(v.to_string());
    let (app, me) = (ui.app.clone(), Extension(operator()));
    let outcome = match op {
        // The LiteLLM-shaped `blocked` field of /key/update. (/key/block, where the
        // hardening branch adds persistent revocation of config keys, can replace it.)
        "block" | "unblock" => {
            let blocked = op == "block";
            api::update(
                State(app),
                me,
                body(json!({"key": hash, "blocked": blocked})),
            )
            .await
            .map(|_| Done::Redirect(if blocked { "blocked" } else { "unblocked" }))
            .map_err(|e| e.to_string())
        }
        "delete" => api::delete(State(app), me, body(json!({"keys": [hash]})))
            .await
            .map(|_| Done::Redirect("deleted"))
            .map_err(|e| e.to_string()),
        "regenerate" => api::regenerate(State(app), me, body(json!({"key": hash})))
            .await
            .map(|axum::Json(v)| {
                Done::Secret(
                    v.get("key")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                )
            })
            .map_err(|e| e.to_string()),
        _ => Err("unknown action".to_string()),
    };
    let top = match outcome {
        Ok(Done::Redirect(done)) => {
            return Redirect::to(&format!("/ui/keys?done={done}")).into_response();
        }
        Ok(Done::Secret(key)) => shown_once("Regenerated key", &key),
        Err(e) => notice("error", &e),
    };
    render(&ui, &session, &top, 1, &HashMap::new()).await
}
