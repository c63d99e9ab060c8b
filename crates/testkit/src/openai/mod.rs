//! The OpenAI surface: chat completions, embeddings, models.

pub(crate) mod chat;
pub(crate) mod embeddings;
pub(crate) mod errors;
pub(crate) mod models;
pub(crate) mod responses;
pub(crate) mod validate;
