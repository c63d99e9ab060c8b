//! Calling upstream providers: sending with timeouts and retries, and relaying streams.

pub mod body;
pub mod send;
pub mod stream;
