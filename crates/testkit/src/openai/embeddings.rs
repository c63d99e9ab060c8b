//! `POST /v1/embeddings`: deterministic unit vectors derived from the input text.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use serde_json::{Value, json};

use super::errors::{self, ApiError};
use super::validate::no_model;
use crate::state::{Shared, pause};
use crate::{b64, plan, respond};

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
    let result = build(&shared, &body);
    pause(shared.opts.latency).await;
    match result {
        Ok(v) => respond::json(200, &v, &[]),
        Err(e) => e.into_response(),
    }
}

fn build(shared: &Shared, body: &Value) -> Result<Value, ApiError> {
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.as_str(),
        _ => return Err(no_model()),
    };
    let inputs = inputs(body.get("input"))?;
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                format!("Invalid value: '{other}'. Supported values are: 'float' and 'base64'."),
                Some("encoding_format".to_owned()),
                Some("invalid_value"),
            ));
        }
    };
    let dims = match body.get("dimensions").filter(|v| !v.is_null()) {
        None => default_dims(model),
        Some(_) if model == "text-embedding-ada-002" => {
            return Err(ApiError::invalid(
                "This model does not support specifying dimensions.",
                None,
                None,
            ));
        }
        Some(v) => match v.as_u64() {
            Some(d) if d >= 1 && d <= default_dims(model) as u64 => d as usize,
            _ => {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid 'dimensions': expected an integer between 1 and {}.",
                        default_dims(model)
                    ),
                    Some("dimensions".to_owned()),
                    Some("invalid_value"),
                ));
            }
        },
    };
    if let Some(err) = errors::check_model(shared.opts.models.as_deref(), model) {
        return Err(err);
    }
    let mut tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            tokens += plan::count_tokens(text).max(1);
            let v = vector(text, dims);
            let embedding = if base64 {
                let mut raw = Vec::with_capacity(v.len() * 4);
                for x in &v {
                    raw.extend_from_slice(&x.to_le_bytes());
                }
                Value::String(b64::encode(&raw))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

fn default_dims(model: &str) -> usize {
    if model.contains("3-large") {
        3072
    } else {
        1536
    }
}

/// Inputs as strings: a string, an array of strings, token ids or arrays of token ids.
fn inputs(input: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let invalid = || {
        ApiError::invalid(
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            None,
            None,
        )
    };
    match input {
        None | Some(Value::Null) => Err(ApiError::invalid(
            "Missing required parameter: 'input'.",
            Some("input".to_owned()),
            Some("missing_required_parameter"),
        )),
        Some(Value::String(s)) if s.is_empty() => Err(invalid()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if items.is_empty() => Err(invalid()),
        Some(Value::Array(items)) if items.iter().all(Value::is_number) => {
            Ok(vec![Value::Array(items.clone()).to_string()])
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) if !s.is_empty() => Ok(s.clone()),
                Value::Array(t) if !t.is_empty() => Ok(item.to_string()),
                _ => Err(invalid()),
            })
            .collect(),
        Some(_) => Err(invalid()),
    }
}

/// A unit vector seeded by the FNV-1a hash of the text (same text, same vector).
pub(crate) fn vector(text: &str, dims: usize) -> Vec<f32> {
    let mut seed: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        seed ^= u64::from(b);
        seed = seed.wrapping_mul(0x0100_0000_01b3);
    }
    let mut state = seed | 1;
    let mut v: Vec<f32> = (0..dims)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            let r = state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
            (r as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}
