//! Gatehouse configuration: LiteLLM's `config.yaml` read as it is.

pub mod provider;
pub mod schema;

pub use provider::{Dialect, Provider};
pub use schema::*;
