//! `POST /v1/responses`: `response` objects and the semantic event stream (no `[DONE]`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::{self, ApiError};
use super::validate::check_tool_name;
use crate::plan::{self, Answer, LastTurn, Plan, count_tokens};
use crate::respond;
use crate::sse::{self, Ending};
use crate::state::{Shared, now_secs, pause};

struct ResponsesRequest<'a> {
    body: &'a Value,
    model: &'a str,
    stream: bool,
    tools: Vec<&'a str>,
    input_tokens: u64,
    items: Vec<Value>,
}

fn missing(param: &str) -> ApiError {
    ApiError::invalid(
        format!("Missing required parameter: '{param}'."),
        Some(param.to_owned()),
        Some("missing_required_parameter"),
    )
}

/// Text of an input item's `content` (string or `input_text`/`output_text` parts) or of a
/// `function_call_output`'s `output`.
fn text_of(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn item_type(item: &Value) -> &str {
    item.get("type")
        .and_then(Value::as_str)
        .unwrap_or("message")
}

fn validate(body: &Value) -> Result<ResponsesRequest<'_>, ApiError> {
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.as_str(),
        _ => return Err(missing("model")),
    };
    // A bare string is one user message.
    let items: Vec<Value> = match body.get("input") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![json!({"role": "user", "content": s})],
        Some(Value::Array(items)) => items.clone(),
        Some(_) => {
            return Err(ApiError::invalid(
                "Invalid type for 'input': expected one of a string or array of input items, but got an object instead.",
                Some("input".to_owned()),
                Some("invalid_type"),
            ));
        }
    };
    let mut tools = Vec::new();
    if let Some(Value::Array(list)) = body.get("tools") {
        for (i, tool) in list.iter().enumerate() {
            if tool.get("type").and_then(Value::as_str) != Some("function") {
                continue;
            }
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                return Err(missing(&format!("tools[{i}].name")));
            };
            check_tool_name(name, format!("tools[{i}].name"))?;
            tools.push(name);
        }
    }
    let stateless = body.get("previous_response_id").is_none_or(Value::is_null);
    let mut call_ids: Vec<&str> = Vec::new();
    let mut input_tokens = 3 + count_tokens(&text_of(body.get("instructions")));
    for (i, item) in items.iter().enumerate() {
        input_tokens += 3;
        match item_type(item) {
            "message" => {
                let role = item.get("role").and_then(Value::as_str).unwrap_or_default();
                if !["assistant", "system", "developer", "user"].contains(&role) {
                    return Err(ApiError::invalid(
                        format!(
                            "Invalid value: '{role}'. Supported values are: 'assistant', 'system', 'developer', and 'user'."
                        ),
                        Some(format!("input[{i}].role")),
                        Some("invalid_value"),
                    ));
                }
                input_tokens += count_tokens(&text_of(item.get("content")));
            }
            "function_call" => {
                call_ids.push(
                    item.get("call_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                );
                input_tokens += count_tokens(
                    item.get("arguments")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                );
            }
            "function_call_output" => {
                let id = item
                    .get("call_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                // With previous_response_id the call lives in a stored response we don't keep.
                if stateless && !call_ids.contains(&id) {
                    return Err(ApiError::invalid(
                        format!("No tool call found for function call output with call_id {id}."),
                        Some("input".to_owned()),
                        None,
                    ));
                }
                input_tokens += count_tokens(&text_of(item.get("output")));
            }
            _ => {}
        }
    }
    Ok(ResponsesRequest {
        body,
        model,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        tools,
        input_tokens,
        items,
    })
}

impl ResponsesRequest<'_> {
    fn last_turn(&self) -> LastTurn {
        let outputs: Vec<String> = self
            .items
            .iter()
            .rev()
            .take_while(|i| item_type(i) == "function_call_output")
            .map(|i| text_of(i.get("output")))
            .collect();
        if !outputs.is_empty() {
            return LastTurn::ToolResults(outputs.into_iter().rev().collect());
        }
        let text = self
            .items
            .iter()
            .rev()
            .find(|i| {
                item_type(i) == "message" && i.get("role").and_then(Value::as_str) == Some("user")
            })
            .map(|i| text_of(i.get("content")))
            .unwrap_or_default();
        LastTurn::UserText(text)
    }
}

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let parsed = respond::parse_body(&bytes);
    shared.record(
        &method,
        &uri,
        &headers,
        parsed.as_ref().unwrap_or(&Value::Null),
    );
    if let Some(err) = errors::check_auth(shared.opts.api_key.as_deref(), &headers) {
        return err.into_response();
    }
    let Ok(body) = parsed else {
        return errors::bad_json().into_response();
    };
    let req = match validate(&body) {
        Ok(req) => req,
        Err(err) => return err.into_response(),
    };
    if let Some(err) = errors::check_model(shared.opts.models.as_deref(), req.model) {
        return err.into_response();
    }
    let (delay, plan) = shared.plan(|| plan::default_answer(req.last_turn(), &req.tools));
    pause(delay).await;
    let ids = Ids::new(&shared);
    let chunk_delay = shared.opts.chunk_delay;
    match plan {
        Plan::Answer(answer) if req.stream => sse::response(
            stream_frames(&req, &ids, &answer, true),
            chunk_delay,
            Ending::Complete,
            &[],
        ),
        Plan::Answer(answer) => {
            respond::json(200, &response(&req, &ids, &answer, "completed"), &[])
        }
        Plan::RawError { status, body } => respond::json(status, &body, &[]),
        Plan::Status {
            status,
            retry_after_secs,
        } => ApiError::for_status(status, retry_after_secs).into_response(),
        Plan::Drop {
            answer,
            after_chunks,
            graceful,
        } => {
            if req.stream {
                let frames = stream_frames(&req, &ids, &answer, true);
                sse::response(
                    frames,
                    chunk_delay,
                    Ending::after(after_chunks, graceful),
                    &[],
                )
            } else {
                sse::truncated_json(&response(&req, &ids, &answer, "completed"))
            }
        }
        Plan::ErrorMidStream {
            answer,
            after_chunks,
        } => {
            if req.stream {
                let mut frames = stream_frames(&req, &ids, &answer, false);
                frames.truncate(after_chunks);
                let err = ApiError::for_status(500, None);
                frames.push(sse::event(
                    "error",
                    &json!({"type": "error", "code": "server_error", "message": err.message, "param": null,
                            "sequence_number": frames.len()}),
                ));
                sse::response(frames, chunk_delay, Ending::Complete, &[])
            } else {
                ApiError::for_status(500, None).into_response()
            }
        }
    }
}

