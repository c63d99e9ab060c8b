//! OpenAI `/v1/embeddings` <-> Bedrock `InvokeModel` for Amazon Titan and Cohere embed
//! models. Titan embeds one text per call (the server makes one call per input); Cohere
//! takes a batch.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::MapError;

/// Which body shape a model id speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Titan,
    Cohere,
}

impl Family {
    pub fn of(model_id: &str) -> Result<Self, MapError> {
        let m = model_id.to_ascii_lowercase();
        if m.contains("titan-embed") {
            Ok(Family::Titan)
        } else if m.contains("cohere.embed") {
            Ok(Family::Cohere)
        } else {
            Err(MapError::Unsupported(format!(
                "embeddings with Bedrock model {model_id:?} (Titan and Cohere embed models are supported)"
            )))
        }
    }
}

/// Texts of an OpenAI embeddings `input`.
pub fn inputs(body: &Map<String, Value>) -> Result<Vec<String>, MapError> {
    match body.get("input") {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
            Ok(items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect())
        }
        _ => Err(MapError::InvalidRequest(
            "input must be a string or a non-empty list of strings".to_owned(),
        )),
    }
}

/// `InvokeModel` bodies: one per text for Titan, one for all texts for Cohere.
pub fn request_bodies(family: Family, texts: &[String], body: &Map<String, Value>) -> Vec<Value> {
    match family {
        Family::Titan => texts
            .iter()
            .map(|t| {
                let mut b = json!({"inputText": t});
                if let Some(d) = body.get("dimensions").filter(|v| !v.is_null()) {
                    crate::json::set(&mut b, "dimensions", d.clone());
                }
                b
            })
            .collect(),
        Family::Cohere => {
            let input_type = body
                .get("input_type")
                .cloned()
                .unwrap_or_else(|| json!("search_document"));
            vec![json!({"texts": texts, "input_type": input_type})]
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanResponse {
    embedding: Vec<f32>,
    #[serde(default)]
    input_text_token_count: u64,
}

#[derive(Deserialize)]
struct CohereResponse {
    embeddings: Vec<Vec<f32>>,
}

/// Vectors (and tokens counted, when the model reports them) of one answer.
pub fn parse_response(family: Family, body: &[u8]) -> Result<(Vec<Vec<f32>>, u64), MapError> {
    let invalid = |e: serde_json::Error| MapError::InvalidUpstream(e.to_string());
    match family {
        Family::Titan => {
            let r: TitanResponse = serde_json::from_slice(body).map_err(invalid)?;
            Ok((vec![r.embedding], r.input_text_token_count))
        }
        Family::Cohere => {
            let r: CohereResponse = serde_json::from_slice(body).map_err(invalid)?;
            Ok((r.embeddings, 0))
        }
    }
}

/// OpenAI's embeddings list (base64 when the client asked, as the OpenAI SDKs do).
pub fn openai_response(
    vectors: &[Vec<f32>],
    tokens: u64,
    public_model: &str,
    base64: bool,
) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                json!(crate::gemini::embeddings::base64_f32(v))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": public_model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
}
