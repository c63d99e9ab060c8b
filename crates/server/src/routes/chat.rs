//! `POST /v1/chat/completions`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use crate::auth::Caller;
use crate::cache;
use crate::error::ApiError;
use crate::pipeline::{self, attempts};
use crate::proxy::{Endpoint, forward_one};
use crate::request::{ModelRequest, RequestId, read_model_request};
use crate::state::AppState;
use crate::{spend, tools};
use gatehouse_config::cache::CallType;

pub async fn chat_completions(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
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
    match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err(ApiError::InvalidParam {
                message: "'messages' must contain at least one message".into(),
                param: "messages",
            });
        }
        _ => {
            return Err(ApiError::InvalidParam {
                message: "'messages' is a required property and must be an array".into(),
                param: "messages",
            });
        }
    }
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let route = pipeline::route(&state, &caller, &headers, &model, &body, len)?;
    // The group it goes to (a routing rule may have chosen another): its spend row's model.
    let group = route.model.clone();
    tracing::debug!(model = %model, stream, key = %caller.key_id, "chat completion");
    let record_id = request_id.clone();
    let cached = cache::lookup(
        &state,
        &route,
        CallType::ChatCompletions,
        &headers,
        &mut body,
    )?;
    let rest = async {
        let attached = tools::attachments(
            &state.hub,
            &caller.mcp(),
            &headers,
            &mut body,
            &route.mcp_servers,
        )?;
        if !attached.is_empty() {
            return tools::run(state.clone(), &caller, request_id, route, body, attached).await;
        }
        let routed = attempts(&state, &route, |d| {
            let (state, request_id, body) = (&state, &request_id, &body);
            async move {
                forward_one(
                    state,
                    request_id,
                    &d,
                    body,
                    stream,
                    Endpoint::ChatCompletions,
                )
                .await
            }
        })
        .await?;
        Ok(routed.into_response())
    };
    let handler = pipeline::cache(&state, cached, rest);
    spend::account(&state, &caller, &record_id, &group, handler).await
}