struct Ids {
    response: String,
    base: u64,
    created: u64,
}

impl Ids {
    fn new(shared: &Shared) -> Self {
        let n = shared.next_id();
        Self {
            response: format!("resp_mock{n:040}"),
            base: n,
            created: now_secs(),
        }
    }

    fn message(&self) -> String {
        format!("msg_mock{:040}", self.base)
    }

    fn item(&self, i: usize) -> String {
        format!("fc_mock{:037}{i:03}", self.base)
    }

    fn call(&self, i: usize) -> String {
        format!("call_mock{:012}{i:03}", self.base)
    }
}

/// Output items of a finished answer (reasoning is not rendered on this API).
fn output_items(ids: &Ids, answer: &Answer) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(text) = &answer.text {
        out.push(message_item(ids, text, "completed"));
    }
    for (i, call) in answer.calls.iter().enumerate() {
        out.push(call_item(ids, i, &call.name, &call.arguments, "completed"));
    }
    out
}

fn message_item(ids: &Ids, text: &str, status: &str) -> Value {
    let content = if status == "completed" {
        json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}])
    } else {
        json!([])
    };
    json!({"type": "message", "id": ids.message(), "status": status, "role": "assistant", "content": content})
}

fn call_item(ids: &Ids, i: usize, name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": ids.item(i), "call_id": ids.call(i), "name": name,
           "arguments": arguments, "status": status})
}

