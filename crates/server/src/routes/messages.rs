//! `POST /v1/messages` (also `?beta=true`, as Claude Code calls it) and
//! `POST /v1/messages/count_tokens`: the Anthropic Messages API in front of every
//! provider.
//!
//! - Anthropic deployments get the client's body with only `model` rewritten, and the
//!   client's `anthropic-version` / `anthropic-beta` headers unchanged; the answer (JSON
//!   or SSE) comes back byte for byte.
//! - Any other deployment: `messages_in::to_chat` → one chat round → `from_chat`, or for
//!   a stream, chat chunks → `MessagesStreamWriter`.
//!
//! Every error — the gateway's own included — is answered in Anthropic's shape.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use gatehouse_config::Dialect;
use gatehouse_llm::anthropic::MESSAGES_PATH;
use gatehouse_llm::messages_in::{self, MessagesContext, MessagesStreamWriter};
use gatehouse_llm::openai::ChatCompletion;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::deployments::Deployment;
use crate::dialects::usage::{self, Shape};
use crate::dialects::{chunks, errors, sse};
use crate::error::ApiError;
use crate::pipeline::{self, Route};
use crate::providers::json_response;
use crate::proxy;
use crate::request::{ModelRequest, RequestId, read_model_request};
use crate::state::AppState;
use crate::upstream::send::{UpstreamCall, send};
use crate::upstream::stream::{first_data, first_event_is_error, peek};
use crate::{spend, tools};

const COUNT_TOKENS_PATH: &str = "/v1/messages/count_tokens";
/// Client headers an Anthropic upstream gets unchanged.
const FORWARDED: &[&str] = &["anthropic-version", "anthropic-beta"];

pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (mut body, model, len) = match read(&state, body).await {
        Ok(read) => read,
        Err(err) => return errors::anthropic_response(&err),
    };
    let route = match pipeline::route(&state, &caller, &headers, &model, &body, len) {
        Ok(route) => route,
        Err(err) => return errors::anthropic_response(&err),
    };
    // The group it goes to (a routing rule may have chosen another): its spend row's model.
    let group = route.model.clone();
    let cached = match crate::cache::lookup(
        &state,
        &route,
        gatehouse_config::cache::CallType::Messages,
        &headers,
        &mut body,
    ) {
        Ok(cached) => cached,
        Err(err) => return errors::anthropic_response(&err),
    };
    let rest = create_inner(&state, &caller, &request_id, &headers, body, route);
    let handler = pipeline::cache(&state, cached, rest);
    match spend::account(&state, &caller, &request_id, &group, handler).await {
        Ok(response) => response,
        Err(err) => errors::anthropic_response(&err),
    }
}

pub async fn count_tokens(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match count_inner(&state, &caller, &request_id, &headers, body).await {
        Ok(response) => response,
        Err(err) => errors::anthropic_response(&err),
    }
}

async fn read(
    state: &AppState,
    body: Body,
) -> Result<(Map<String, Value>, String, usize), ApiError> {
    let ModelRequest { body, model, len } = read_model_request(&state.settings, body, || {
        ApiError::BadRequest("model: Field required".into())
    })
    .await?;
    if !matches!(body.get("messages"), Some(Value::Array(_))) {
        return Err(ApiError::BadRequest("messages: Field required".into()));
    }
    Ok((body, model, len))
}

fn forwarded_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    FORWARDED
        .iter()
        .filter_map(|name| {
            let value = headers.get(*name)?.clone();
            Some((HeaderName::from_static(name), value))
        })
        .collect()
}

