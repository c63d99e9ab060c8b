//! `POST /v1/chat/completions`: `chat.completion` objects and `chat.completion.chunk` streams.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::{self, ApiError};
use super::validate::{self, ChatRequest};
use crate::plan::{self, Answer, Plan};
use crate::respond;
use crate::sse::{self, Ending};
use crate::state::{Shared, now_secs, pause};

const FINGERPRINT: &str = "fp_mock0001";

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
    let req = match validate::validate(&body) {
        Ok(req) => req,
        Err(err) => return err.into_response(),
    };
    if let Some(err) = errors::check_model(shared.opts.models.as_deref(), req.model) {
        return err.into_response();
    }
    let (delay, plan) = shared.plan(|| plan::default_answer(req.last_turn(), &req.tools));
    pause(delay).await;
    let ids = Ids::new(&shared);
    match plan {
        Plan::Answer(answer) if req.stream => {
            let frames = stream_frames(&req, &ids, &answer, true);
            sse::response(frames, shared.opts.chunk_delay, Ending::Complete, &[])
        }
        Plan::Answer(answer) => respond::json(200, &completion(&req, &ids, &answer), &[]),
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
                    shared.opts.chunk_delay,
                    Ending::after(after_chunks, graceful),
                    &[],
                )
            } else {
                sse::truncated_json(&completion(&req, &ids, &answer))
            }
        }
        Plan::ErrorMidStream {
            answer,
            after_chunks,
        } => {
            if req.stream {
                let mut frames = stream_frames(&req, &ids, &answer, false);
                frames.truncate(after_chunks);
                frames.push(sse::data(&ApiError::for_status(500, None).body()));
                sse::response(frames, shared.opts.chunk_delay, Ending::Complete, &[])
            } else {
                ApiError::for_status(500, None).into_response()
            }
        }
    }
}

/// Ids for one completion.
struct Ids {
    completion: String,
    calls_base: u64,
    created: u64,
}

impl Ids {
    fn new(shared: &Shared) -> Self {
        let n = shared.next_id();
        Self {
            completion: format!("chatcmpl-mock{n:020}"),
            calls_base: n,
            created: now_secs(),
        }
    }

    fn call(&self, i: usize) -> String {
        format!("call_mock{:012}{:03}", self.calls_base, i)
    }
}

fn finish_reason(answer: &Answer) -> &'static str {
    if answer.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    }
}

fn usage(prompt: u64, completion: u64) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

fn completion(req: &ChatRequest<'_>, ids: &Ids, answer: &Answer) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": answer.text,
        "refusal": null,
        "annotations": [],
    });
    if !answer.calls.is_empty() {
        let calls: Vec<Value> = answer
            .calls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({
                    "id": ids.call(i),
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                })
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": ids.completion,
        "object": "chat.completion",
        "created": ids.created,
        "model": req.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(answer),
        }],
        "usage": usage(req.prompt_tokens, plan::answer_tokens(answer)),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    })
}

/// All SSE frames of a streamed answer; `with_end` adds the finish/usage chunks and `[DONE]`.
fn stream_frames(req: &ChatRequest<'_>, ids: &Ids, answer: &Answer, with_end: bool) -> Vec<Bytes> {
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut c = json!({
            "id": ids.completion,
            "object": "chat.completion.chunk",
            "created": ids.created,
            "model": req.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if req.include_usage {
            c["usage"] = Value::Null;
        }
        sse::data(&c)
    };
    let mut frames = Vec::new();
    let first_content = if answer.text.is_some() {
        json!("")
    } else {
        Value::Null
    };
    frames.push(chunk(
        json!({"role": "assistant", "content": first_content, "refusal": null}),
        None,
    ));
    if let Some(text) = &answer.text {
        for piece in plan::pieces(text) {
            frames.push(chunk(json!({"content": piece}), None));
        }
    }
    for (i, call) in answer.calls.iter().enumerate() {
        frames.push(chunk(
            json!({"tool_calls": [{
                "index": i,
                "id": ids.call(i),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }]}),
            None,
        ));
        for frag in plan::json_fragments(&call.arguments) {
            frames.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": frag}}]}),
                None,
            ));
        }
    }
    if !with_end {
        return frames;
    }
    frames.push(chunk(json!({}), Some(finish_reason(answer))));
    if req.include_usage {
        frames.push(sse::data(&json!({
            "id": ids.completion,
            "object": "chat.completion.chunk",
            "created": ids.created,
            "model": req.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [],
            "usage": usage(req.prompt_tokens, plan::answer_tokens(answer)),
        })));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}
