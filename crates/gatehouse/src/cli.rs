//! Command-line interface. The serve flags are LiteLLM's (`--config`, `--host`,
//! `--port`, `--detailed_debug`, `--ssl_certfile_path`, ...), so existing launch scripts
//! keep working.

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
    /// config.yaml in LiteLLM's format. Without it, the providers found in the environment
    /// are served (see docs/configuration.md).
    #[arg(long, short = 'c', env = "GATEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Serve this one model (`openai/gpt-4o`, `ollama/llama3`, ...) under its own name
    /// instead of a config, as LiteLLM's `--model`.
    #[arg(long, short = 'm', conflicts_with = "config")]
    pub model: Option<String>,
    /// The `api_base` of `--model` (LiteLLM's flag).
    #[arg(long = "api_base", alias = "api-base", requires = "model")]
    pub api_base: Option<String>,
    /// Address to bind. Default: 0.0.0.0 with a master key, 127.0.0.1 in local mode.
    #[arg(long)]
    pub host: Option<String>,
    #[arg(long, short = 'p', default_value_t = 4000, env = "PORT")]
    pub port: u16,
    /// Reload the config when the file's contents change (checked every 3 seconds), as
    /// on SIGHUP.
    #[arg(
        long = "watch-config",
        alias = "watch_config",
        env = "GATEHOUSE_WATCH_CONFIG"
    )]
    pub watch_config: bool,
    /// Debug-level logs (LiteLLM's flag).
    #[arg(long = "detailed_debug", alias = "detailed-debug", alias = "debug")]
    pub detailed_debug: bool,
    /// Serve HTTPS with this PEM certificate chain (leaf first); needs
    /// --ssl_keyfile_path. HTTP/2 is offered by ALPN. LiteLLM's flag and variable.
    #[arg(
        long = "ssl_certfile_path",
        alias = "ssl-certfile-path",
        env = "SSL_CERTFILE_PATH",
        requires = "ssl_keyfile_path"
    )]
    pub ssl_certfile_path: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of --ssl_certfile_path.
    #[arg(
        long = "ssl_keyfile_path",
        alias = "ssl-keyfile-path",
        env = "SSL_KEYFILE_PATH",
        requires = "ssl_certfile_path"
    )]
    pub ssl_keyfile_path: Option<PathBuf>,
    /// Accepted for LiteLLM compatibility and ignored (with a warning): rustls offers
    /// only its own safe cipher suites.
    #[arg(long, hide = true)]
    pub ciphers: Option<String>,
    /// Accepted for LiteLLM compatibility; Gatehouse is one multi-threaded process.
    #[arg(long = "num_workers", alias = "num-workers", hide = true)]
    pub num_workers: Option<u32>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[arg(long, short = 'c')]
    pub config: Option<PathBuf>,
}

/// The config to serve and, when it was discovered, what the environment offered.
pub struct Source {
    pub loaded: Loaded,
    /// `None` for a config file or `--model`; the discovery's findings otherwise.
    pub discovered: Option<Findings>,
}

pub struct Findings {
    /// One line per route source (`openai/* (OPENAI_API_KEY)`); empty when none.
    pub found: Vec<String>,
    /// What was found but not served, and why.
    pub notes: Vec<String>,
}

impl Source {
    /// Says what was discovered: each source, each note, and once, when nothing serves,
    /// how to add a provider.
    pub fn report(&self, say: impl Fn(bool, &str)) {
        let Some(findings) = &self.discovered else {
            return;
        };
        for found in &findings.found {
            say(false, &format!("serving {found}"));
        }
        for note in &findings.notes {
            say(true, note);
        }
        if findings.found.is_empty() {
            say(true, gatehouse_config::discover::NOTHING_FOUND);
        }
    }
}

/// Loads `--config`, or the one `--model`, or discovers providers from the environment.
pub fn load(args: &ServeArgs) -> Result<Source, ConfigErrors> {
    if let Some(path) = &args.config {
        let loaded = gatehouse_config::load_file(path)?;
        return Ok(Source {
            loaded,
            discovered: None,
        });
    }
    if let Some(model) = &args.model {
        let env = |n: &str| std::env::var(n).ok();
        let loaded =
            gatehouse_config::discover::single_model(model, args.api_base.as_deref(), &env)?;
        return Ok(Source {
            loaded,
            discovered: None,
        });
    }
    let d = crate::discover::from_environment()?;
    Ok(Source {
        loaded: d.loaded,
        discovered: Some(Findings {
            found: d.found,
            notes: d.notes,
        }),
    })
}

/// The config for commands that only need its store settings (`gatehouse keys`): the
/// file, or an empty config, which puts the store in the user's data directory.
pub fn load_for_store(path: Option<&PathBuf>) -> Result<Loaded, ConfigErrors> {
    match path {
        Some(path) => gatehouse_config::load_file(path),
        None => gatehouse_config::load_str("model_list: []\n", "<no config>", &|n| {
            std::env::var(n).ok()
        }),
    }
}

pub fn check(args: &CheckArgs) -> ExitCode {
    let serve = ServeArgs {
        config: args.config.clone(),
        ..ServeArgs::default()
    };
    match load(&serve) {
        Ok(source) => {
            println!("{}", source.loaded.summary());
            source.report(|_, line| println!("{line}"));
            // What start-up checks beyond the file itself: deployments and router settings
            // (providers, fallback groups, routing rules).
            if let Err(e) = gatehouse_server::deployments::build_router(&source.loaded.config) {
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
