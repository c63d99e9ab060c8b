//! Knobs for a mock server instance.

use std::time::Duration;

/// Configuration of a [`crate::MockServer`].
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Address to bind; port 0 picks a free port.
    pub host: String,
    /// Port to bind; 0 picks a free port.
    pub port: u16,
    /// Expected credential: the OpenAI `Authorization: Bearer` token and the Anthropic
    /// `x-api-key`. `None` accepts any (or no) credential.
    pub api_key: Option<String>,
    /// Models that exist; a request for another model gets the vendor's 404.
    /// `None` accepts any model name.
    pub models: Option<Vec<String>>,
    /// Slept before every chat/messages/responses/embeddings response (before the first chunk of a stream).
    pub latency: Duration,
    /// Slept between stream chunks.
    pub chunk_delay: Duration,
    /// Every n-th chat-completions, messages or responses request (1-based, counted across
    /// all three) fails with `fail_status`, shaped for the API that was called.
    pub fail_every_n: Option<u64>,
    /// Status used by `fail_every_n`: 429 (sent with `retry-after`), 500, 503, 529...
    pub fail_status: u16,
    /// Keep every request for [`crate::MockServer::requests`]. Turn off for load tests so
    /// memory stays flat.
    pub record_requests: bool,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: 0,
            api_key: None,
            models: None,
            latency: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            fail_every_n: None,
            fail_status: 429,
            record_requests: true,
        }
    }
}

impl MockOptions {
    /// Options with a required credential.
    pub fn with_api_key(key: impl Into<String>) -> Self {
        Self {
            api_key: Some(key.into()),
            ..Self::default()
        }
    }
}
