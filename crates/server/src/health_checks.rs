//! Background health checks (`general_settings.background_health_checks`, every
//! `health_check_interval` seconds; LiteLLM's default is 300).
//!
//! Each round sends every chat deployment a one-token request through its provider
//! adapter, as a real request would go, but outside any key's accounting (probes are
//! the operator's, not a client's). A failure counts toward the deployment's cooldown
//! exactly as a failed attempt does, so a dead deployment leaves rotation before a client
//! meets it; a success ends its run of failures. The last outcome of each deployment is
//! kept for `/health`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Map, Value, json};

use crate::deployments::Deployment;
use crate::state::AppState;

/// LiteLLM's default interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(300);
/// Probes in flight at once.
const CONCURRENCY: usize = 8;
/// A probe is given at most this long (or the deployment's timeout if shorter).
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// The last probe of one deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub ok: bool,
    pub at_ms: u64,
    pub latency: Duration,
    /// Why it failed, in the gateway's words (no upstream body: it may echo secrets).
    pub error: Option<String>,
}

/// Last probe per deployment id.
#[derive(Default)]
pub struct Results(Mutex<HashMap<String, Probe>>);

impl Results {
    pub fn get(&self, deployment_id: &str) -> Option<Probe> {
        self.lock().get(deployment_id).cloned()
    }

    fn set(&self, deployment_id: &str, probe: Probe) {
        self.lock().insert(deployment_id.to_owned(), probe);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Probe>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The interval when background checks are on.
pub fn interval(config: &gatehouse_config::Config) -> Option<Duration> {
    let g = &config.general_settings;
    if g.background_health_checks != Some(true) {
        return None;
    }
    Some(
        g.health_check_interval
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Duration::from_secs_f64(s.max(1.0)))
            .unwrap_or(DEFAULT_INTERVAL),
    )
}

/// Probes every deployment now and then every `interval`; the caller owns the task.
pub fn spawn(state: Arc<AppState>, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            round(&state).await;
        }
    })
}

/// One round over every probe-able deployment.
pub async fn round(state: &AppState) {
    let deployments: Vec<Arc<Deployment>> = state
        .router
        .members()
        .map(|m| m.deployment().clone())
        .filter(|d| d.chat_probe)
        .collect();
    futures_util::stream::iter(deployments)
        .for_each_concurrent(CONCURRENCY, |d| async move {
            let started = Instant::now();
            let probe = probe(state, &d).await;
            let latency = started.elapsed();
            // A deployment that refuses the probe itself (a reasoning model rejecting
            // `max_tokens`, a prompt it will not take) answered: it is up. Only failures
            // that blame the deployment count, as for real requests.
            let probe = probe.or_else(|e| match e.failure() {
                Some(f) if !f.blames_deployment() => Ok(()),
                // The gateway's own error says nothing about the deployment.
                None => Ok(()),
                Some(_) => Err(e),
            });
            let outcome = match probe.as_ref().map_err(|e| e.failure()) {
                Err(Some(failure)) => Err(failure),
                _ => Ok(()),
            };
            state.router.checked(&d.id, outcome);
            let result = Probe {
                ok: probe.is_ok(),
                at_ms: gatehouse_router::now_ms(),
                latency,
                error: probe.err().map(|e| e.to_string()),
            };
            if !result.ok {
                tracing::warn!(deployment = %d.id, error = result.error.as_deref().unwrap_or(""), "health check failed");
            }
            metrics::counter!("gatehouse_health_checks_total", "result" => if result.ok { "ok" } else { "failed" })
                .increment(1);
            state.health_checks.set(&d.id, result);
        })
        .await;
}

async fn probe(state: &AppState, deployment: &Deployment) -> Result<(), crate::error::ApiError> {
    let mut body = Map::new();
    body.insert("model".into(), json!(deployment.model_name));
    body.insert(
        "messages".into(),
        json!([{"role": "user", "content": "ping"}]),
    );
    body.insert("max_tokens".into(), Value::from(1));
    let mut bounded = deployment.clone();
    bounded.timeout = bounded.timeout.min(PROBE_TIMEOUT);
    let request_id = format!("health-check-{}", deployment.id);
    crate::proxy::complete_one(state, &request_id, &bounded, &body)
        .await
        .map(|_| ())
}
