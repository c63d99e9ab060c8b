//! `POST /model/{modelId}/converse`, `/converse-stream` and `/invoke` (embeddings).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::validate::{self, ConverseRequest};
use super::{eventstream, sigv4};
use crate::plan::{self, Answer, Plan};
use crate::respond;
use crate::sse::{self, Ending};
use crate::state::{Shared, now_secs, pause};

/// Checks shared by every Bedrock route: the signature, the body, the model.
fn admit(
    shared: &Shared,
    model: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    bytes: &Bytes,
) -> Result<Value, ApiError> {
    let parsed = respond::parse_body(bytes);
    shared.record(
        method,
        uri,
        headers,
        parsed.as_ref().unwrap_or(&Value::Null),
    );
    sigv4::verify(
        shared.opts.api_key.as_deref(),
        method,
        uri,
        headers,
        bytes,
        now_secs(),
    )?;
    let body = parsed.map_err(|_| {
        ApiError::validation("Malformed input request, please reformat your input and try again.")
    })?;
    if let Some(allowed) = shared.opts.models.as_deref()
        && !allowed.iter().any(|m| m == model)
    {
        return Err(ApiError::for_status(404));
    }
    Ok(body)
}

pub(crate) async fn converse(
    State(shared): State<Arc<Shared>>,
    Path(model): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    handle(&shared, &model, &method, &uri, &headers, &bytes, false).await
}

pub(crate) async fn converse_stream(
    State(shared): State<Arc<Shared>>,
    Path(model): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    handle(&shared, &model, &method, &uri, &headers, &bytes, true).await
}

async fn handle(
    shared: &Shared,
    model: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    bytes: &Bytes,
    stream: bool,
) -> Response {
    let body = match admit(shared, model, method, uri, headers, bytes) {
        Ok(body) => body,
        Err(err) => return err.into_response(None),
    };
    let req = match validate::validate(&body) {
        Ok(req) => req,
        Err(err) => return err.into_response(None),
    };
    let ids = shared.next_id();
    let (delay, plan) = shared.plan(|| plan::default_answer(req.last_turn(), &req.tools));
    pause(delay).await;
    let chunk_delay = shared.opts.chunk_delay;
    match plan {
        Plan::Answer(answer) if stream => event_stream(
            frames(&req, ids, &answer, true),
            chunk_delay,
            Ending::Complete,
        ),
        Plan::Answer(answer) => respond::json(200, &full(&req, ids, &answer), &[]),
        Plan::RawError { status, body } => respond::json(status, &body, &[]),
        Plan::Status {
            status,
            retry_after_secs,
        } => ApiError::for_status(status).into_response(retry_after_secs),
        Plan::Drop {
            answer,
            after_chunks,
            graceful,
        } => {
            if stream {
                event_stream(
                    frames(&req, ids, &answer, true),
                    chunk_delay,
                    Ending::after(after_chunks, graceful),
                )
            } else {
                sse::truncated_json(&full(&req, ids, &answer))
            }
        }
        Plan::ErrorMidStream {
            answer,
            after_chunks,
        } => {
            if stream {
                let mut f = frames(&req, ids, &answer, false);
                f.truncate(after_chunks);
                f.push(eventstream::exception(
                    "throttlingException",
                    "Too many tokens, please wait before trying again.",
                ));
                event_stream(f, chunk_delay, Ending::Complete)
            } else {
                ApiError::for_status(500).into_response(None)
            }
        }
    }
}

fn tool_use_id(n: u64, i: usize) -> String {
    format!("tooluse_mock{n:010}{i:03}")
}

fn stop_reason(answer: &Answer) -> &'static str {
    if answer.calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    }
}

fn usage(req: &ConverseRequest<'_>, answer: &Answer) -> Value {
    let output = plan::answer_tokens(answer);
    json!({"inputTokens": req.input_tokens, "outputTokens": output,
           "totalTokens": req.input_tokens + output})
}

fn full(req: &ConverseRequest<'_>, n: u64, answer: &Answer) -> Value {
    let mut content = Vec::new();
    if let Some((thinking, signature)) = &answer.thinking {
        content.push(json!({"reasoningContent": {"reasoningText": {"text": thinking, "signature": signature}}}));
    }
    if let Some(text) = &answer.text {
        content.push(json!({"text": text}));
    }
    for (i, call) in answer.calls.iter().enumerate() {
        content.push(json!({"toolUse": {"toolUseId": tool_use_id(n, i), "name": call.name, "input": call.input()}}));
    }
    json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop_reason(answer),
        "usage": usage(req, answer),
        "metrics": {"latencyMs": 12},
    })
}

