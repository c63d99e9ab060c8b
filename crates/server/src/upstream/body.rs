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
pub fn passthrough_bytes(
    client: &Map<String, Value>,
    deployment: &Deployment,
    settings: &Settings,
) -> Result<Bytes, ApiError> {
    let view = Passthrough {
        client,
        deployment,
        drop: &settings.additional_drop_params,
    };
    serde_json::to_vec(&view)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(e.to_string()))
}

struct Passthrough<'a> {
    client: &'a Map<String, Value>,
    deployment: &'a Deployment,
    drop: &'a [String],
}

impl Passthrough<'_> {
    fn dropped(&self, key: &str) -> bool {
        self.drop.iter().any(|d| d == key)
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
            } else {
                map.serialize_entry(key, value)?;
            }
        }
        if !wrote_model {
            map.serialize_entry("model", &self.deployment.upstream_model)?;
        }
        for (key, value) in &self.deployment.default_params {
            if !self.client.contains_key(key) && !self.dropped(key) && key != "model" {
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

    /// The same body built as a map, the straightforward way, to compare with.
    fn passthrough(
        client: &Map<String, Value>,
        deployment: &Deployment,
        settings: &Settings,
    ) -> Map<String, Value> {
        let mut body = client.clone();
        body.insert(
            "model".into(),
            Value::String(deployment.upstream_model.clone()),
        );
        for (key, value) in &deployment.default_params {
            body.entry(key.clone()).or_insert_with(|| value.clone());
        }
        for key in &settings.additional_drop_params {
            body.remove(key);
        }
        body
    }

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
            spend_logs: true,
        };
        let out = passthrough(client.as_object().unwrap(), &deployment, &settings);
        assert_eq!(out["model"], "up-model");
        assert_eq!(out["vendor_x"], json!({"a": 1}));
        assert_eq!(out["temperature"], json!(0.2), "client's value wins");
        assert!(
            !out.contains_key("top_k"),
            "additional_drop_params removes it"
        );
    }
}