async fn create_inner(
    state: &Arc<AppState>,
    caller: &Caller,
    request_id: &str,
    headers: &HeaderMap,
    body: Map<String, Value>,
    route: Route,
) -> Result<Response, ApiError> {
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let model = route.model.clone();
    tracing::debug!(model = %model, stream, key = %caller.key_id, "messages");
    if !route.mcp_servers.is_empty() || headers.contains_key("x-mcp-servers") {
        let mut no_tools = Map::new();
        let attached = tools::attachments(
            &state.hub,
            &caller.mcp(),
            headers,
            &mut no_tools,
            &route.mcp_servers,
        )?;
        if !attached.is_empty() {
            return with_mcp(state, caller, request_id, route, &body, stream, attached).await;
        }
    }
    let forward = forwarded_headers(headers);
    let routed = pipeline::attempts(state, &route, |d| {
        let (body, forward, model) = (&body, &forward, &model);
        async move {
            if d.provider.dialect == Dialect::Anthropic {
                passthrough(state, request_id, &d, body, stream, forward).await
            } else {
                translated(state, request_id, &d, body, model, stream).await
            }
        }
    })
    .await?;
    Ok(routed.into_response())
}

/// The client's body with the model name mapped, for an Anthropic deployment.
fn upstream_body(
    state: &AppState,
    deployment: &Deployment,
    body: &Map<String, Value>,
) -> Result<Bytes, ApiError> {
    let mut body = body.clone();
    body.insert("model".into(), json!(deployment.upstream_model));
    for key in &state.settings.additional_drop_params {
        body.remove(key);
    }
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

async fn passthrough(
    state: &AppState,
    request_id: &str,
    deployment: &Arc<Deployment>,
    body: &Map<String, Value>,
    stream: bool,
    forward: &[(HeaderName, HeaderValue)],
) -> Result<Response, ApiError> {
    let call = UpstreamCall {
        deployment,
        path: MESSAGES_PATH,
        body: upstream_body(state, deployment, body)?,
        stream,
        request_id,
        forward_headers: forward.to_vec(),
    };
    let response = send(&state.http, &call).await.map_err(anthropic_kind)?;
    if stream {
        let idle = deployment.stream_timeout.unwrap_or(deployment.timeout);
        let upstream = peek(response.bytes_stream(), idle, |first| {
            let data = first_data(first).filter(|_| first_event_is_error(first))?;
            let kind = gatehouse_llm::anthropic::map_error(500, data).kind;
            Some(ApiError::Upstream {
                status: StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::BAD_GATEWAY),
                kind,
                body: Bytes::copy_from_slice(data),
                retry_after: None,
            })
        })
        .await?;
        let relayed = sse::relay_anthropic(upstream, idle);
        let body = Body::from_stream(usage::tap(Shape::Anthropic, relayed));
        return Ok(sse::response(body));
    }
    let bytes = crate::upstream::send::read_answer(response).await?;
    usage::record_body(Shape::Anthropic, &bytes);
    Ok(json_response(StatusCode::OK, bytes))
}

/// An Anthropic upstream's error, classified by Anthropic's rules; its body goes to the
/// (Anthropic) client unchanged.
fn anthropic_kind(err: ApiError) -> ApiError {
    match err {
        ApiError::Upstream {
            status,
            body,
            retry_after,
            ..
        } => ApiError::Upstream {
            kind: gatehouse_llm::anthropic::map_error(status.as_u16(), &body).kind,
            status,
            body,
            retry_after,
        },
        other => other,
    }
}

async fn translated(
    state: &AppState,
    request_id: &str,
    deployment: &Arc<Deployment>,
    body: &Map<String, Value>,
    model: &str,
    stream: bool,
) -> Result<Response, ApiError> {
    let (chat_body, ctx) = chat_body(body)?;
    let mut response = if stream {
        let chunks = chunks::open(state, request_id, deployment, &chat_body).await?;
        let events = chunks::encode(chunks, MessagesStreamWriter::new(model));
        sse::response(Body::from_stream(events))
    } else {
        let value = proxy::complete_one(state, request_id, deployment, &chat_body).await?;
        let completion: ChatCompletion = serde_json::from_value(value).map_err(|e| {
            ApiError::UpstreamUnreachable(format!("unexpected chat answer from the upstream: {e}"))
        })?;
        let message = messages_in::from_chat(&completion, model);
        json_response(StatusCode::OK, Bytes::from(message.to_string()))
    };
    if !ctx.dropped_tools.is_empty()
        && let Ok(value) = HeaderValue::from_str(&ctx.dropped_tools.join(","))
    {
        response
            .headers_mut()
            .insert("x-gatehouse-dropped-tools", value);
    }
    Ok(response)
}

