//! Why a benchmark run could not be carried out (as opposed to a target being missed,
//! which is a result, not an error).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot start {what} ({path}): {source}")]
    Spawn {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} did not report its address within {secs} s; last output:\n{output}")]
    NotReady {
        what: &'static str,
        secs: u64,
        output: String,
    },
    #[error("{what} is not answering: {detail}")]
    NotServing { what: &'static str, detail: String },
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP handshake with {addr} failed: {source}")]
    Handshake {
        addr: std::net::SocketAddr,
        source: hyper::Error,
    },
    #[error("the benchmark URL must be http://127.0.0.1:PORT (loopback only), got {0}")]
    NotLoopback(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{what} is not installed: {path} is missing (run scripts/install-peers, set \
         GATEHOUSE_NPM_PREFIX or --npm-prefix, or pass --no-mcp to skip the MCP scenarios)"
    )]
    MissingPeer { what: &'static str, path: PathBuf },
    #[error("cannot open an MCP session on the {route} route: {detail}")]
    McpSession { route: &'static str, detail: String },
    #[error("cannot start the bench's own upstream: {0}")]
    Upstream(std::io::Error),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}
