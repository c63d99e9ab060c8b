//! Models: each public model name, its deployments, and what the router knows of them
//! (calls that succeeded and failed, requests in flight, latency, cooldowns), under the
//! routing settings that decide between them.

use std::fmt::Write;
use std::sync::Arc;

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
    let router = &ui.app.router;
    let rs = router.settings();
    let mut body = format!(
        "<p class=\"meta\">Strategy <b>{}</b> · retries {} · allowed fails {} per minute · cooldown {} s · {} fallback rules</p>",
        esc(rs.strategy.name()),
        rs.num_retries,
        rs.allowed_fails,
        rs.cooldown.as_secs(),
        rs.fallbacks.len() + rs.context_window_fallbacks.len() + rs.content_policy_fallbacks.len(),
    );
    if router.names().is_empty() {
        body.push_str(
            "<p class=\"empty\">No models: add entries to model_list in config.yaml.</p>",
        );
    }
    let now = gatehouse_router::now_ms();
    for name in router.names() {
        let Some(group) = router.group(name) else {
            continue;
        };
        let rows: Vec<Vec<String>> = group
            .members
            .iter()
            .map(|m| {
                let (d, stats, spec) = (m.deployment(), m.stats(), m.spec());
                let failing = stats.consecutive_failures();
                let health = if stats.is_cooling(now) {
                    format!(
                        "<span class=\"bad\">cooling down ({:.0} s left)</span>",
                        stats.cooldown_until_ms().saturating_sub(now) as f64 / 1e3
                    )
                } else if failing > 0 {
                    format!("<span class=\"bad\">failing ({failing} in a row)</span>")
                } else {
                    "<span class=\"ok\">healthy</span>".to_string()
                };
                vec![
                    esc(&d.id),
                    esc(d.provider.name),
                    esc(&d.upstream_model),
                    esc(&redact_url(&d.api_base)),
                    spec.weight.map(|w| w.to_string()).unwrap_or_default(),
                    spec.order.map(|o| o.to_string()).unwrap_or_default(),
                    stats.successes().to_string(),
                    stats.failures().to_string(),
                    stats.in_flight().to_string(),
                    stats
                        .latency()
                        .map(|l| format!("{:.0} ms", l.as_secs_f64() * 1e3))
                        .unwrap_or_default(),
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
                    "order",
                    "ok",
                    "failed",
                    "in flight",
                    "latency",
                    "health",
                ],
                &rows,
                "no deployments",
            ),
            n = esc(name),
        );
    }
    ui.page("Models", "/ui/models", &session, &body)
}
