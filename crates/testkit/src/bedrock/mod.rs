//! The Amazon Bedrock runtime surface: `POST /model/{modelId}/converse`,
//! `/converse-stream` (AWS event-stream binary framing) and `/invoke` (Titan and Cohere
//! embeddings), authenticated by SigV4 with the test credentials below (the signature
//! is verified) or a Bedrock API key (`Authorization: Bearer`, when `api_key` is set).

pub(crate) mod converse;
pub(crate) mod errors;
pub(crate) mod eventstream;
pub(crate) mod sigv4;
pub(crate) mod validate;

/// The access key id the mock accepts for SigV4.
pub const AWS_ACCESS_KEY_ID: &str = "AKIAGATEHOUSEMOCK001";
/// Its secret.
pub const AWS_SECRET_ACCESS_KEY: &str = "gatehouse/mock/SECRET+key/000000000000000";
