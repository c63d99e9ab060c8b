//! `GET /v1/models` and `GET /v1/models/{id}`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::{self, ApiError};
use crate::respond;
use crate::state::Shared;

/// Listed when no allow-list is configured.
const DEFAULT_MODELS: [&str; 4] = [
    "gpt-4o",
    "gpt-4o-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
];

fn model(id: &str) -> Value {
    json!({"id": id, "object": "model", "created": 1_686_935_002u64, "owned_by": "openai"})
}

fn names(shared: &Shared) -> Vec<&str> {
    match &shared.opts.models {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => DEFAULT_MODELS.to_vec(),
    }
}

pub(crate) async fn list(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(err) = errors::check_auth(shared.opts.api_key.as_deref(), &headers) {
        return err.into_response();
    }
    let data: Vec<Value> = names(&shared).into_iter().map(model).collect();
    respond::json(200, &json!({"object": "list", "data": data}), &[])
}

pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(err) = errors::check_auth(shared.opts.api_key.as_deref(), &headers) {
        return err.into_response();
    }
    let known = shared.opts.models.is_none() || names(&shared).contains(&id.as_str());
    if known {
        return respond::json(200, &model(&id), &[]);
    }
    ApiError {
        status: 404,
        message: format!("The model '{id}' does not exist"),
        kind: "invalid_request_error",
        param: Some("model".to_owned()),
        code: Some("model_not_found"),
        retry_after_secs: None,
    }
    .into_response()
}
