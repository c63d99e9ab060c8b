//! The Anthropic surface: Messages and token counting.

pub(crate) mod errors;
pub(crate) mod messages;
pub(crate) mod validate;
