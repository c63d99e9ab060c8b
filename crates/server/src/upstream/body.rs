//! Building the body sent upstream from the client's JSON: passthrough first — only the
//! fields we must change are touched, every other field survives.

use serde_json::{Map, Value};

use crate::deployments::Deployment;
use crate::state::Settings;

/// The client's body with the model name rewritten, the deployment's provider parameters
/// filled in where the client did not set them, and the dropped parameters removed.
pub fn passthrough(
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
