//! `POST /v1/responses` (and `/responses`), `GET`/`DELETE /v1/responses/{id}`: the
//! OpenAI Responses API (what Codex CLI speaks) in front of every provider.
//!
//! - Deployments of provider `openai` (which serve Responses themselves) get the body
//!   with only `model` rewritten; the answer comes back byte for byte. Such responses are
//!   stored by OpenAI, not here.
//! - Every other deployment: `responses::to_chat` → one chat round → `from_chat`, or for
//!   a stream, chat chunks → `ResponsesStreamWriter`. Namespace tools (Codex's MCP tools)
//!   are flattened for the provider and split back into `name` + `namespace`; hosted
//!   tools the provider cannot run are dropped and named in `x-gatehouse-dropped-tools`.
//! - `store` (default true, as OpenAI's) keeps translated answers in the bounded
//!   [`crate::dialects::store`], so `previous_response_id` chains and `GET`/`DELETE` work.
//! - `tools: [{"type": "mcp", "server_label": ...}]` runs the gateway's MCP tool loop
//!   (the one chat completions use) and reports `mcp_list_tools` and `mcp_call` items. A
//!   streamed request gets the finished answer told as events once the loop is done.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use gatehouse_llm::openai::{ChatCompletion, ChatCompletionChunk};
use gatehouse_llm::responses::{self, ResponsesContext, ResponsesStreamWriter};
use gatehouse_llm::{ChunkWriter, ErrorKind};
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::cache;
use crate::deployments::Deployment;
use crate::dialects::usage::{self, Shape};
use crate::dialects::{approvals, chunks, sse};
use crate::error::ApiError;
use crate::pipeline::{self, Route};
use crate::providers::json_response;
use crate::providers::unix_now;
use crate::proxy;
use crate::request::{ModelRequest, RequestId, read_model_request};
use crate::spend;
use crate::state::AppState;
use crate::tools::{self, AttachedServer};
use crate::upstream::body::passthrough_bytes;
use crate::upstream::send::{UpstreamCall, send};
use crate::upstream::stream::{first_data, first_event_is_error, peek};
use gatehouse_config::cache::CallType;

const RESPONSES_PATH: &str = "/responses";

/// Whether `deployment` serves the Responses API itself. Only OpenAI's own API is
/// assumed to: OpenAI-compatible servers (vLLM, Ollama, ...) and Azure deployments are
/// reached through chat completions, which every one of them serves.
fn serves_responses(deployment: &Deployment) -> bool {
    deployment.provider.name == "openai"
}

pub async fn create(
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
        message: "Missing required parameter: 'model'.".into(),
        param: "model",
    })
    .await?;
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let route = pipeline::route(&state, &caller, &headers, &model, &body, len)?;
    // The group it goes to (a routing rule may have chosen another): its spend row's model.
    let group = route.model.clone();
    tracing::debug!(model = %model, stream, key = %caller.key_id, "responses");
    // The group the request goes to (a routing rule may have chosen another).
    let all_native = state.router.resolve(&route.model).is_some_and(|r| {
        r.group
            .members
            .iter()
            .all(|m| serves_responses(m.deployment()))
    });
    let needs_translation = !all_native || uses_gateway_mcp(&state, &headers, &body, &route);
    let record_id = request_id.clone();
    let cached = cache::lookup(&state, &route, CallType::Responses, &headers, &mut body)?;
    let rest = async {
        // Inside the accounting scope: approved MCP calls run after the key's limits.
        let translation = if needs_translation {
            Some(Translation::prepare(&state, &caller, &headers, &body, &route).await?)
        } else {
            None
        };
        answer(
            &state,
            &caller,
            request_id,
            &body,
            stream,
            route,
            translation,
        )
        .await
    };
    let handler = pipeline::cache(&state, cached, rest);
    spend::account(&state, &caller, &record_id, &group, handler).await
}

