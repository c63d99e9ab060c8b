//! Gatehouse HTTP server: routes, auth, proxying, streaming, health and metrics.
//!
//! A chat request flows: `request::observe` → `auth::require_key` → `routes::chat` →
//! `proxy::route` (model group, key scope) → `proxy::forward` (deployment order, retries,
//! fall-over) → `upstream::send` → relayed back (`upstream::stream` for SSE).

pub mod app;
pub mod auth;
pub mod cost;
pub mod deployments;
pub mod dialects;
pub mod error;
pub mod guard;
pub mod limits;
pub mod providers;
pub mod proxy;
pub mod request;
pub mod routes;
pub mod spend;
pub mod state;
pub mod tools;
pub mod upstream;

pub use app::{router, serve};
pub use state::AppState;
