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
        .groups
        .group(name)
        .and_then(|g| g.first())
        .map(|d| d.provider.name)
        .unwrap_or("gatehouse");
    json!({"id": name, "object": "model", "created": 1_677_610_602, "owned_by": owned_by})
}

fn visible(state: &AppState, caller: &Caller, name: &str) -> bool {
    state
        .groups
        .group(name)
        .into_iter()
        .flatten()
        .any(|d| caller.may_use_model(name, &d.access_groups))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Json<Value> {
    let data: Vec<Value> = state
        .groups
        .names()
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
