//! HTTP handlers, one module per API surface.

pub mod chat;
pub mod embeddings;
pub mod health;
pub mod keys;
pub mod messages;
pub mod models;
pub mod responses;