fn response(req: &ResponsesRequest<'_>, ids: &Ids, answer: &Answer, status: &str) -> Value {
    let done = status == "completed";
    let output = if done {
        output_items(ids, answer)
    } else {
        Vec::new()
    };
    let usage = if done {
        let out = plan::answer_tokens(answer);
        json!({
            "input_tokens": req.input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": req.input_tokens + out,
        })
    } else {
        Value::Null
    };
    let field = |k: &str, default: Value| req.body.get(k).cloned().unwrap_or(default);
    json!({
        "id": ids.response,
        "object": "response",
        "created_at": ids.created,
        "status": status,
        "error": null,
        "incomplete_details": null,
        "instructions": field("instructions", Value::Null),
        "max_output_tokens": field("max_output_tokens", Value::Null),
        "model": req.model,
        "output": output,
        "parallel_tool_calls": field("parallel_tool_calls", json!(true)),
        "previous_response_id": field("previous_response_id", Value::Null),
        "reasoning": {"effort": null, "summary": null},
        "store": field("store", json!(true)),
        "temperature": field("temperature", json!(1.0)),
        "text": {"format": {"type": "text"}},
        "tool_choice": field("tool_choice", json!("auto")),
        "tools": field("tools", json!([])),
        "top_p": field("top_p", json!(1.0)),
        "truncation": "disabled",
        "usage": usage,
        "user": null,
        "metadata": field("metadata", json!({})),
    })
}

/// The semantic event stream; `with_end` adds `response.completed`.
fn stream_frames(
    req: &ResponsesRequest<'_>,
    ids: &Ids,
    answer: &Answer,
    with_end: bool,
) -> Vec<Bytes> {
    let mut frames = Vec::new();
    let mut seq = 0u64;
    let mut push = |frames: &mut Vec<Bytes>, mut payload: Value| {
        payload["sequence_number"] = json!(seq);
        seq += 1;
        let name = payload["type"].as_str().unwrap_or_default().to_owned();
        frames.push(sse::event(&name, &payload));
    };
    let pending = response(req, ids, answer, "in_progress");
    push(
        &mut frames,
        json!({"type": "response.created", "response": pending}),
    );
    push(
        &mut frames,
        json!({"type": "response.in_progress", "response": pending}),
    );
    let mut index = 0usize;
    if let Some(text) = &answer.text {
        let item_id = ids.message();
        push(
            &mut frames,
            json!({"type": "response.output_item.added", "output_index": index,
                   "item": message_item(ids, text, "in_progress")}),
        );
        let empty = json!({"type": "output_text", "text": "", "annotations": [], "logprobs": []});
        push(
            &mut frames,
            json!({"type": "response.content_part.added", "item_id": item_id, "output_index": index,
                   "content_index": 0, "part": empty}),
        );
        for piece in plan::pieces(text) {
            push(
                &mut frames,
                json!({"type": "response.output_text.delta", "item_id": item_id, "output_index": index,
                       "content_index": 0, "delta": piece, "logprobs": []}),
            );
        }
        push(
            &mut frames,
            json!({"type": "response.output_text.done", "item_id": item_id, "output_index": index,
                   "content_index": 0, "text": text, "logprobs": []}),
        );
        push(
            &mut frames,
            json!({"type": "response.content_part.done", "item_id": item_id, "output_index": index,
                   "content_index": 0,
                   "part": {"type": "output_text", "text": text, "annotations": [], "logprobs": []}}),
        );
        push(
            &mut frames,
            json!({"type": "response.output_item.done", "output_index": index,
                   "item": message_item(ids, text, "completed")}),
        );
        index += 1;
    }
    for (i, call) in answer.calls.iter().enumerate() {
        push(
            &mut frames,
            json!({"type": "response.output_item.added", "output_index": index,
                   "item": call_item(ids, i, &call.name, "", "in_progress")}),
        );
        for frag in plan::json_fragments(&call.arguments) {
            push(
                &mut frames,
                json!({"type": "response.function_call_arguments.delta", "item_id": ids.item(i),
                       "output_index": index, "delta": frag}),
            );
        }
        push(
            &mut frames,
            json!({"type": "response.function_call_arguments.done", "item_id": ids.item(i),
                   "output_index": index, "name": call.name, "arguments": call.arguments}),
        );
        push(
            &mut frames,
            json!({"type": "response.output_item.done", "output_index": index,
                   "item": call_item(ids, i, &call.name, &call.arguments, "completed")}),
        );
        index += 1;
    }
    if with_end {
        push(
            &mut frames,
            json!({"type": "response.completed", "response": response(req, ids, answer, "completed")}),
        );
    }
    frames
}
