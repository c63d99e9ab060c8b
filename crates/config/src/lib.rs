//! Gatehouse configuration: LiteLLM's `config.yaml` read as it is.
//!
//! [`load_file`] / [`load_str`] parse the YAML with line numbers, substitute the
//! environment (`os.environ/NAME`, `${NAME}`, `${NAME:-default}`), type it into
//! [`Config`], validate it (collecting every error), and list what is ignored as
//! [`ConfigWarning`]s. [`Loaded::deployments`] gives each model with its provider resolved.

mod anchors;
pub mod cache;
pub mod callbacks;
mod decode;
pub mod deployment;
pub mod discover;
pub mod env;
pub mod error;
mod lines;
pub mod load;
pub mod provider;
pub mod redact;
mod scalar;
pub mod schema;
mod summary;
pub mod transport;
mod tree;
mod validate;
mod warn;

pub use deployment::ResolvedDeployment;
pub use error::{ConfigError, ConfigErrors, ConfigWarning};
pub use lines::LineIndex;
pub use load::{Loaded, load_file, load_str};
pub use provider::{Dialect, Provider};
pub use schema::*;
pub use transport::McpTransport;