async fn answer(
    state: &Arc<AppState>,
    caller: &Caller,
    request_id: String,
    body: &Map<String, Value>,
    stream: bool,
    route: Route,
    translation: Option<Translation>,
) -> Result<Response, ApiError> {
    if let Some(t) = &translation
        && !t.attached.is_empty()
    {
        let response = run_mcp_loop(state, caller, request_id, route, t).await?;
        return Ok(t.decorate(response));
    }
    let routed = pipeline::attempts(state, &route, |d| {
        let (translation, request_id) = (&translation, &request_id);
        async move {
            match translation {
                Some(t) if !serves_responses(&d) => translated(state, caller, request_id, &d, t)
                    .await
                    .map(|r| t.decorate(r)),
                _ => passthrough(state, request_id, &d, body, stream).await,
            }
        }
    })
    .await?;
    Ok(routed.into_response())
}

/// Whether the request attaches MCP servers this gateway runs (an `mcp` tool naming one
/// of its servers, the `x-mcp-servers` header, or the model's `mcp_servers`): then the
/// gateway's tool loop answers, even for deployments that serve Responses themselves.
fn uses_gateway_mcp(
    state: &AppState,
    headers: &HeaderMap,
    body: &Map<String, Value>,
    route: &Route,
) -> bool {
    let named = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("mcp"))
        .filter_map(|t| t.get("server_label").and_then(Value::as_str))
        .any(|label| state.hub.resolve(label).is_some());
    named || headers.contains_key("x-mcp-servers") || !route.mcp_servers.is_empty()
}

/// `GET /v1/responses/{id}`: a response this key stored.
pub async fn get(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let stored = state
        .responses
        .get(caller.owner(), &id)
        .ok_or_else(|| not_found(&id))?;
    Ok(json_response(
        StatusCode::OK,
        Bytes::from(stored.response.to_string()),
    ))
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !state.responses.delete(caller.owner(), &id) {
        return Err(not_found(&id));
    }
    let body = json!({"id": id, "object": "response.deleted", "deleted": true});
    Ok(json_response(StatusCode::OK, Bytes::from(body.to_string())))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Response with id '{id}' not found."))
}

/// A request mapped for chat-completions providers, shared by every deployment tried.
struct Translation {
    chat: Map<String, Value>,
    ctx: ResponsesContext,
    /// The whole conversation's input items (stored history + this request's input).
    input: Vec<Value>,
    attached: Vec<AttachedServer>,
    /// `mcp_call` items of approved (or denied) calls run before the model is asked.
    approved: Vec<Value>,
    store: bool,
}

impl Translation {
    async fn prepare(
        state: &AppState,
        caller: &Caller,
        headers: &HeaderMap,
        body: &Map<String, Value>,
        route: &Route,
    ) -> Result<Self, ApiError> {
        let mut body = body.clone();
        let mut input = input_items(body.get("input"));
        if let Some(previous) = body.get("previous_response_id").and_then(Value::as_str) {
            let stored = state
                .responses
                .get(caller.owner(), previous)
                .ok_or_else(|| ApiError::InvalidParam {
                    message: format!("Previous response with id '{previous}' not found."),
                    param: "previous_response_id",
                })?;
            let mut all = stored.conversation();
            all.extend(input);
            input = all;
        }
        let model_servers = &route.mcp_servers;
        let mut approved = Vec::new();
        if approvals::has_responses(&input) {
            // Only the request's `mcp` tool entries and headers say which servers apply.
            let mut tools_only = Map::new();
            if let Some(tools) = body.get("tools") {
                tools_only.insert("tools".into(), tools.clone());
            }
            let attached = tools::attachments(
                &state.hub,
                &caller.mcp(),
                headers,
                &mut tools_only,
                model_servers,
            )?;
            approved = approvals::resolve(&state.hub, &caller.key_id, &attached, &mut input).await;
        }
        body.insert("input".into(), Value::Array(input.clone()));
        let (chat, ctx) = responses::to_chat(&Value::Object(body))
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        if !ctx.dropped_tools.is_empty() {
            tracing::warn!(dropped = ?ctx.dropped_tools, "hosted tools the provider cannot run were dropped");
        }
        if !ctx.dropped_items.is_empty() || !ctx.ignored.is_empty() {
            tracing::debug!(dropped_items = ?ctx.dropped_items, ignored = ?ctx.ignored, "responses request mapped to chat");
        }
        let mut chat = match serde_json::to_value(&chat) {
            Ok(Value::Object(map)) => map,
            _ => return Err(ApiError::Internal("chat request did not serialize".into())),
        };
        if !ctx.mcp_tools.is_empty() {
            let tools = chat
                .entry("tools")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(tools) = tools {
                tools.extend(ctx.mcp_tools.iter().cloned());
            }
        }
        let attached =
            tools::attachments(&state.hub, &caller.mcp(), headers, &mut chat, model_servers)?;
        let store = ctx.store != Some(false);
        Ok(Self {
            chat,
            ctx,
            input,
            attached,
            approved,
            store,
        })
    }

