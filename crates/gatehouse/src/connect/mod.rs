//! `gatehouse connect <client>`: prints the exact configuration a client needs to use
//! this gateway — base URL, the environment variable holding the key, the MCP endpoint
//! with its headers — for Linux/macOS and for Windows. It only prints: nothing is
//! written, nothing is contacted, and no key ever appears in the output (clients read it
//! from the variable named by `--key-env`).

mod clients;
mod lan;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};

#[derive(Args, Debug)]
pub struct ConnectArgs {
    /// The client to configure.
    #[arg(value_enum)]
    pub client: Client,
    /// Gatehouse's address as the client's machine reaches it (a LAN name for clients
    /// on other machines).
    #[arg(long, default_value = "http://127.0.0.1:4000")]
    pub url: String,
    /// The environment variable that holds the Gatehouse key on the client's machine.
    #[arg(long, default_value = "GATEHOUSE_API_KEY")]
    pub key_env: String,
    /// MCP servers to expose to the client (comma-separated; sent as `x-mcp-servers`).
    /// Without it the client sees every server its key may use.
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<String>,
    /// The model name the client should ask for. Default: the first `model_name` of
    /// `--config`, else a placeholder.
    #[arg(long)]
    pub model: Option<String>,
    /// A config.yaml to take the default model from.
    #[arg(long, short = 'c', env = "GATEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Codex,
    ClaudeCode,
    Vscode,
    Cursor,
    OpenWebui,
    OpenaiSdk,
    AnthropicSdk,
}

/// What every client's configuration is made of.
pub struct Target {
    /// Without a trailing slash.
    pub url: String,
    pub key_env: String,
    pub servers: Vec<String>,
    pub model: String,
}

impl Target {
    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.url)
    }

    /// The `x-mcp-servers` header value, when `--servers` narrowed the endpoint.
    pub fn servers_header(&self) -> Option<String> {
        (!self.servers.is_empty()).then(|| self.servers.join(","))
    }

    /// Whether the URL names this machine (then the LAN notes do not apply).
    pub fn is_loopback(&self) -> bool {
        let host = self
            .url
            .split("://")
            .nth(1)
            .unwrap_or(&self.url)
            .split(['/', ':'])
            .next()
            .unwrap_or_default();
        matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "")
    }
}

/// A placeholder that fails loudly in the client rather than silently picking a model.
const MODEL_PLACEHOLDER: &str = "MODEL_NAME";

pub fn run(args: ConnectArgs) -> ExitCode {
    let target = match target(&args) {
        Ok(t) => t,
        Err(message) => {
            eprintln!("gatehouse connect: {message}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", clients::render(args.client, &target));
    ExitCode::SUCCESS
}

fn target(args: &ConnectArgs) -> Result<Target, String> {
    let url = args.url.trim().trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!(
            "--url {url}: give the scheme, e.g. http://gatehouse.lan:4000"
        ));
    }
    // A trailing /v1 is a common slip: each client needs its own suffix (or none).
    let url = url.strip_suffix("/v1").unwrap_or(url);
    let key_env = args.key_env.trim();
    if key_env.is_empty()
        || !key_env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || key_env.as_bytes()[0].is_ascii_digit()
    {
        return Err(format!(
            "--key-env {key_env}: an environment variable name (letters, digits, _)"
        ));
    }
    let model = match &args.model {
        Some(m) => m.clone(),
        None => default_model(args.config.as_ref())?,
    };
    Ok(Target {
        url: url.to_string(),
        key_env: key_env.to_string(),
        servers: args
            .servers
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        model,
    })
}

fn default_model(config: Option<&PathBuf>) -> Result<String, String> {
    let Some(path) = config else {
        return Ok(MODEL_PLACEHOLDER.to_string());
    };
    let loaded = gatehouse_config::load_file(path).map_err(|e| e.to_string())?;
    Ok(loaded
        .config
        .model_list
        .first()
        .map(|m| m.model_name.clone())
        .unwrap_or_else(|| MODEL_PLACEHOLDER.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(url: &str, key_env: &str) -> ConnectArgs {
        ConnectArgs {
            client: Client::Codex,
            url: url.into(),
            key_env: key_env.into(),
            servers: vec![],
            model: Some("m".into()),
            config: None,
        }
    }

    #[test]
    fn urls_are_normalised_and_checked() {
        assert_eq!(
            target(&args("http://gw.lan:4000/v1/", "K")).unwrap().url,
            "http://gw.lan:4000"
        );
        assert!(target(&args("gw.lan:4000", "K")).is_err());
        assert!(target(&args("http://gw", "1KEY")).is_err());
        assert!(target(&args("http://gw", "MY KEY")).is_err());
        assert!(
            target(&args("http://localhost:4000", "K"))
                .unwrap()
                .is_loopback()
        );
        assert!(
            !target(&args("http://gw.lan:4000", "K"))
                .unwrap()
                .is_loopback()
        );
    }
}