/// The Messages body as a chat body for the same public model.
fn chat_body(body: &Map<String, Value>) -> Result<(Map<String, Value>, MessagesContext), ApiError> {
    let (chat, ctx) = messages_in::to_chat(&Value::Object(body.clone()))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if !ctx.dropped_tools.is_empty() || !ctx.ignored.is_empty() {
        tracing::debug!(dropped_tools = ?ctx.dropped_tools, ignored = ?ctx.ignored, "messages request mapped to chat");
    }
    match serde_json::to_value(&chat) {
        Ok(Value::Object(map)) => Ok((map, ctx)),
        _ => Err(ApiError::Internal("chat request did not serialize".into())),
    }
}

/// MCP servers attached by the `x-mcp-servers` header or the model's
/// `model_info.mcp_servers`: the gateway's tool loop (the one chat completions use) runs
/// the tools, whatever the provider, and the client gets the final answer. A streamed
/// request gets that answer told as a Messages stream once the tools have run.
async fn with_mcp(
    state: &Arc<AppState>,
    caller: &Caller,
    request_id: &str,
    route: Route,
    body: &Map<String, Value>,
    stream: bool,
    attached: Vec<tools::AttachedServer>,
) -> Result<Response, ApiError> {
    let model = route.model.clone();
    let (mut chat, _) = chat_body(body)?;
    chat.remove("stream");
    chat.remove("stream_options");
    let completion = tools::complete(
        state.clone(),
        caller,
        request_id.to_owned(),
        route,
        chat,
        attached,
    )
    .await?
    .completion;
    let model = model.as_str();
    if !stream {
        let message = messages_in::from_chat(&completion, model);
        return Ok(json_response(
            StatusCode::OK,
            Bytes::from(message.to_string()),
        ));
    }
    let mut writer = MessagesStreamWriter::new(model);
    let mut out = Vec::new();
    for chunk in gatehouse_llm::openai::completion_chunks(completion) {
        out.extend(writer.push(&chunk));
    }
    out.extend(writer.finish());
    Ok(sse::response(Body::from(out)))
}

async fn count_inner(
    state: &Arc<AppState>,
    caller: &Caller,
    request_id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (body, model, len) = read(state, body).await?;
    // Counting is free, so it is not routed: an Anthropic deployment of the group counts,
    // else the estimate answers. It still runs under the key's limits (it may call the
    // upstream) and leaves a $0 row, like every model request.
    let route = pipeline::route(state, caller, headers, &model, &body, len)?;
    let group = route.model.clone();
    let counted = count(state, request_id, headers, &body, &route);
    spend::account(state, caller, request_id, &group, counted).await
}

async fn count(
    state: &Arc<AppState>,
    request_id: &str,
    headers: &HeaderMap,
    body: &Map<String, Value>,
    route: &Route,
) -> Result<Response, ApiError> {
    let anthropic = state.router.resolve(&route.model).and_then(|r| {
        r.group
            .members
            .iter()
            .map(|m| m.deployment())
            .find(|d| d.provider.dialect == Dialect::Anthropic)
            .cloned()
    });
    if let Some(deployment) = anthropic {
        let deployment = deployment.as_ref();
        let call = UpstreamCall {
            deployment,
            path: COUNT_TOKENS_PATH,
            body: upstream_body(state, deployment, body)?,
            stream: false,
            request_id,
            forward_headers: forwarded_headers(headers),
        };
        let bytes = crate::upstream::send::read_answer(send(&state.http, &call).await?).await?;
        return Ok(json_response(StatusCode::OK, bytes));
    }
    let tokens = messages_in::estimate_tokens(body);
    let mut response = json_response(
        StatusCode::OK,
        Bytes::from(json!({ "input_tokens": tokens }).to_string()),
    );
    response.headers_mut().insert(
        "x-gatehouse-token-estimate",
        HeaderValue::from_static("true"),
    );
    Ok(response)
}
