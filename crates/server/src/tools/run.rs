//! The tool-execution loop: call the model; run the MCP tools it asks for; feed the
//! results back; repeat until it answers (or the iteration cap); return one ordinary
//! chat completion — or, for `stream: true`, one ordinary SSE answer with the tool
//! rounds reported in extension fields standard SDKs ignore.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::attach::AttachedServer;
use super::catalog::{Resolved, ToolSet};
use super::execute::{
    CallEvent, McpCallRecord, Outcome, ServerHeaders, ToolCall, catalog_answer, execute_all_with,
    unknown_tool,
};
use super::pending::PendingTurn;
use super::sse;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::pipeline::{self, Route};
use crate::proxy;
use crate::state::AppState;
use gatehouse_llm::openai::ChatCompletion;

/// Comment lines sent while tools run, so proxies do not cut an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// Everything one loop needs, owned so a streaming loop can run in its own task.
struct Job {
    state: Arc<AppState>,
    key_id: String,
    request_id: String,
    route: Route,
    body: Map<String, Value>,
    tools: ToolSet,
    /// Each attached server's client headers (`x-mcp-<server>-*`), for its calls only.
    headers: ServerHeaders,
}

/// The loop for a chat completions client: one JSON completion, or (`stream: true`) one
/// SSE answer with progress chunks while tools run.
pub async fn run(
    state: Arc<AppState>,
    caller: &Caller,
    request_id: String,
    route: Route,
    body: Map<String, Value>,
    attached: Vec<AttachedServer>,
) -> Result<Response, ApiError> {
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let (job, model) = Job::new(state, caller, request_id, route, body, attached).await;
    if !stream {
        let completion = job.drive(None, &CancellationToken::new()).await?;
        let body =
            serde_json::to_vec(&completion).map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut response = (StatusCode::OK, Bytes::from(body)).into_response();
        response.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
        return Ok(response);
    }
    Ok(stream_loop(job, model, include_usage))
}

/// The loop's final answer, typed, for the inbound dialects that render it themselves
/// (Responses, Messages).
pub struct LoopAnswer {
    pub completion: ChatCompletion,
    /// What ran, as the `mcp_calls` extension of chat completions reports it.
    pub mcp_calls: Vec<Value>,
}

pub async fn complete(
    state: Arc<AppState>,
    caller: &Caller,
    request_id: String,
    route: Route,
    body: Map<String, Value>,
    attached: Vec<AttachedServer>,
) -> Result<LoopAnswer, ApiError> {
    let (job, _) = Job::new(state, caller, request_id, route, body, attached).await;
    let mut value = job.drive(None, &CancellationToken::new()).await?;
    let mcp_calls = match value.as_object_mut().and_then(|o| o.remove("mcp_calls")) {
        Some(Value::Array(calls)) => calls,
        _ => Vec::new(),
    };
    let completion = serde_json::from_value(value).map_err(|e| {
        ApiError::UpstreamUnreachable(format!("unexpected chat answer from the upstream: {e}"))
    })?;
    Ok(LoopAnswer {
        completion,
        mcp_calls,
    })
}