    /// Adds the dropped-tools warning header.
    fn decorate(&self, mut response: Response) -> Response {
        if !self.ctx.dropped_tools.is_empty()
            && let Ok(value) = HeaderValue::from_str(&self.ctx.dropped_tools.join(","))
        {
            response
                .headers_mut()
                .insert("x-gatehouse-dropped-tools", value);
        }
        response
    }

    fn keep(&self, state: &AppState, caller: &Caller, response: &Value) {
        if self.store {
            state
                .responses
                .put(caller.owner(), self.input.clone(), response.clone());
        }
    }
}

/// `input` as a list of items (a bare string is one user message).
fn input_items(input: Option<&Value>) -> Vec<Value> {
    match input {
        Some(Value::String(text)) => vec![json!({"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": text}]})],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

fn new_response_id() -> String {
    format!("resp_{}", uuid::Uuid::new_v4().simple())
}

async fn passthrough(
    state: &AppState,
    request_id: &str,
    deployment: &Arc<Deployment>,
    body: &Map<String, Value>,
    stream: bool,
) -> Result<Response, ApiError> {
    let call = UpstreamCall {
        deployment,
        path: RESPONSES_PATH,
        body: passthrough_bytes(body, deployment, &state.settings, false)?,
        stream,
        request_id,
        forward_headers: Vec::new(),
    };
    let response = send(&state.http, &call).await?;
    if stream {
        let idle = deployment.stream_timeout.unwrap_or(deployment.timeout);
        let upstream = peek(response.bytes_stream(), idle, |first| {
            let data = first_data(first).filter(|_| first_event_is_error(first))?;
            Some(ApiError::upstream(
                StatusCode::INTERNAL_SERVER_ERROR,
                Bytes::copy_from_slice(data),
            ))
        })
        .await?;
        let relayed = sse::relay_responses(upstream, idle);
        let body = Body::from_stream(usage::tap(Shape::Responses, relayed));
        return Ok(sse::response(body));
    }
    let bytes = crate::upstream::send::read_answer(response).await?;
    usage::record_body(Shape::Responses, &bytes);
    Ok(json_response(StatusCode::OK, bytes))
}

async fn translated(
    state: &Arc<AppState>,
    caller: &Caller,
    request_id: &str,
    deployment: &Arc<Deployment>,
    t: &Translation,
) -> Result<Response, ApiError> {
    let id = new_response_id();
    let created = unix_now();
    if t.ctx.stream {
        let chunks = chunks::open(state, request_id, deployment, &t.chat).await?;
        let writer = Writer {
            inner: ResponsesStreamWriter::new(t.ctx.clone(), id, created),
            keep: t.store.then(|| Keep {
                state: state.clone(),
                owner: caller.owner().to_owned(),
                input: t.input.clone(),
            }),
        };
        let body = Body::from_stream(chunks::encode(chunks, writer));
        return Ok(sse::response(body));
    }
    let mut chat = t.chat.clone();
    chat.remove("stream");
    chat.remove("stream_options");
    let value = proxy::complete_one(state, request_id, deployment, &chat).await?;
    let completion: ChatCompletion = serde_json::from_value(value).map_err(|e| {
        ApiError::UpstreamUnreachable(format!("unexpected chat answer from the upstream: {e}"))
    })?;
    let response = responses::from_chat(&completion, &t.ctx, &id, created);
    t.keep(state, caller, &response);
    Ok(json_response(
        StatusCode::OK,
        Bytes::from(response.to_string()),
    ))
}

