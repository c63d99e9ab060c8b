//! MCP servers: their state, restarts and tools; a server's tools with their schemas and
//! a "try it" form per tool (generated from its input schema) that calls the tool through
//! the hub, as the master key, and shows the result. Each call is written to the
//! tool-call audit with the key `ui`.

use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use gatehouse_mcp::hub::ServerState;
use serde_json::Value;

use crate::ui::html::{csrf_field, esc, notice, table, url_param};
use crate::ui::session::Session;
use crate::ui::{FormFields, Ui, field, schema_form};

/// A tool tried from the UI gets this long.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn state_cell(state: &ServerState) -> String {
    match state {
        ServerState::Ready => "<span class=\"ok\">ready</span>".into(),
        ServerState::Starting => "<span class=\"warn\">starting</span>".into(),
        ServerState::Stopped => "<span class=\"warn\">stopped</span>".into(),
        ServerState::Failed { reason } => {
            format!(
                "<span class=\"bad\">failed</span> <small>{}</small>",
                esc(reason)
            )
        }
    }
}

pub async fn list(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    let session = match ui.signed_in(&headers) {
        Ok(s) => s,
        Err(login) => return login,
    };
    let rows: Vec<Vec<String>> = ui
        .app
        .hub
        .status()
        .iter()
        .map(|s| {
            vec![
                format!(
                    "<a href=\"/ui/mcp/{}\">{}</a>",
                    url_param(&s.name),
                    esc(&s.name)
                ),
                esc(s.transport),
                state_cell(&s.state),
                s.restarts.to_string(),
                s.tools.to_string(),
                esc(s.protocol_version.as_deref().unwrap_or("")),
                s.pid.map(|p| p.to_string()).unwrap_or_default(),
            ]
        })
        .collect();
    let body = table(
        &[
            "server",
            "transport",
            "status",
            "restarts",
            "tools",
            "protocol",
            "pid",
        ],
        &rows,
        "No MCP servers: add mcp_servers to config.yaml.",
    );
    ui.page("MCP servers", "/ui/mcp", &session, &body)
}

pub async fn server(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let session = match ui.signed_in(&headers) {
        Ok(s) => s,
        Err(login) => return login,
    };
    render_server(&ui, &session, &name, None).await
}

/// A tool call's outcome, shown above the tools.
struct Tried {
    tool: String,
    outcome: Result<Value, String>,
    ms: u128,
}

async fn render_server(ui: &Ui, session: &Session, name: &str, tried: Option<Tried>) -> Response {
    let Some(server) = ui.app.hub.resolve(name) else {
        let body = notice("error", &format!("No MCP server named {name}."));
        let mut r = ui.page("MCP server", "/ui/mcp", session, &body);
        *r.status_mut() = StatusCode::NOT_FOUND;
        return r;
    };
    let mut body = String::new();
    if let Some(status) = ui.app.hub.status().iter().find(|s| s.name == server) {
        let _ = write!(
            body,
            "<p class=\"meta\">{} · {} · restarts {} · protocol {}</p>",
            esc(status.transport),
            state_cell(&status.state),
            status.restarts,
            esc(status.protocol_version.as_deref().unwrap_or("?"))
        );
    }
    let tried_tool = tried.as_ref().map(|t| t.tool.clone());
    if let Some(t) = tried {
        body.push_str(&result_html(&t));
    }
    match ui.app.hub.list_tools(&server).await {
        Ok(tools) if tools.is_empty() => {
            body.push_str("<p class=\"empty\">This server offers no tools.</p>")
        }
        Ok(tools) => {
            for tool in tools {
                let schema = serde_json::to_string_pretty(&tool.input_schema).unwrap_or_default();
                let open = if tried_tool.as_deref() == Some(tool.name.as_str()) {
                    " open"
                } else {
                    ""
                };
                let _ = write!(
                    body,
                    "<details class=\"tool\" data-tool=\"{n}\"{open}><summary><b>{n}</b> <span>{d}</span></summary>\
                     <details class=\"schema\"><summary>Input schema</summary><pre>{s}</pre></details>\
                     <form method=\"post\" action=\"/ui/mcp/{server_url}/call\" class=\"try\">{csrf}\
                     <input type=\"hidden\" name=\"tool\" value=\"{n}\">{fields}\
                     <button type=\"submit\">Try it</button></form></details>",
                    n = esc(&tool.name),
                    d = esc(tool.description.as_deref().unwrap_or("")),
                    s = esc(&schema),
                    server_url = url_param(&server),
                    csrf = csrf_field(&session.csrf),
                    fields = schema_form::render(&tool.input_schema),
                );
            }
        }
        Err(e) => body.push_str(&notice("error", &format!("cannot list tools: {e}"))),
    }
    ui.page(&format!("MCP server {server}"), "/ui/mcp", session, &body)
}

