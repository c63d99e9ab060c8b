//! Log output: human-readable by default, one JSON object a line with
//! `litellm_settings.json_logs: true`. Level from `RUST_LOG`, else `LITELLM_LOG`, else info
//! (debug with `--detailed_debug`).
//!
//! Every line passes through [`gatehouse_config::redact::text`] on its way to stderr: an
//! upstream URL with `user:pass@` or `?key=` in it can reach a log line from many places
//! (an HTTP client's error names its URL), and this is the one place that catches them all.

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
        .with_writer(|| RedactingStderr);
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

/// Stderr, with secrets in URLs masked. The formatter hands over each event whole in one
/// `write`, so a URL is never split between two calls.
struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut err = std::io::stderr().lock();
        match std::str::from_utf8(buf) {
            Ok(line) => err.write_all(gatehouse_config::redact::text(line).as_bytes())?,
            Err(_) => err.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
