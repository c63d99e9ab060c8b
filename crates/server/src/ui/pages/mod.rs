//! One module per page.

pub mod config;
pub mod keys;
pub mod login;
pub mod logs;
pub mod mcp;
pub mod models;
pub mod overview;
