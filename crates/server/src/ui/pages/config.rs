//! The running config (as loaded: after env substitution and LiteLLM compatibility
//! copies), with every secret redacted.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use crate::ui::Ui;
use crate::ui::html::esc;
use crate::ui::redact::redact;

/// Unset options (null) are noise on this page.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

pub async fn page(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    let session = match ui.signed_in(&headers) {
        Ok(s) => s,
        Err(login) => return login,
    };
    let value = serde_json::to_value(ui.app.config.as_ref()).unwrap_or_default();
    let text = serde_json::to_string_pretty(&without_nulls(redact(&value))).unwrap_or_default();
    let body = format!(
        "<p class=\"meta\">The config this process serves, as JSON after <code>os.environ/</code> \
         substitution. Keys, passwords, tokens, headers, stdio env values and URL credentials \
         are redacted.</p><pre class=\"config\" data-config>{}</pre>",
        esc(&text)
    );
    ui.page("Config", "/ui/config", &session, &body)
}
