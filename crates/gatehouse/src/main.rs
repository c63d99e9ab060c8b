//! The `gatehouse` command: serve, check a config, manage keys, or print a client's
//! configuration.

mod cli;
mod connect;
mod discover;
mod keys_cli;
mod logging;
mod persistence;
mod reload;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `gatehouse __mcp-stdio-guard ...`: this process is a stdio MCP server's guard.
    if let Some(code) = gatehouse_mcp::upstream::orphan_guard::run_if_requested() {
        return code;
    }
    let cli = cli::Cli::parse();
    match cli.command {
        Some(cli::Command::Check(args)) => cli::check(&args),
        Some(cli::Command::Keys(args)) => keys_cli::run(args),
        Some(cli::Command::Connect(args)) => connect::run(args),
        Some(cli::Command::Serve(args)) => serve::run(args),
        None => serve::run(cli.serve),
    }
}