impl Job {
    async fn new(
        state: Arc<AppState>,
        caller: &Caller,
        request_id: String,
        route: Route,
        mut body: Map<String, Value>,
        attached: Vec<AttachedServer>,
    ) -> (Self, String) {
        let client_names: HashSet<String> = body
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| t.get("function")?.get("name")?.as_str().map(str::to_owned))
            .collect();
        // The lazy catalog as the MCP endpoint chooses it: the key's mode, else the
        // configured default.
        let lazy = caller.catalog_mode().or_else(|| {
            state
                .hub
                .mcp_settings()
                .catalog
                .as_deref()
                .and_then(gatehouse_mcp::CatalogMode::parse)
        }) == Some(gatehouse_mcp::CatalogMode::Lazy);
        let tools = ToolSet::build(&state.hub, &attached, &client_names, lazy).await;
        if let Some(Value::Array(messages)) = body.get_mut("messages") {
            state.pending.restore(caller.owner(), messages);
        }
        let mut all_tools: Vec<Value> = match body.remove("tools") {
            Some(Value::Array(t)) => t,
            _ => Vec::new(),
        };
        all_tools.extend(tools.functions.iter().cloned());
        if !all_tools.is_empty() {
            body.insert("tools".into(), Value::Array(all_tools));
        }
        body.remove("stream");
        body.remove("stream_options");
        let model = body
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let job = Job {
            state,
            key_id: caller.owner().to_owned(),
            request_id,
            route,
            body,
            tools,
            headers: attached
                .into_iter()
                .filter(|a| !a.headers.is_empty())
                .map(|a| (a.server, a.headers))
                .collect(),
        };
        (job, model)
    }

    async fn drive(
        mut self,
        events: Option<mpsc::UnboundedSender<CallEvent>>,
        cancel: &CancellationToken,
    ) -> Result<Value, ApiError> {
        let max_rounds = self.state.settings.mcp_max_iterations.max(1);
        let mut records: Vec<McpCallRecord> = Vec::new();
        let mut usage: Option<crate::cost::Usage> = None;
        let mut round = 0;
        loop {
            round += 1;
            let call = pipeline::attempts(&self.state, &self.route, |d| {
                let (state, request_id, body) = (&self.state, &self.request_id, &self.body);
                async move { proxy::complete_one(state, request_id, &d, body).await }
            });
            let completion = tokio::select! {
                c = call => c?.value,
                () = cancel.cancelled() => return Err(ApiError::BadRequest("cancelled".into())),
            };
            if let Some(u) = completion
                .get("usage")
                .and_then(crate::cost::Usage::from_value)
            {
                usage.get_or_insert_default().add(u);
            }
            let message = completion
                .pointer("/choices/0/message")
                .cloned()
                .unwrap_or_else(|| json!({"role": "assistant", "content": null}));
            let calls: Vec<Value> = message
                .get("tool_calls")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let (mcp, client): (Vec<Value>, Vec<Value>) = calls.into_iter().partition(|c| {
                ToolCall::from_value(c).is_some_and(|c| self.tools.runs_here(&c.name))
            });
            if mcp.is_empty() {
                return Ok(finish(completion, usage, records, None));
            }
            if round >= max_rounds {
                tracing::warn!(
                    rounds = round,
                    "mcp_max_iterations reached; returning the last turn"
                );
                return Ok(finish(completion, usage, records, Some((round, mcp))));
            }
            let resolved: Vec<Resolved> = mcp
                .iter()
                .filter_map(ToolCall::from_value)
                .map(|c| self.tools.resolve(&c))
                .collect();
            let to_run: Vec<_> = resolved
                .iter()
                .filter_map(|r| match r {
                    Resolved::Run(call, tool) => Some((call.clone(), tool.clone())),
                    _ => None,
                })
                .collect();
            let mut ran = execute_all_with(
                &self.state.hub,
                &to_run,
                &self.key_id,
                cancel,
                events.as_ref(),
                &self.headers,
            )
            .await
            .into_iter();
            // Results in the order of the calls; unknown tools answered with an error.
            let outcomes: Vec<Outcome> = resolved
                .into_iter()
                .map(|r| match r {
                    Resolved::Run(c, _) => ran.next().unwrap_or_else(|| unknown_tool(&c)),
                    Resolved::Answer { call, result } => catalog_answer(&call, result),
                    Resolved::Unknown(c) => unknown_tool(&c),
                })
                .collect();
            if cancel.is_cancelled() {
                return Err(ApiError::BadRequest("cancelled".into()));
            }
            let results: Vec<Value> = outcomes.iter().map(|o| o.message.clone()).collect();
            records.extend(outcomes.into_iter().map(|o| o.record));
            if !client.is_empty() {
                // The client runs its own calls; keep this turn's MCP half for when it
                // comes back with its results.
                let ids: Vec<String> = client
                    .iter()
                    .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_owned))
                    .collect();
                self.state.pending.insert(
                    &self.key_id,
                    &ids,
                    PendingTurn {
                        assistant: message.clone(),
                        results,
                    },
                );
                let mut completion = completion;
                if let Some(m) = completion
                    .pointer_mut("/choices/0/message")
                    .and_then(Value::as_object_mut)
                {
                    m.insert("tool_calls".into(), Value::Array(client));
                }
                if let Some(c) = completion
                    .pointer_mut("/choices/0")
                    .and_then(Value::as_object_mut)
                {
                    c.insert("finish_reason".into(), json!("tool_calls"));
                }
                return Ok(finish(completion, usage, records, None));
            }
            if let Some(Value::Array(messages)) = self.body.get_mut("messages") {
                messages.push(message);
                messages.extend(results);
            }
        }
    }
}

