//! LiteLLM's logging callbacks (`litellm_settings.callbacks`, `success_callback`,
//! `failure_callback`): `otel` turns on OpenTelemetry traces; every other integration is
//! warned about by name, with the OTel route to the same place where there is one.

use serde_json::Value;

use crate::schema::Config;

const LISTS: [&str; 3] = ["callbacks", "success_callback", "failure_callback"];

fn names<'a>(config: &'a Config, list: &str) -> Vec<&'a str> {
    match config.litellm_settings.extra.get(list) {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(one)) => vec![one.as_str()],
        _ => Vec::new(),
    }
}

/// Whether a callback list names `otel` (LiteLLM also spells it `opentelemetry`).
pub fn otel(config: &Config) -> bool {
    LISTS
        .iter()
        .flat_map(|l| names(config, l))
        .any(|n| matches!(n, "otel" | "opentelemetry"))
}

/// `(path, message)` for each callback that is not OTel.
pub fn warnings(config: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for list in LISTS {
        for name in names(config, list) {
            if matches!(name, "otel" | "opentelemetry") {
                continue;
            }
            let route = match name {
                "langfuse" | "langfuse_otel" => {
                    "Langfuse ingests OTLP: use callbacks: [otel] with OTEL_EXPORTER_OTLP_ENDPOINT at its /api/public/otel"
                }
                "datadog" | "datadog_llm_observability" => {
                    "the Datadog Agent ingests OTLP: use callbacks: [otel] with OTEL_EXPORTER_OTLP_ENDPOINT at the agent's port 4318"
                }
                "arize" | "arize_phoenix" => {
                    "Arize Phoenix ingests OTLP: use callbacks: [otel] with OTEL_EXPORTER_OTLP_ENDPOINT at Phoenix"
                }
                "langsmith" => {
                    "LangSmith ingests OTLP: use callbacks: [otel] with OTEL_EXPORTER_OTLP_ENDPOINT at its /otel endpoint"
                }
                "prometheus" => "metrics are always served at /metrics",
                "s3" | "gcs_bucket" | "azure_storage" => {
                    "use callbacks: [otel] and an OpenTelemetry Collector with a storage exporter"
                }
                _ => "use callbacks: [otel] and an OpenTelemetry Collector that forwards to it",
            };
            out.push((
                format!("litellm_settings.{list}"),
                format!("callback '{name}' is not supported, ignored; {route}"),
            ));
        }
    }
    out
}
