//! Calling upstream providers: sending with timeouts and retries, relaying streams, and
//! translating vendor streams.

pub mod body;
pub mod send;
pub mod stream;
pub mod translate;
