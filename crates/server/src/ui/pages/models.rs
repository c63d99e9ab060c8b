//! Models: each public model name, its deployments, and their passive health (what the
//! last calls did), with the routing settings that decide between them.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use crate::ui::Ui;
use crate::ui::html::{esc, table};
use crate::ui::redact::redact_url;

pub async fn page(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    let session = match ui.signed_in(&headers) {
        Ok(s) => s,
        Err(login) => return login,
    };
    let rs = &ui.app.config.router_settings;
    let mut body = format!(
        "<p class=\"meta\">Strategy <b>{}</b> · retries {} · allowed fails {} · cooldown {}</p>",
        esc(rs.routing_strategy.as_deref().unwrap_or("simple-shuffle")),
        rs.num_retries.map_or("default".into(), |n| n.to_string()),
        rs.allowed_fails.map_or("default".into(), |n| n.to_string()),
        rs.cooldown_time
            .map_or("default".into(), |s| format!("{s} s")),
    );
    if ui.app.groups.names().is_empty() {
        body.push_str(
            "<p class=\"empty\">No models: add entries to model_list in config.yaml.</p>",
        );
    }
    for name in ui.app.groups.names() {
        let deployments = ui.app.groups.group(name).unwrap_or_default();
        let rows: Vec<Vec<String>> = deployments
            .iter()
            .map(|d| {
                let failures = d.stats.consecutive_failures.load(Ordering::Relaxed);
                let health = if failures == 0 {
                    "<span class=\"ok\">healthy</span>".to_string()
                } else {
                    format!("<span class=\"bad\">failing ({failures} in a row)</span>")
                };
                vec![
                    esc(&d.id),
                    esc(d.provider.name),
                    esc(&d.upstream_model),
                    esc(&redact_url(&d.api_base)),
                    format!("{}", d.weight),
                    d.stats.successes.load(Ordering::Relaxed).to_string(),
                    d.stats.failures.load(Ordering::Relaxed).to_string(),
                    health,
                ]
            })
            .collect();
        let _ = write!(
            body,
            "<section class=\"group\" data-model=\"{n}\"><h2>{n}</h2>{}</section>",
            table(
                &[
                    "deployment",
                    "provider",
                    "upstream model",
                    "api base",
                    "weight",
                    "ok",
                    "failed",
                    "health"
                ],
                &rows,
                "no deployments",
            ),
            n = esc(name),
        );
    }
    ui.page("Models", "/ui/models", &session, &body)
}
