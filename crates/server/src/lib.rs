//! Gatehouse HTTP server: routes, auth, proxying, streaming, health and metrics.
//!
//! Every model request goes through one pipeline, described in [`pipeline`]: auth →
//! route → limits and accounting → attach MCP tools → router attempts → provider adapter
//! → tool loop → response in the client's dialect → spend row.

pub mod app;
pub mod auth;
pub mod cache;
pub mod cost;
pub mod deployments;
pub mod dialects;
pub mod error;
pub mod guard;
pub mod health_checks;
pub mod limits;
pub mod listen;
pub mod mcp_calls;
pub mod otel;
pub mod pipeline;
pub mod providers;
pub mod proxy;
pub mod reload;
pub mod request;
pub mod router_sync;
pub mod routes;
pub mod rule_facts;
pub mod spend;
pub mod state;
pub mod tls;
pub mod tools;
pub mod ui;
pub mod upstream;

pub use app::{McpEndpoint, router, router_with_mcp};
pub use listen::serve;
pub use reload::Reloadable;
pub use state::AppState;
