//! Spend logs and the tool-call audit: filters in the query string, newest first, one
//! page at a time through the store's keyset cursors (`after=<ms>.<id>`), so paging stays
//! as fast on the millionth row as on the first.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, NaiveDateTime, Utc};
use gatehouse_store::{AuditQuery, Cursor, SpendQuery, StatusFilter};

use crate::ui::Ui;
use crate::ui::html::{esc, money, notice, table, url_param, when};

const PAGE: u32 = 50;

type Params = HashMap<String, String>;

fn param<'a>(q: &'a Params, name: &str) -> Option<&'a str> {
    q.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// `2026-05-01T12:00` (a datetime-local input, read as UTC) or RFC 3339.
fn instant(q: &Params, name: &str) -> Result<Option<DateTime<Utc>>, String> {
    let Some(v) = param(q, name) else {
        return Ok(None);
    };
    if let Ok(t) = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M") {
        return Ok(Some(t.and_utc()));
    }
    gatehouse_store::parse_instant(name, v)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// A key filter given as its alias or its SHA-256 (what the spend log stores).
async fn key_hash(ui: &Ui, q: &Params) -> Result<Option<String>, String> {
    let Some(v) = param(q, "key") else {
        return Ok(None);
    };
    if v == "ui" || (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Ok(Some(v.to_ascii_lowercase()));
    }
    let Some(p) = &ui.app.persistence else {
        return Ok(Some(v.to_string()));
    };
    let filter = gatehouse_store::KeyFilter {
        key_alias: Some(v.to_string()),
        ..Default::default()
    };
    match p.store.list(1, 1, &filter).await {
        Ok(page) => Ok(Some(
            page.keys
                .first()
                .map(|k| k.token_hash.clone())
                .ok_or_else(|| format!("no key with alias {v}"))?,
        )),
        Err(e) => Err(e.to_string()),
    }
}

/// A key's alias for display, else a hash prefix.
fn key_label(ui: &Ui, hash: &str) -> String {
    let alias = ui
        .app
        .persistence
        .as_ref()
        .and_then(|p| p.keys.lookup(hash))
        .and_then(|k| k.key_alias.clone());
    match alias {
        Some(a) => esc(&a),
        None => format!("<code>{}</code>", esc(hash.get(..12).unwrap_or(hash))),
    }
}

/// The filter form: (name, label, kind) with the current values kept.
fn filters(action: &str, q: &Params, fields: &[(&str, &str, &str)]) -> String {
    let mut out = format!("<form method=\"get\" action=\"{action}\" class=\"filters\">");
    for (name, label, kind) in fields {
        let value = esc(q.get(*name).map(String::as_str).unwrap_or(""));
        match *kind {
            "status" => {
                let sel = |v: &str| {
                    if q.get(*name).map(String::as_str) == Some(v) {
                        " selected"
                    } else {
                        ""
                    }
                };
                let _ = write!(
                    out,
                    "<label>{label} <select name=\"{name}\"><option value=\"\">any</option>\
                     <option value=\"success\"{}>success</option><option value=\"errors\"{}>errors</option></select></label>",
                    sel("success"),
                    sel("errors")
                );
            }
            "time" => {
                let _ = write!(
                    out,
                    "<label>{label} <input type=\"datetime-local\" name=\"{name}\" value=\"{value}\"></label>"
                );
            }
            _ => {
                let _ = write!(
                    out,
                    "<label>{label} <input name=\"{name}\" value=\"{value}\"></label>"
                );
            }
        }
    }
    let _ = write!(
        out,
        "<button type=\"submit\">Filter</button> <a href=\"{action}\">clear</a></form>"
    );
    out
}

/// "Newer" goes back to the first page; "older" continues from the cursor.
fn pager(action: &str, q: &Params, next: Option<Cursor>) -> String {
    let keep: String = q
        .iter()
        .filter(|(k, v)| k.as_str() != "after" && !v.is_empty())
        .map(|(k, v)| format!("&{}={}", url_param(k), url_param(v)))
        .collect();
    let mut out = String::from("<nav class=\"pager\">");
    if q.contains_key("after") {
        let _ = write!(
            out,
            "<a href=\"{action}?{}\">← newest</a> ",
            keep.trim_start_matches('&')
        );
    }
    if let Some(c) = next {
        let _ = write!(
            out,
            "<a href=\"{action}?after={c}{keep}\" data-next>older →</a>"
        );
    }
    out.push_str("</nav>");
    out
}

/// Rendered cells of one page, and where the next page starts.
type Rows = (Vec<Vec<String>>, Option<Cursor>);

/// One listing page's frame: title, filter form, the rows (or why there are none), pager.
struct Listing<'a> {
    title: &'a str,
    path: &'a str,
    fields: &'a [(&'a str, &'a str, &'a str)],
    head: &'a [&'a str],
    empty: &'a str,
}

impl Listing<'_> {
    fn render(
        &self,
        ui: &Ui,
        session: &crate::ui::session::Session,
        q: &Params,
        rows: Option<Result<Rows, String>>,
    ) -> Response {
        let mut body = filters(self.path, q, self.fields);
        match rows {
            None => body.push_str(&notice("warn", "No key store is configured.")),
            Some(Err(e)) => body.push_str(&notice("error", &e)),
            Some(Ok((rows, next))) => {
                body.push_str(&table(self.head, &rows, self.empty));
                body.push_str(&pager(self.path, q, next));
            }
        }
        ui.page(self.title, self.path, session, &body)
    }
}

