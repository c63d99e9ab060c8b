//! Log output: human-readable by default, one JSON object a line with
//! `litellm_settings.json_logs: true`. Level from `RUST_LOG`, else `LITELLM_LOG`, else info
//! (debug with `--detailed_debug`).

use tracing_subscriber::EnvFilter;

pub fn init(json: bool, debug: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .or_else(|| {
            std::env::var("LITELLM_LOG")
                .ok()
                .map(|l| l.to_ascii_lowercase())
        })
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder.with_target(false).init();
    }
}
