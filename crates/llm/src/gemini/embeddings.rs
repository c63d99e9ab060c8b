//! OpenAI `/v1/embeddings` <-> Gemini `batchEmbedContents` (one request per input).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::MapError;

/// The translated embeddings request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    /// Body to POST to [`super::embed_path`].
    pub body: Value,
    /// The client wants base64 (little-endian f32) instead of float arrays; the OpenAI
    /// SDKs ask for it by default.
    pub base64: bool,
}

/// Maps an OpenAI embeddings body for `target_model`. Token-array inputs have no Gemini
/// equivalent and are refused. `task_type` and `title` (LiteLLM's names) pass through.
pub fn embeddings_request(
    body: &Map<String, Value>,
    target_model: &str,
) -> Result<EmbedRequest, MapError> {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::Array(_)) => {
            return Err(MapError::Unsupported(
                "token-array embedding inputs (send text)".to_owned(),
            ));
        }
        _ => {
            return Err(MapError::InvalidRequest(
                "input must be a string or a list of strings".to_owned(),
            ));
        }
    };
    if inputs.is_empty() {
        return Err(MapError::InvalidRequest(
            "input must not be empty".to_owned(),
        ));
    }
    let model = format!(
        "models/{}",
        target_model.strip_prefix("models/").unwrap_or(target_model)
    );
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(MapError::InvalidRequest(format!(
                "encoding_format must be float or base64, got {other:?}"
            )));
        }
    };
    let requests: Vec<Value> = inputs
        .into_iter()
        .map(|text| {
            let mut req = json!({"model": model, "content": {"parts": [{"text": text}]}});
            if let Some(d) = body.get("dimensions").filter(|v| !v.is_null()) {
                crate::json::set(&mut req, "outputDimensionality", d.clone());
            }
            for (from, to) in [
                ("task_type", "taskType"),
                ("taskType", "taskType"),
                ("title", "title"),
            ] {
                if let Some(v) = body.get(from).filter(|v| !v.is_null()) {
                    crate::json::set(&mut req, to, v.clone());
                }
            }
            req
        })
        .collect();
    Ok(EmbedRequest {
        body: json!({"requests": requests}),
        base64,
    })
}

#[derive(Deserialize)]
struct BatchResponse {
    #[serde(default)]
    embeddings: Vec<Embedding>,
}

#[derive(Deserialize)]
struct Embedding {
    #[serde(default)]
    values: Vec<f32>,
}

/// Maps a `batchEmbedContents` answer to OpenAI's embeddings list. Gemini reports no
/// token usage for embeddings; usage is zero.
pub fn embeddings_response(
    body: &[u8],
    public_model: &str,
    base64: bool,
) -> Result<Value, MapError> {
    let resp: BatchResponse =
        serde_json::from_slice(body).map_err(|e| MapError::InvalidUpstream(e.to_string()))?;
    let data: Vec<Value> = resp
        .embeddings
        .iter()
        .enumerate()
        .map(|(index, e)| {
            let embedding = if base64 {
                json!(base64_f32(&e.values))
            } else {
                json!(e.values)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": public_model,
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }))
}

/// Standard base64 of the little-endian f32 bytes (what OpenAI sends for `base64`).
pub(crate) fn base64_f32(values: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
