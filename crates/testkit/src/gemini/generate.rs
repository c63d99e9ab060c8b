//! `POST /v1beta/models/{model}:{method}`: generateContent, streamGenerateContent,
//! embedContent, batchEmbedContents.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::{self, ApiError};
use super::validate::{self, GenerateRequest};
use crate::plan::{self, Answer, Plan};
use crate::respond;
use crate::sse::{self, Ending};
use crate::state::{Shared, pause};

/// Embedding size Gemini's `text-embedding-004` / `gemini-embedding-001` default to here.
const EMBED_DIMS: usize = 768;

pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<String>,
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
    let Some((model, action)) = target.split_once(':') else {
        return ApiError::for_status(404).into_response(None);
    };
    if let Some(err) = errors::check_key(shared.opts.api_key.as_deref(), &headers, &uri) {
        return err.into_response(None);
    }
    let Ok(body) = parsed else {
        return ApiError::invalid("Invalid JSON payload received. Unexpected token.")
            .into_response(None);
    };
    if let Some(err) = errors::check_model(shared.opts.models.as_deref(), model, action) {
        return err.into_response(None);
    }
    match action {
        "generateContent" => generate(&shared, model, &body, None).await,
        "streamGenerateContent" => {
            let sse = uri
                .query()
                .is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
            generate(&shared, model, &body, Some(sse)).await
        }
        "embedContent" => embed(model, &body, false),
        "batchEmbedContents" => embed(model, &body, true),
        _ => ApiError::for_status(404).into_response(None),
    }
}

/// `stream`: `None` for generateContent, `Some(alt_sse)` for streamGenerateContent.
async fn generate(shared: &Shared, model: &str, body: &Value, stream: Option<bool>) -> Response {
    let req = match validate::validate(body) {
        Ok(req) => req,
        Err(err) => return err.into_response(None),
    };
    let n = shared.next_id();
    let response_id = format!("mockresp{n:012}");
    let (delay, plan) = shared.plan(|| plan::default_answer(req.last_turn(), &req.tools));
    pause(delay).await;
    let chunk_delay = shared.opts.chunk_delay;
    let ctx = Ctx {
        model,
        response_id: &response_id,
        req: &req,
    };
    match plan {
        Plan::Answer(answer) => match stream {
            None => respond::json(200, &ctx.full(&answer), &[]),
            Some(alt_sse) => stream_response(
                ctx.chunks(&answer, true),
                alt_sse,
                chunk_delay,
                Ending::Complete,
            ),
        },
        Plan::RawError { status, body } => respond::json(status, &body, &[]),
        Plan::Status {
            status,
            retry_after_secs,
        } => ApiError::for_status(status).into_response(retry_after_secs),
        Plan::Drop {
            answer,
            after_chunks,
            graceful,
        } => match stream {
            Some(alt_sse) => stream_response(
                ctx.chunks(&answer, true),
                alt_sse,
                chunk_delay,
                Ending::after(after_chunks, graceful),
            ),
            None => sse::truncated_json(&ctx.full(&answer)),
        },
        Plan::ErrorMidStream {
            answer,
            after_chunks,
        } => match stream {
            Some(alt_sse) => {
                let mut chunks = ctx.chunks(&answer, false);
                chunks.truncate(after_chunks);
                chunks.push(ApiError::for_status(503).body());
                stream_response(chunks, alt_sse, chunk_delay, Ending::Complete)
            }
            None => ApiError::for_status(500).into_response(None),
        },
    }
}

struct Ctx<'a> {
    model: &'a str,
    response_id: &'a str,
    req: &'a GenerateRequest<'a>,
}

