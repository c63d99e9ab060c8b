//! Building the body sent upstream from the client's JSON: passthrough first — only the
//! fields we must change are touched, every other field survives.

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::error::ApiError;

use crate::deployments::Deployment;
use crate::state::Settings;

/// The client's body with the model name rewritten, the deployment's provider parameters
/// filled in where the client did not set them, and the dropped parameters removed —
/// serialised straight to bytes without copying the client's map (every
/// OpenAI-compatible request takes this path).
///
/// `ask_usage` (a streamed chat request) sets `stream_options.include_usage`, so that the
/// upstream reports the tokens the request is billed for even when the client did not ask
/// for them (the relay then drops that extra chunk).
pub fn passthrough_bytes(
    client: &Map<String, Value>,
    deployment: &Deployment,
    settings: &Settings,
    ask_usage: bool,
) -> Result<Bytes, ApiError> {
    let view = Passthrough {
        client,
        deployment,
        drop: &settings.additional_drop_params,
        ask_usage,
    };
    serde_json::to_vec(&view)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

struct Passthrough<'a> {
    client: &'a Map<String, Value>,
    deployment: &'a Deployment,
    drop: &'a [String],
    ask_usage: bool,
}

impl Passthrough<'_> {
    fn dropped(&self, key: &str) -> bool {
        crate::providers::GATEWAY_ONLY_PARAMS.contains(&key) || self.drop.iter().any(|d| d == key)
    }
}

impl Serialize for Passthrough<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        let mut wrote_model = false;
        for (key, value) in self.client {
            if self.dropped(key) {
                continue;
            }
            if key == "model" {
                map.serialize_entry("model", &self.deployment.upstream_model)?;
                wrote_model = true;
            } else if key == "metadata" && value.get("tags").is_some() {
                // `metadata.tags` is the router's (tag routing); OpenAI's own `metadata`
                // takes string values only.
                let mut metadata = value.as_object().cloned().unwrap_or_default();
                metadata.remove("tags");
                if !metadata.is_empty() {
                    map.serialize_entry(key, &metadata)?;
                }
            } else if key == "stream_options" && self.ask_usage {
                let mut options = value.as_object().cloned().unwrap_or_default();
                options.insert("include_usage".into(), Value::Bool(true));
                map.serialize_entry(key, &options)?;
            } else {
                map.serialize_entry(key, value)?;
            }
        }
        if !wrote_model {
            map.serialize_entry("model", &self.deployment.upstream_model)?;
        }
        if self.ask_usage && !self.client.contains_key("stream_options") {
            map.serialize_entry(
                "stream_options",
                &serde_json::json!({"include_usage": true}),
            )?;
        }
        for (key, value) in &self.deployment.default_params {
            if !self.client.contains_key(key)
                && !self.dropped(key)
                && key != "model"
                && (!self.ask_usage || key != "stream_options")
            {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_unknown_fields_and_rewrites_model() {
        let client =
            json!({"model": "public", "messages": [], "vendor_x": {"a": 1}, "temperature": 0.2});
        let mut deployment_params = Map::new();
        deployment_params.insert("temperature".into(), json!(0.9));
        deployment_params.insert("top_k".into(), json!(5));
        let deployment =
            crate::deployments::tests_support::deployment("up-model", deployment_params);
        let settings = Settings {
            max_request_bytes: 1,
            max_request_size_mb: 1.0,
            drop_params: false,
            additional_drop_params: vec!["top_k".into()],
            mcp_max_iterations: 1,
        };
        let bytes =
            passthrough_bytes(client.as_object().unwrap(), &deployment, &settings, false).unwrap();
        let out: Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(out["model"], "up-model");
        assert_eq!(out["vendor_x"], json!({"a": 1}));
        assert_eq!(out["temperature"], json!(0.2), "client's value wins");
        assert!(
            !out.contains_key("top_k"),
            "additional_drop_params removes it"
        );
        assert!(!out.contains_key("stream_options"));
        // A stream is asked for its usage, keeping the client's other stream options.
        let mut client = client.as_object().unwrap().clone();
        client.insert(
            "stream_options".into(),
            json!({"continuous_usage_stats": false}),
        );
        let bytes = passthrough_bytes(&client, &deployment, &settings, true).unwrap();
        let out: Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            out["stream_options"],
            json!({"continuous_usage_stats": false, "include_usage": true})
        );
        client.remove("stream_options");
        let bytes = passthrough_bytes(&client, &deployment, &settings, true).unwrap();
        let out: Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(out["stream_options"], json!({"include_usage": true}));
    }
}
