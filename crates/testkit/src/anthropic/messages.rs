//! `POST /v1/messages` (message objects and SSE event streams) and `count_tokens`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::{self, ApiError};
use super::validate::{self, MessagesRequest};
use crate::plan::{self, Answer, Plan};
use crate::respond;
use crate::sse::{self, Ending};
use crate::state::{Shared, pause};

struct Ids {
    message: String,
    request: String,
    base: u64,
}

impl Ids {
    fn new(shared: &Shared) -> Self {
        let n = shared.next_id();
        Self {
            message: format!("msg_mock{n:018}"),
            request: format!("req_mock{n:018}"),
            base: n,
        }
    }

    fn tool(&self, i: usize) -> String {
        format!("toolu_mock{:015}{:03}", self.base, i)
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
    let ids = Ids::new(&shared);
    if let Some(err) = errors::check_headers(shared.opts.api_key.as_deref(), &headers) {
        return err.into_response(&ids.request);
    }
    let Ok(body) = parsed else {
        return errors::bad_json().into_response(&ids.request);
    };
    let req = match validate::validate(&body, true) {
        Ok(req) => req,
        Err(err) => return err.into_response(&ids.request),
    };
    if let Some(err) = errors::check_model(shared.opts.models.as_deref(), req.model) {
        return err.into_response(&ids.request);
    }
    let (delay, plan) = shared.plan(|| plan::default_answer(req.last_turn(), &req.tools));
    pause(delay).await;
    let rid = [("request-id", ids.request.clone())];
    let chunk_delay = shared.opts.chunk_delay;
    match plan {
        Plan::Answer(answer) if req.stream => sse::response(
            stream_frames(&req, &ids, &answer, true),
            chunk_delay,
            Ending::Complete,
            &rid,
        ),
        Plan::Answer(answer) => respond::json(200, &message(&req, &ids, &answer), &rid),
        Plan::RawError { status, body } => respond::json(status, &body, &rid),
        Plan::Status {
            status,
            retry_after_secs,
        } => ApiError::for_status(status, retry_after_secs).into_response(&ids.request),
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
                    &rid,
                )
            } else {
                sse::truncated_json(&message(&req, &ids, &answer))
            }
        }
        Plan::ErrorMidStream {
            answer,
            after_chunks,
        } => {
            if req.stream {
                let mut frames = stream_frames(&req, &ids, &answer, false);
                frames.truncate(after_chunks);
                let err = ApiError::for_status(529, None);
                frames.push(sse::event(
                    "error",
                    &json!({"type": "error", "error": {"type": err.kind, "message": err.message}}),
                ));
                sse::response(frames, chunk_delay, Ending::Complete, &rid)
            } else {
                ApiError::for_status(500, None).into_response(&ids.request)
            }
        }
    }
}

pub(crate) async fn count_tokens(
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
    let ids = Ids::new(&shared);
    if let Some(err) = errors::check_headers(shared.opts.api_key.as_deref(), &headers) {
        return err.into_response(&ids.request);
    }
    let Ok(body) = parsed else {
        return errors::bad_json().into_response(&ids.request);
    };
    let req = match validate::validate(&body, false) {
        Ok(req) => req,
        Err(err) => return err.into_response(&ids.request),
    };
    if let Some(err) = errors::check_model(shared.opts.models.as_deref(), req.model) {
        return err.into_response(&ids.request);
    }
    respond::json(
        200,
        &json!({"input_tokens": req.input_tokens}),
        &[("request-id", ids.request)],
    )
}

fn stop_reason(answer: &Answer) -> &'static str {
    if answer.calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    }
}

fn usage(input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "service_tier": "standard",
    })
}

fn message(req: &MessagesRequest<'_>, ids: &Ids, answer: &Answer) -> Value {
    let mut content = Vec::new();
    if let Some((thinking, signature)) = &answer.thinking {
        content.push(json!({"type": "thinking", "thinking": thinking, "signature": signature}));
    }
    if let Some(text) = &answer.text {
        content.push(json!({"type": "text", "text": text}));
    }
    for (i, call) in answer.calls.iter().enumerate() {
        content.push(json!({"type": "tool_use", "id": ids.tool(i), "name": call.name, "input": call.input()}));
    }
    json!({
        "id": ids.message,
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": stop_reason(answer),
        "stop_sequence": null,
        "usage": usage(req.input_tokens, plan::answer_tokens(answer)),
    })
}

/// All SSE events of a streamed answer; `with_end` adds message_delta and message_stop.
fn stream_frames(
    req: &MessagesRequest<'_>,
    ids: &Ids,
    answer: &Answer,
    with_end: bool,
) -> Vec<Bytes> {
    let mut frames = vec![sse::event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": ids.message,
            "type": "message",
            "role": "assistant",
            "model": req.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": usage(req.input_tokens, 1),
        }}),
    )];
    let mut index = 0usize;
    let mut block = |frames: &mut Vec<Bytes>, start: Value, deltas: Vec<Value>| {
        frames.push(sse::event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        if index == 0 {
            frames.push(sse::event("ping", &json!({"type": "ping"})));
        }
        for delta in deltas {
            frames.push(sse::event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            ));
        }
        frames.push(sse::event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    };
    if let Some((thinking, signature)) = &answer.thinking {
        let mut deltas: Vec<Value> = plan::pieces(thinking)
            .into_iter()
            .map(|p| json!({"type": "thinking_delta", "thinking": p}))
            .collect();
        deltas.push(json!({"type": "signature_delta", "signature": signature}));
        block(
            &mut frames,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            deltas,
        );
    }
    if let Some(text) = &answer.text {
        let deltas = plan::pieces(text)
            .into_iter()
            .map(|p| json!({"type": "text_delta", "text": p}))
            .collect();
        block(&mut frames, json!({"type": "text", "text": ""}), deltas);
    }
    for (i, call) in answer.calls.iter().enumerate() {
        let input = call.input().to_string();
        let mut deltas = vec![json!({"type": "input_json_delta", "partial_json": ""})];
        deltas.extend(
            plan::json_fragments(&input)
                .into_iter()
                .map(|f| json!({"type": "input_json_delta", "partial_json": f})),
        );
        block(
            &mut frames,
            json!({"type": "tool_use", "id": ids.tool(i), "name": call.name, "input": {}}),
            deltas,
        );
    }
    if !with_end {
        return frames;
    }
    let output = plan::answer_tokens(answer);
    frames.push(sse::event(
        "message_delta",
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(answer), "stop_sequence": null},
            "usage": {
                "input_tokens": req.input_tokens,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "output_tokens": output,
            },
        }),
    ));
    frames.push(sse::event("message_stop", &json!({"type": "message_stop"})));
    frames
}
