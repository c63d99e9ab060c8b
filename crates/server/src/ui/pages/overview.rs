//! The overview: traffic, errors, latency and spend of the last hour per minute, spend
//! today, and what is configured. The numbers come from the spend log, so they cover
//! every replica writing to the same database (and nothing when spend logs are off).

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, Duration, TimeZone, Utc};
use gatehouse_store::SpendBucket;

use crate::ui::Ui;
use crate::ui::charts::{Series, bars};
use crate::ui::html::{esc, money, notice};

const MINUTES: i64 = 60;

pub async fn page(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    let session = match ui.signed_in(&headers) {
        Ok(s) => s,
        Err(login) => return login,
    };
    let now = Utc::now();
    let start = minute_floor(now) - Duration::minutes(MINUTES - 1);
    let mut body = String::new();
    let (buckets, today) = match &ui.app.persistence {
        Some(p) => {
            let midnight =
                Utc.from_utc_datetime(&now.date_naive().and_hms_opt(0, 0, 0).unwrap_or_default());
            let recent = p.store.spend_buckets(start, 60).await;
            let day = p.store.spend_buckets(midnight, 86_400).await;
            match (recent, day) {
                (Ok(r), Ok(d)) => (r, d.iter().map(|b| b.cost).sum::<f64>()),
                (Err(e), _) | (_, Err(e)) => {
                    body.push_str(&notice("error", &format!("spend log unavailable: {e}")));
                    (Vec::new(), 0.0)
                }
            }
        }
        None => {
            body.push_str(&notice(
                "warn",
                "No key store: spend and traffic are not recorded.",
            ));
            (Vec::new(), 0.0)
        }
    };
    if ui
        .app
        .config
        .general_settings
        .disable_spend_logs
        .unwrap_or(false)
    {
        body.push_str(&notice(
            "warn",
            "general_settings.disable_spend_logs is set: traffic and spend are not recorded.",
        ));
    }
    let slots = per_minute(start, &buckets);
    let requests: Vec<f64> = slots.iter().map(|b| b.requests as f64).collect();
    let errors: Vec<f64> = slots.iter().map(|b| b.errors as f64).collect();
    let spend: Vec<f64> = slots.iter().map(|b| b.cost).collect();
    let latency: Vec<f64> = slots.iter().map(|b| b.latency_ms_avg).collect();
    let labels: Vec<String> = slots
        .iter()
        .map(|b| b.start.format("%H:%M").to_string())
        .collect();

    let total: u64 = slots.iter().map(|b| b.requests).sum();
    let failed: u64 = slots.iter().map(|b| b.errors).sum();
    let last5: u64 = slots.iter().rev().take(5).map(|b| b.requests).sum();
    let avg_latency = if total == 0 {
        0.0
    } else {
        slots
            .iter()
            .map(|b| b.latency_ms_avg * b.requests as f64)
            .sum::<f64>()
            / total as f64
    };
    let status = ui.app.hub.status();
    let ready = status
        .iter()
        .filter(|s| matches!(s.state, gatehouse_mcp::hub::ServerState::Ready))
        .count();
    let cards = [
        (
            "Requests/s (5 min)",
            format!("{:.2}", last5 as f64 / 300.0),
            "rps",
        ),
        ("Requests (60 min)", total.to_string(), "requests"),
        (
            "Errors (60 min)",
            if total == 0 {
                "0".into()
            } else {
                format!("{failed} ({:.1}%)", failed as f64 * 100.0 / total as f64)
            },
            "errors",
        ),
        (
            "Avg latency (60 min)",
            format!("{avg_latency:.0} ms"),
            "latency",
        ),
        ("Spend today (UTC)", money(today), "spend-today"),
        ("Models", ui.app.router.names().len().to_string(), "models"),
        (
            "MCP servers ready",
            format!("{ready} / {}", status.len()),
            "mcp",
        ),
        (
            "Uptime",
            uptime(ui.app.started.elapsed().as_secs()),
            "uptime",
        ),
    ];
    body.push_str("<section class=\"cards\">");
    for (label, value, id) in cards {
        let _ = write!(
            body,
            "<div class=\"card\" data-card=\"{id}\"><div class=\"label\">{}</div><div class=\"value\">{}</div></div>",
            esc(label),
            esc(&value)
        );
    }
    body.push_str("</section><section class=\"charts\" data-refresh=\"15\">");
    body.push_str(&bars(&Series {
        name: "requests",
        label: "Requests per minute (errors in red)",
        values: &requests,
        overlay: Some(&errors),
        fmt: |v| format!("{v:.0}"),
        slots: &labels,
    }));
    body.push_str(&bars(&Series {
        name: "spend",
        label: "Spend per minute",
        values: &spend,
        overlay: None,
        fmt: money,
        slots: &labels,
    }));
    body.push_str(&bars(&Series {
        name: "latency",
        label: "Average latency per minute",
        values: &latency,
        overlay: None,
        fmt: |v| format!("{v:.0} ms"),
        slots: &labels,
    }));
    body.push_str("</section>");
    ui.page("Overview", "/ui", &session, &body)
}

fn minute_floor(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp() - t.timestamp().rem_euclid(60), 0).unwrap_or(t)
}

/// One bucket per minute from `start`, zeros where nothing happened.
fn per_minute(start: DateTime<Utc>, buckets: &[SpendBucket]) -> Vec<SpendBucket> {
    (0..MINUTES)
        .map(|i| {
            let at = start + Duration::minutes(i);
            buckets
                .iter()
                .find(|b| b.start == at)
                .copied()
                .unwrap_or(SpendBucket {
                    start: at,
                    requests: 0,
                    errors: 0,
                    cost: 0.0,
                    latency_ms_avg: 0.0,
                })
        })
        .collect()
}

fn uptime(secs: u64) -> String {
    match secs {
        s if s < 3600 => format!("{}m {}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}
