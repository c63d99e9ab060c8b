//! Liveness (no key), readiness, per-deployment health, and Prometheus metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::state::AppState;

/// LiteLLM answers its liveness probe with this exact string; monitors match on it.
pub async fn liveliness() -> Json<&'static str> {
    Json("I'm alive!")
}

/// Ready to serve: it is, even with the database or Redis down (keys from memory, spend
/// spooled, limits local), so a load balancer keeps sending traffic; the body says what
/// is degraded. LiteLLM's `db` and `cache` fields keep their meaning.
pub async fn readiness(State(state): State<Arc<AppState>>) -> Json<Value> {
    let shared = shared_state(&state);
    let degraded = shared["degraded"].as_bool().unwrap_or(false);
    Json(json!({
        "status": if degraded { "degraded" } else { "healthy" },
        "db": shared["database"]["status"],
        "cache": shared["redis"]["status"],
        "shared_state": shared,
        "gatehouse_version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
    }))
}

/// What this replica shares with the others and whether it can reach it: the database
/// (keys, spend) and Redis (rate limits, cooldowns). No hosts or URLs: any key may read it.
pub fn shared_state(state: &AppState) -> Value {
    let database = match &state.persistence {
        None => json!({"status": "not connected"}),
        Some(p) => {
            let failures = p.keys.consecutive_failures();
            let writer = p.spend.stats();
            json!({
                "status": if failures == 0 { "connected" } else { "unreachable" },
                "backend": p.store.backend(),
                "key_refresh_failures": failures,
                "keys": p.keys.len(),
                "spend_rows_spooled": writer.spooled,
                "spend_rows_dropped": writer.dropped,
            })
        }
    };
    let redis = match state.limiter.redis_up() {
        None => json!({"status": null, "limits": "local"}),
        Some(true) => json!({"status": "connected", "limits": "shared"}),
        Some(false) => json!({"status": "unreachable", "limits": "local"}),
    };
    let degraded = database["status"] == "unreachable" || redis["status"] == "unreachable";
    json!({"degraded": degraded, "database": database, "redis": redis})
}

/// Per-deployment status from the router's tracking of real traffic and, when they are on,
/// background health checks (a deployment cooling down, or whose last call or probe
/// failed, is unhealthy), plus the MCP servers' states —
/// for the master key (and local mode). Details name upstream hosts and MCP commands, so a
/// virtual key gets only the overall status. URLs are printed without their credentials.
pub async fn health(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    let now = gatehouse_router::now_ms();
    if !caller.is_admin {
        let degraded = state.router.members().any(|m| {
            let stats = m.stats();
            stats.is_cooling(now) || stats.consecutive_failures() > 0
        });
        let shared = shared_state(&state);
        let degraded = degraded || shared["degraded"].as_bool().unwrap_or(false);
        return Json(json!({
            "status": if degraded { "degraded" } else { "healthy" },
            "shared_state": shared,
            "config": config_info(&state, false),
            "detail": "per-deployment and MCP server details need the master key",
        }));
    }
    let mut healthy = Vec::new();
    let mut unhealthy = Vec::new();
    for member in state.router.members() {
        let (d, stats) = (member.deployment(), member.stats());
        let cooling = stats.is_cooling(now);
        let entry = json!({
            "model": d.model_name,
            "model_id": d.id,
            "provider": d.provider.name,
            "api_base": gatehouse_config::redact::url(&d.api_base),
            "successes": stats.successes(),
            "failures": stats.failures(),
            "consecutive_failures": stats.consecutive_failures(),
            "in_flight": stats.in_flight(),
            "latency_ms": stats.latency().map(|l| l.as_secs_f64() * 1e3),
            "cooldown_remaining_s": cooling
                .then(|| (stats.cooldown_until_ms() - now) as f64 / 1e3),
            "last_health_check": state.health_checks.get(&d.id).map(|p| json!({
                "ok": p.ok,
                "seconds_ago": now.saturating_sub(p.at_ms) as f64 / 1e3,
                "latency_ms": p.latency.as_secs_f64() * 1e3,
                "error": p.error,
            })),
        });
        if !cooling && stats.consecutive_failures() == 0 {
            healthy.push(entry);
        } else {
            unhealthy.push(entry);
        }
    }
    let mcp: Vec<Value> = state.hub.status().iter().map(mcp_status).collect();
    Json(json!({
        "healthy_endpoints": healthy,
        "unhealthy_endpoints": unhealthy,
        "healthy_count": healthy.len(),
        "unhealthy_count": unhealthy.len(),
        "mcp_servers": mcp,
        "background_health_checks": crate::health_checks::interval(&state.config)
            .map(|every| json!({"interval_s": every.as_secs_f64()})),
        "cache": state.cache.as_ref().map(|c| c.health()),
        "shared_state": shared_state(&state),
        "config": config_info(&state, true),
    }))
}

/// The config being served: its file's hash and load time, and the reloads so far. Why
/// the last reload was refused (it quotes the config) only for the master key.
fn config_info(state: &AppState, admin: bool) -> Value {
    use std::sync::atomic::Ordering;
    let r = &state.reloads;
    let mut info = json!({
        "hash": state.loaded.sha256,
        "loaded_at": state.loaded.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "reloads": r.succeeded.load(Ordering::Relaxed),
        "failed_reloads": r.failed.load(Ordering::Relaxed),
    });
    if admin {
        gatehouse_llm::json::set(
            &mut info,
            "last_reload_error",
            json!(
                r.last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
            ),
        );
    }
    info
}

fn mcp_status(s: &gatehouse_mcp::hub::ServerStatus) -> Value {
    use gatehouse_mcp::hub::ServerState;
    let (status, reason) = match &s.state {
        ServerState::Stopped => ("stopped", None),
        ServerState::Starting => ("starting", None),
        ServerState::Ready => ("ready", None),
        ServerState::Failed { reason } => ("failed", Some(gatehouse_config::redact::text(reason))),
    };
    json!({
        "name": s.name,
        "transport": s.transport,
        "status": status,
        "reason": reason,
        "restarts": s.restarts,
        "tools": s.tools,
        "protocol_version": s.protocol_version,
        "pid": s.pid,
    })
}

/// Prometheus metrics, for the master key: they name every model group, MCP server and
/// routing rule, and show everyone's traffic.
pub async fn metrics(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if !caller.is_admin {
        return crate::error::ApiError::Forbidden("/metrics needs the master key".into())
            .into_response();
    }
    if let Some(p) = &state.persistence {
        // Read at scrape time: these are states, not events.
        let writer = p.spend.stats();
        metrics::gauge!("gatehouse_spend_spooled_rows").set(writer.spooled as f64);
        metrics::gauge!("gatehouse_db_key_refresh_failures")
            .set(p.keys.consecutive_failures() as f64);
        // What keeping the key cache current costs (spend moves without re-reads).
        let cache = p.keys.activity();
        metrics::counter!("gatehouse_key_cache_reads_total").absolute(cache.reads);
        metrics::counter!("gatehouse_key_cache_rows_read_total").absolute(cache.rows_read);
        metrics::counter!("gatehouse_key_spend_updates_total").absolute(cache.spend_updates);
    }
    match &state.metrics {
        Some(handle) => {
            let mut response = handle.render().into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        None => (StatusCode::NOT_FOUND, "metrics are disabled").into_response(),
    }
}
