//! HTTP handlers, one module per API surface.

pub mod chat;
pub mod embeddings;
pub mod health;
pub mod models;