const SPEND: Listing = Listing {
    title: "Spend logs",
    path: "/ui/spend",
    fields: &[
        ("key", "Key (alias or hash)", "text"),
        ("model", "Model", "text"),
        ("status", "Status", "status"),
        ("from", "From (UTC)", "time"),
        ("to", "To (UTC)", "time"),
    ],
    head: &[
        "time (UTC)",
        "request",
        "key",
        "model",
        "deployment",
        "tokens in / out",
        "cost",
        "latency",
        "status",
        "tool calls",
    ],
    empty: "No requests match.",
};

const AUDIT: Listing = Listing {
    title: "Tool calls",
    path: "/ui/audit",
    fields: &[
        ("key", "Key (alias, hash, or ui)", "text"),
        ("server", "Server", "text"),
        ("tool", "Tool", "text"),
        ("outcome", "Outcome (ok, error, ...)", "text"),
        ("from", "From (UTC)", "time"),
        ("to", "To (UTC)", "time"),
    ],
    head: &[
        "time (UTC)",
        "key",
        "server",
        "tool",
        "outcome",
        "duration",
        "args / result",
        "request",
    ],
    empty: "No tool calls match.",
};

fn outcome_cell(value: &str, good: &str) -> String {
    if value == good {
        format!("<span class=\"ok\">{}</span>", esc(value))
    } else {
        format!("<span class=\"bad\">{}</span>", esc(value))
    }
}

async fn spend_rows(ui: &Ui, q: &Params) -> Result<Rows, String> {
    let Some(p) = &ui.app.persistence else {
        return Ok((Vec::new(), None));
    };
    let query = SpendQuery {
        key_hash: key_hash(ui, q).await?,
        model: param(q, "model").map(str::to_owned),
        status: match param(q, "status") {
            Some("errors") => Some(StatusFilter::Errors),
            Some(s) => Some(StatusFilter::Is(s.to_string())),
            None => None,
        },
        from: instant(q, "from")?,
        to: instant(q, "to")?,
        after: param(q, "after").and_then(Cursor::parse),
        limit: PAGE,
    };
    let page = p
        .store
        .spend_page(&query)
        .await
        .map_err(|e| e.to_string())?;
    let rows = page
        .rows
        .iter()
        .map(|r| {
            let calls = r.mcp_calls.as_array().map_or(0, Vec::len);
            vec![
                esc(&when(r.created_at)),
                format!("<code>{}</code>", esc(&r.request_id)),
                key_label(ui, &r.key_hash),
                esc(&r.model),
                esc(r.deployment.as_deref().unwrap_or("")),
                format!("{} / {}", r.prompt_tokens, r.completion_tokens),
                esc(&money(r.cost)),
                format!("{} ms", r.latency_ms),
                outcome_cell(&r.status, "success"),
                if calls == 0 {
                    String::new()
                } else {
                    calls.to_string()
                },
            ]
        })
        .collect();
    Ok((rows, page.next))
}

async fn audit_rows(ui: &Ui, q: &Params) -> Result<Rows, String> {
    let Some(p) = &ui.app.persistence else {
        return Ok((Vec::new(), None));
    };
    let query = AuditQuery {
        key_hash: key_hash(ui, q).await?,
        server: param(q, "server").map(str::to_owned),
        tool: param(q, "tool").map(str::to_owned),
        outcome: param(q, "outcome").map(str::to_owned),
        from: instant(q, "from")?,
        to: instant(q, "to")?,
        after: param(q, "after").and_then(Cursor::parse),
        limit: PAGE,
    };
    let page = p
        .store
        .audit_page(&query)
        .await
        .map_err(|e| e.to_string())?;
    let rows = page
        .rows
        .iter()
        .map(|r| {
            vec![
                esc(&when(r.created_at)),
                if r.key_hash == "ui" {
                    "UI".into()
                } else {
                    key_label(ui, &r.key_hash)
                },
                esc(&r.server),
                esc(&r.tool),
                outcome_cell(&r.outcome, "ok"),
                format!("{} ms", r.duration_ms),
                format!("{} B / {} B", r.args_size, r.result_size),
                format!(
                    "<code>{}</code>",
                    esc(r.request_id.as_deref().unwrap_or(""))
                ),
            ]
        })
        .collect();
    Ok((rows, page.next))
}

pub async fn spend(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    let session = match ui.signed_in(&headers) {
        Ok(s) => s,
        Err(login) => return login,
    };
    let rows = match ui.app.persistence {
        Some(_) => Some(spend_rows(&ui, &q).await),
        None => None,
    };
    SPEND.render(&ui, &session, &q, rows)
}

pub async fn audit(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    let session = match ui.signed_in(&headers) {
        Ok(s) => s,
        Err(login) => return login,
    };
    let rows = match ui.app.persistence {
        Some(_) => Some(audit_rows(&ui, &q).await),
        None => None,
    };
    AUDIT.render(&ui, &session, &q, rows)
}
