//! Gatehouse HTTP server.