/// ConverseStream events. Text blocks have no `contentBlockStart` (as on Bedrock);
/// tool-use blocks start with id and name, then stream their input JSON in fragments.
fn frames(req: &ConverseRequest<'_>, n: u64, answer: &Answer, with_end: bool) -> Vec<Bytes> {
    let mut out = vec![eventstream::event(
        "messageStart",
        &json!({"role": "assistant"}),
    )];
    let mut index = 0u32;
    if let Some((thinking, signature)) = &answer.thinking {
        for piece in plan::pieces(thinking) {
            out.push(eventstream::event(
                "contentBlockDelta",
                &json!({
                "contentBlockIndex": index, "delta": {"reasoningContent": {"text": piece}}}),
            ));
        }
        out.push(eventstream::event(
            "contentBlockDelta",
            &json!({
            "contentBlockIndex": index, "delta": {"reasoningContent": {"signature": signature}}}),
        ));
        out.push(eventstream::event(
            "contentBlockStop",
            &json!({"contentBlockIndex": index}),
        ));
        index += 1;
    }
    if let Some(text) = &answer.text {
        for piece in plan::pieces(text) {
            out.push(eventstream::event(
                "contentBlockDelta",
                &json!({
                "contentBlockIndex": index, "delta": {"text": piece}}),
            ));
        }
        out.push(eventstream::event(
            "contentBlockStop",
            &json!({"contentBlockIndex": index}),
        ));
        index += 1;
    }
    for (i, call) in answer.calls.iter().enumerate() {
        out.push(eventstream::event(
            "contentBlockStart",
            &json!({
            "contentBlockIndex": index,
            "start": {"toolUse": {"toolUseId": tool_use_id(n, i), "name": call.name}}}),
        ));
        let input = call.input().to_string();
        for fragment in plan::json_fragments(&input) {
            out.push(eventstream::event(
                "contentBlockDelta",
                &json!({
                "contentBlockIndex": index, "delta": {"toolUse": {"input": fragment}}}),
            ));
        }
        out.push(eventstream::event(
            "contentBlockStop",
            &json!({"contentBlockIndex": index}),
        ));
        index += 1;
    }
    if with_end {
        out.push(eventstream::event(
            "messageStop",
            &json!({"stopReason": stop_reason(answer)}),
        ));
        out.push(eventstream::event(
            "metadata",
            &json!({
            "usage": usage(req, answer), "metrics": {"latencyMs": 12}}),
        ));
    }
    out
}

fn event_stream(frames: Vec<Bytes>, delay: std::time::Duration, ending: Ending) -> Response {
    let mut resp = sse::response(frames, delay, ending, &[]);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    h.remove(header::CACHE_CONTROL);
    resp
}

/// `InvokeModel` for embedding models: Titan (`inputText`) and Cohere (`texts`).
pub(crate) async fn invoke(
    State(shared): State<Arc<Shared>>,
    Path(model): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let body = match admit(&shared, &model, &method, &uri, &headers, &bytes) {
        Ok(body) => body,
        Err(err) => return err.into_response(None),
    };
    if model.contains("titan-embed") {
        let Some(text) = body.get("inputText").and_then(Value::as_str) else {
            return ApiError::validation(
                "Malformed input request: required key [inputText] not found",
            )
            .into_response(None);
        };
        let dims = body
            .get("dimensions")
            .and_then(Value::as_u64)
            .unwrap_or(1024) as usize;
        return respond::json(
            200,
            &json!({
                "embedding": crate::openai::embeddings::vector(text, dims),
                "inputTextTokenCount": plan::count_tokens(text),
            }),
            &[],
        );
    }
    if model.contains("cohere.embed") {
        let Some(texts) = body.get("texts").and_then(Value::as_array) else {
            return ApiError::validation("Malformed input request: required key [texts] not found")
                .into_response(None);
        };
        if body.get("input_type").and_then(Value::as_str).is_none() {
            return ApiError::validation(
                "Malformed input request: required key [input_type] not found",
            )
            .into_response(None);
        }
        let vectors: Vec<Vec<f32>> = texts
            .iter()
            .map(|t| crate::openai::embeddings::vector(t.as_str().unwrap_or(""), 1024))
            .collect();
        return respond::json(
            200,
            &json!({
                "embeddings": vectors, "id": "mock", "response_type": "embeddings_floats", "texts": texts,
            }),
            &[],
        );
    }
    ApiError::validation(format!(
        "The provided model identifier is invalid for InvokeModel in this mock: {model}"
    ))
    .into_response(None)
}