/// Runs the MCP tool loop (non-streaming) and renders its answer with `mcp_list_tools`
/// and `mcp_call` items before the model's own output.
async fn run_mcp_loop(
    state: &Arc<AppState>,
    caller: &Caller,
    request_id: String,
    route: Route,
    t: &Translation,
) -> Result<Response, ApiError> {
    let mut chat = t.chat.clone();
    chat.remove("stream");
    chat.remove("stream_options");
    let tools::LoopAnswer {
        completion,
        mcp_calls: records,
    } = tools::complete(
        state.clone(),
        caller,
        request_id,
        route,
        chat,
        t.attached.clone(),
    )
    .await?;
    let id = new_response_id();
    let mut response = responses::from_chat(&completion, &t.ctx, &id, unix_now());
    let core = id.trim_start_matches("resp_").to_string();
    if let Some(output) = response.get_mut("output").and_then(Value::as_array_mut) {
        approvals::requests(&state.hub, &t.attached, output).await;
    }
    let mut items = Vec::new();
    for server in &t.attached {
        let listed = state.hub.list_tools(&server.server).await;
        let (tools, error) = match listed {
            Ok(tools) => (
                tools
                    .into_iter()
                    .filter(|tool| {
                        server
                            .allowed_tools
                            .as_ref()
                            .is_none_or(|allowed| allowed.iter().any(|a| a == &tool.name))
                    })
                    .map(|tool| {
                        json!({"name": tool.name, "description": tool.description,
                               "input_schema": tool.input_schema,
                               "annotations": tool.extra.get("annotations").cloned().unwrap_or(Value::Null)})
                    })
                    .collect(),
                Value::Null,
            ),
            Err(e) => (Vec::new(), json!(e.to_string())),
        };
        items.push(
            json!({"id": format!("mcpl_{core}_{}", items.len()), "type": "mcp_list_tools",
            "server_label": server.server, "tools": tools, "error": error}),
        );
    }
    items.extend(t.approved.iter().cloned());
    for record in &records {
        let arguments = match record.get("arguments") {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => "{}".into(),
        };
        let error = record
            .get("error")
            .cloned()
            .filter(|e| !e.is_null())
            .unwrap_or(Value::Null);
        items.push(
            json!({"id": format!("mcp_{core}_{}", items.len()), "type": "mcp_call",
            "server_label": record.get("server"), "name": record.get("tool"),
            "arguments": arguments, "output": record.get("output").cloned().unwrap_or(Value::Null),
            "error": error, "status": if error.is_null() { "completed" } else { "failed" }}),
        );
    }
    if let Some(output) = response.get_mut("output").and_then(Value::as_array_mut) {
        items.append(output);
        *output = items;
    }
    t.keep(state, caller, &response);
    if t.ctx.stream {
        return Ok(sse::response(Body::from(responses::replay::events(
            &response,
        ))));
    }
    Ok(json_response(
        StatusCode::OK,
        Bytes::from(response.to_string()),
    ))
}

/// The Responses stream writer, storing the final response when asked to.
struct Writer {
    inner: ResponsesStreamWriter,
    keep: Option<Keep>,
}

struct Keep {
    state: Arc<AppState>,
    owner: String,
    input: Vec<Value>,
}

impl ChunkWriter for Writer {
    fn push(&mut self, chunk: &ChatCompletionChunk) -> Vec<u8> {
        self.inner.push(chunk)
    }

    fn fail(&mut self, kind: ErrorKind, message: &str) -> Vec<u8> {
        self.inner.fail(kind, message)
    }

    fn finish(&mut self) -> Vec<u8> {
        let out = self.inner.finish();
        if let Some(keep) = self.keep.take() {
            keep.state
                .responses
                .put(&keep.owner, keep.input, self.inner.response());
        }
        out
    }
}