fn result_html(t: &Tried) -> String {
    match &t.outcome {
        Err(e) => format!(
            "<section class=\"result bad\" data-result=\"error\"><h2>{} failed ({} ms)</h2><pre>{}</pre></section>",
            esc(&t.tool),
            t.ms,
            esc(e)
        ),
        Ok(result) => {
            let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
            let texts: Vec<&str> = result
                .get("content")
                .and_then(Value::as_array)
                .map(|c| {
                    c.iter()
                        .filter_map(|b| b.get("text").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "<section class=\"result{}\" data-result=\"{}\"><h2>{} answered in {} ms{}</h2>\
                 <pre class=\"text\">{}</pre><details><summary>Full result</summary><pre>{}</pre></details></section>",
                if is_error { " bad" } else { "" },
                if is_error { "tool-error" } else { "ok" },
                esc(&t.tool),
                t.ms,
                if is_error {
                    " (the tool reported an error)"
                } else {
                    ""
                },
                esc(&texts.join("\n")),
                esc(&serde_json::to_string_pretty(result).unwrap_or_default()),
            )
        }
    }
}

pub async fn call(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<FormFields>,
) -> Response {
    let session = match ui.form_session(&headers, &form) {
        Ok(s) => s,
        Err(refused) => return refused,
    };
    let Some(server) = ui.app.hub.resolve(&name) else {
        return (StatusCode::NOT_FOUND, "unknown MCP server").into_response();
    };
    let tool_name = field(&form, "tool").unwrap_or_default().to_string();
    let schema = match ui.app.hub.list_tools(&server).await {
        Ok(tools) => tools
            .into_iter()
            .find(|t| t.name == tool_name)
            .map(|t| t.input_schema),
        Err(e) => {
            let tried = Tried {
                tool: tool_name,
                outcome: Err(e.to_string()),
                ms: 0,
            };
            return render_server(&ui, &session, &server, Some(tried)).await;
        }
    };
    let Some(schema) = schema else {
        let tried = Tried {
            tool: tool_name,
            outcome: Err("no such tool".into()),
            ms: 0,
        };
        return render_server(&ui, &session, &server, Some(tried)).await;
    };
    let started = Instant::now();
    let outcome = match schema_form::arguments(&schema, &form) {
        Err(e) => Err(e),
        Ok(args) => {
            let args_size = args.to_string().len();
            let result = ui
                .app
                .hub
                .call_tool(&server, &tool_name, args, Some(CALL_TIMEOUT))
                .await
                .map_err(|e| e.to_string());
            audit(
                &ui,
                &server,
                &tool_name,
                &result,
                args_size,
                started.elapsed(),
            );
            result
        }
    };
    let tried = Tried {
        tool: tool_name,
        outcome,
        ms: started.elapsed().as_millis(),
    };
    render_server(&ui, &session, &server, Some(tried)).await
}

fn audit(
    ui: &Ui,
    server: &str,
    tool: &str,
    result: &Result<Value, String>,
    args_size: usize,
    took: Duration,
) {
    let Some(p) = &ui.app.persistence else { return };
    let (outcome, result_size) = match result {
        Ok(v) if v.get("isError").and_then(Value::as_bool) == Some(true) => {
            ("error", v.to_string().len())
        }
        Ok(v) => ("ok", v.to_string().len()),
        Err(_) => ("error", 0),
    };
    p.spend.try_audit(gatehouse_store::AuditRow {
        key_hash: "ui".into(),
        request_id: None,
        server: server.into(),
        tool: tool.into(),
        duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        outcome: outcome.into(),
        args_size: args_size as u64,
        result_size: result_size as u64,
        created_at: chrono::Utc::now(),
    });
}