impl Ctx<'_> {
    fn usage(&self, answer: &Answer) -> Value {
        let prompt = self.req.input_tokens;
        let candidates = plan::answer_tokens(answer);
        let mut usage = json!({
            "promptTokenCount": prompt,
            "candidatesTokenCount": candidates,
            "totalTokenCount": prompt + candidates,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        });
        if let Some((thinking, _)) = &answer.thinking {
            let thoughts = plan::count_tokens(thinking);
            usage["thoughtsTokenCount"] = json!(thoughts);
            usage["totalTokenCount"] = json!(prompt + candidates + thoughts);
        }
        usage
    }

    fn envelope(&self, parts: Vec<Value>, finish: bool, answer: &Answer) -> Value {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        let mut out = json!({
            "candidates": [],
            "modelVersion": self.model,
            "responseId": self.response_id,
        });
        if finish {
            candidate["finishReason"] = json!("STOP");
            out["usageMetadata"] = self.usage(answer);
        } else {
            out["usageMetadata"] = json!({
                "promptTokenCount": self.req.input_tokens,
                "totalTokenCount": self.req.input_tokens,
            });
        }
        out["candidates"] = json!([candidate]);
        out
    }

    /// Thought summary (with the thinking signature), text, then one part per call; the
    /// first call carries the signature when there was thinking, as Gemini 2.5+ does.
    fn parts(&self, answer: &Answer) -> Vec<Value> {
        let mut parts = Vec::new();
        if let Some((thinking, _)) = &answer.thinking {
            parts.push(json!({"text": thinking, "thought": true}));
        }
        if let Some(text) = &answer.text {
            parts.push(json!({"text": text}));
        }
        parts.extend(self.call_parts(answer));
        parts
    }

    fn call_parts(&self, answer: &Answer) -> Vec<Value> {
        answer
            .calls
            .iter()
            .enumerate()
            .map(|(i, call)| {
                let mut part = json!({"functionCall": {"name": call.name, "args": call.input()}});
                if i == 0
                    && let Some((_, signature)) = &answer.thinking
                {
                    part["thoughtSignature"] = json!(signature);
                }
                part
            })
            .collect()
    }

    fn full(&self, answer: &Answer) -> Value {
        self.envelope(self.parts(answer), true, answer)
    }

    /// Stream events: thinking, text pieces, then all calls in one event (Gemini sends
    /// parallel calls together), the last event carrying `finishReason` and usage.
    fn chunks(&self, answer: &Answer, with_end: bool) -> Vec<Value> {
        let mut parts: Vec<Vec<Value>> = Vec::new();
        if let Some((thinking, _)) = &answer.thinking {
            parts.push(vec![json!({"text": thinking, "thought": true})]);
        }
        if let Some(text) = &answer.text {
            parts.extend(
                plan::pieces(text)
                    .into_iter()
                    .map(|p| vec![json!({"text": p})]),
            );
        }
        if !answer.calls.is_empty() {
            parts.push(self.call_parts(answer));
        }
        if parts.is_empty() {
            parts.push(vec![json!({"text": ""})]);
        }
        let last = parts.len() - 1;
        parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| self.envelope(p, with_end && i == last, answer))
            .collect()
    }
}

/// `alt=sse`: `data: <json>\r\n\r\n` events; otherwise one JSON array, streamed.
fn stream_response(
    chunks: Vec<Value>,
    alt_sse: bool,
    delay: std::time::Duration,
    ending: Ending,
) -> Response {
    if alt_sse {
        let frames = chunks
            .iter()
            .map(|c| {
                let mut out = b"data: ".to_vec();
                let _ = serde_json::to_writer(&mut out, c);
                out.extend_from_slice(b"\r\n\r\n");
                Bytes::from(out)
            })
            .collect();
        return sse::response(frames, delay, ending, &[]);
    }
    let body = serde_json::to_vec(&Value::Array(chunks)).unwrap_or_default();
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    resp
}

fn embed(model: &str, body: &Value, batch: bool) -> Response {
    let one = |req: &Value| -> Result<Value, ApiError> {
        let text = req
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .map(|parts| {
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("")
            })
            .ok_or_else(|| {
                ApiError::invalid("* EmbedContentRequest.content: content is not specified")
            })?;
        if let Some(m) = req.get("model").and_then(Value::as_str)
            && m != format!("models/{model}")
        {
            return Err(ApiError::invalid(format!(
                "* BatchEmbedContentsRequest.model: the model of every request must be models/{model}"
            )));
        }
        let dims = req
            .get("outputDimensionality")
            .and_then(Value::as_u64)
            .map_or(EMBED_DIMS, |d| usize::try_from(d).unwrap_or(EMBED_DIMS));
        Ok(json!({"values": crate::openai::embeddings::vector(&text, dims)}))
    };
    let result = if batch {
        match body.get("requests").and_then(Value::as_array) {
            Some(reqs) if !reqs.is_empty() => reqs
                .iter()
                .map(one)
                .collect::<Result<Vec<_>, _>>()
                .map(|e| json!({"embeddings": e})),
            _ => Err(ApiError::invalid(
                "* BatchEmbedContentsRequest.requests: requests is not specified",
            )),
        }
    } else {
        one(body).map(|e| json!({"embedding": e}))
    };
    match result {
        Ok(v) => respond::json(200, &v, &[]),
        Err(e) => e.into_response(None),
    }
}
