//! Command-line interface. The serve flags are LiteLLM's (`--config`, `--host`,
//! `--port`, `--detailed_debug`), so existing launch scripts keep working.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use gatehouse_config::{ConfigErrors, Loaded};

#[derive(Parser, Debug)]
#[command(
    name = "gatehouse",
    version,
    about = "One fast gateway for LLM providers and MCP tool servers"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the API (the default when no command is given).
    Serve(ServeArgs),
    /// Validate a config and print what would be served, without starting anything.
    Check(CheckArgs),
    /// Manage keys in the store directly (create, list, info, revoke, import).
    Keys(crate::keys_cli::KeysArgs),
    /// Print the configuration a client needs for this gateway (codex, claude-code,
    /// vscode, cursor, open-webui, openai-sdk, anthropic-sdk).
    Connect(crate::connect::ConnectArgs),
}

#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// config.yaml in LiteLLM's format. Without it, the embedded default config is served.
    #[arg(long, short = 'c', env = "GATEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to bind. Default: 0.0.0.0 with a master key, 127.0.0.1 in local mode.
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long, short = 'p', default_value_t = 4000, env = "PORT")]
    pub port: u16,
    /// Debug-level logs (LiteLLM's flag).
    #[arg(long = "detailed_debug", alias = "detailed-debug", alias = "debug")]
    pub detailed_debug: bool,
    /// Accepted for LiteLLM compatibility; Gatehouse is one multi-threaded process.
    #[arg(long = "num_workers", alias = "num-workers", hide = true)]
    pub num_workers: Option<u32>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
}

/// Loads the config named on the command line, or the embedded default.
pub fn load(path: Option<&PathBuf>) -> Result<Loaded, ConfigErrors> {
    match path {
        Some(path) => gatehouse_config::load_file(path),
        None => gatehouse_config::embedded_default(),
    }
}

pub fn check(args: &CheckArgs) -> ExitCode {
    match load(args.config.as_ref()) {
        Ok(loaded) => {
            println!("{}", loaded.summary());
            // What start-up checks beyond the file itself: deployments and router settings
            // (providers, fallback groups, routing rules).
            if let Err(e) = gatehouse_server::deployments::build_router(&loaded.config) {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
            println!("config OK");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}
