//! `GET /v1/models` and `GET /v1/models/{model}`: only what the caller's key may use.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, State};
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;

fn model_object(state: &AppState, name: &str) -> Value {
    let owned_by = state
        .router
        .resolve(name)
        .and_then(|r| {
            r.group
                .members
                .first()
                .map(|m| m.deployment().provider.name)
        })
        .unwrap_or("gatehouse");
    json!({"id": name, "object": "model", "created": 1_677_610_602, "owned_by": owned_by})
}

fn visible(state: &AppState, caller: &Caller, name: &str) -> bool {
    crate::pipeline::may_use_group(state, caller, name)
}

/// Listed: exact groups in config order, aliases not marked hidden, and wildcard routes
/// as their pattern (`openai/*`: a client sees that any `openai/<model>` is served).
fn listed(state: &AppState) -> Vec<String> {
    let settings = state.router.settings();
    let mut names: Vec<String> = state.router.names().to_vec();
    let mut aliases: Vec<&String> = settings
        .model_group_alias
        .keys()
        .filter(|a| !settings.hidden_aliases.contains(a))
        .collect();
    aliases.sort();
    names.extend(aliases.into_iter().cloned());
    names.extend(state.router.wildcard_names().map(str::to_owned));
    names
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    let data: Vec<Value> = listed(&state)
        .iter()
        .filter(|name| visible(&state, &caller, name))
        .map(|name| model_object(&state, name))
        .collect();
    Json(json!({"object": "list", "data": data}))
}

pub async fn get(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(model): Path<String>,
) -> Result<Json<Value>, ApiError> {
    if visible(&state, &caller, &model) {
        Ok(Json(model_object(&state, &model)))
    } else {
        Err(ApiError::ModelNotFound(format!(
            "model '{model}' does not exist"
        )))
    }
}