/// The completion the client gets: usage over every round, what ran in `mcp_calls`,
/// and at the cap the MCP calls that did not run, with a marker.
fn finish(
    mut completion: Value,
    usage: Option<crate::cost::Usage>,
    records: Vec<McpCallRecord>,
    capped: Option<(u32, Vec<Value>)>,
) -> Value {
    let Some(object) = completion.as_object_mut() else {
        return completion;
    };
    if let Some(usage) = usage {
        object.insert("usage".into(), usage.to_chat_json());
    }
    if !records.is_empty() {
        let sized: Vec<Value> = records.iter().map(McpCallRecord::sized).collect();
        crate::spend::with(|r| r.set_mcp_calls(Value::Array(sized)));
    }
    object.insert(
        "mcp_calls".into(),
        serde_json::to_value(&records).unwrap_or(Value::Null),
    );
    if let Some((rounds, unexecuted)) = capped {
        let remaining: Vec<Value> = completion
            .pointer("/choices/0/message/tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| !unexecuted.contains(c))
            .cloned()
            .collect();
        let note = format!(
            "[gatehouse] stopped after {rounds} model calls (litellm_settings.mcp_max_iterations); the last MCP tool calls were not run."
        );
        if let Some(message) = completion
            .pointer_mut("/choices/0/message")
            .and_then(Value::as_object_mut)
        {
            let text = message
                .get("content")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let content = if text.is_empty() {
                note
            } else {
                format!("{text}\n\n{note}")
            };
            message.insert("content".into(), json!(content));
            if remaining.is_empty() {
                message.remove("tool_calls");
            } else {
                message.insert("tool_calls".into(), Value::Array(remaining.clone()));
            }
        }
        if let Some(choice) = completion
            .pointer_mut("/choices/0")
            .and_then(Value::as_object_mut)
        {
            let reason = if remaining.is_empty() {
                "stop"
            } else {
                "tool_calls"
            };
            choice.insert("finish_reason".into(), json!(reason));
        }
        if let Some(object) = completion.as_object_mut() {
            object.insert("mcp_max_iterations_reached".into(), json!(true));
            object.insert("mcp_unexecuted_calls".into(), Value::Array(unexecuted));
        }
    }
    completion
}

/// Aborts the loop's task when the response body is dropped (client gone).
struct TaskGuard {
    task: tokio::task::JoinHandle<Result<Value, ApiError>>,
    cancel: CancellationToken,
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.task.abort();
    }
}

enum Phase {
    Events,
    Finishing,
    Done,
}

struct StreamState {
    rx: mpsc::UnboundedReceiver<CallEvent>,
    guard: TaskGuard,
    meta: sse::ChunkMeta,
    include_usage: bool,
    phase: Phase,
}

fn stream_loop(job: Job, model: String, include_usage: bool) -> Response {
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let task_cancel = cancel.clone();
    // The loop runs in its own task; it keeps the request's spend record with it.
    let record = crate::spend::current();
    let task = tokio::spawn(async move {
        let drive = job.drive(Some(tx), &task_cancel);
        match record {
            Some(record) => crate::spend::scope(record, drive).await,
            None => drive.await,
        }
    });
    let state = StreamState {
        rx,
        guard: TaskGuard { task, cancel },
        meta: sse::ChunkMeta::new(model),
        include_usage,
        phase: Phase::Events,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            match s.phase {
                Phase::Done => return None,
                Phase::Events => {
                    match tokio::time::timeout(KEEP_ALIVE, s.rx.recv()).await {
                        Err(_) => {
                            return Some((
                                Ok::<_, std::convert::Infallible>(Bytes::from_static(
                                    b": keep-alive\n\n",
                                )),
                                s,
                            ));
                        }
                        Ok(Some(event)) => {
                            let bytes = sse::progress_chunk(&s.meta, &event);
                            return Some((Ok(bytes), s));
                        }
                        // The loop dropped its sender: it is finishing.
                        Ok(None) => s.phase = Phase::Finishing,
                    }
                }
                Phase::Finishing => {
                    s.phase = Phase::Done;
                    let bytes = match (&mut s.guard.task).await {
                        Ok(Ok(completion)) => {
                            sse::final_chunks(&s.meta, &completion, s.include_usage)
                        }
                        Ok(Err(err)) => crate::upstream::stream::sse_error_event(&err),
                        Err(join) => crate::upstream::stream::sse_error_event(&ApiError::Internal(
                            format!("tool loop failed: {join}"),
                        )),
                    };
                    return Some((Ok(bytes), s));
                }
            }
        }
    });
    crate::providers::sse_response(Body::from_stream(stream))
}
