//! `POST /v1/embeddings`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::response::Response;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::pipeline::{self, attempts};
use crate::proxy::{Endpoint, forward_one};
use crate::request::{ModelRequest, RequestId, read_model_request};
use crate::state::AppState;
use gatehouse_config::cache::CallType;

pub async fn embeddings(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let ModelRequest {
        mut body,
        model,
        len,
    } = read_model_request(&state.settings, body, || ApiError::InvalidParam {
        message: "you must provide a model parameter".into(),
        param: "model",
    })
    .await?;
    if !body.contains_key("input") {
        return Err(ApiError::InvalidParam {
            message: "'input' is a required property".into(),
            param: "input",
        });
    }
    let route = pipeline::route(&state, &caller, &headers, &model, &body, len)?;
    // The group it goes to (a routing rule may have chosen another): its spend row's model.
    let group = route.model.clone();
    let cached = crate::cache::lookup(&state, &route, CallType::Embeddings, &headers, &mut body)?;
    let rest = async {
        let routed =
            attempts(&state, &route, |d| {
                let (state, request_id, body) = (&state, &request_id, &body);
                async move {
                    forward_one(state, request_id, &d, body, false, Endpoint::Embeddings).await
                }
            })
            .await?;
        Ok(routed.into_response())
    };
    let handler = pipeline::cache(&state, cached, rest);
    crate::spend::account(&state, &caller, &request_id, &group, handler).await
}
