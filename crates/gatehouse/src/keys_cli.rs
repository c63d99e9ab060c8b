//! `gatehouse keys ...`: operate on the key store directly, for operators (backup,
//! restore, emergency revoke) — no server needed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use gatehouse_store::{KeyFilter, KeyRecord, KeySource, KeyUpdate};
use serde_json::{Value, json};

use crate::cli::load_for_store;
use crate::persistence::{database_url, ensure_sqlite_dir};

#[derive(Args, Debug)]
pub struct KeysArgs {
    /// The config whose database to use (`general_settings.database_url`, else a
    /// SQLite file beside it; without a config, the one in the user's data directory).
    #[arg(long, short = 'c', global = true, env = "GATEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key; prints it once.
    Create {
        #[arg(long)]
        alias: Option<String>,
        /// Allowed models (repeat or comma-separate); none = all.
        #[arg(long, value_delimiter = ',')]
        models: Vec<String>,
        /// Allowed MCP servers (repeat or comma-separate); absent = all.
        #[arg(long, value_delimiter = ',')]
        mcp_servers: Option<Vec<String>>,
        #[arg(long)]
        max_budget: Option<f64>,
        #[arg(long)]
        rpm_limit: Option<u64>,
    },
    /// List keys (never the secrets).
    List,
    /// Show one key, by the key or its SHA-256.
    Info { key: String },
    /// Block a key at once (kept for its spend history; `--delete` removes it).
    Revoke {
        key: String,
        #[arg(long)]
        delete: bool,
    },
    /// Import a LiteLLM `LiteLLM_VerificationToken` export (a JSON array of rows).
    Import { file: PathBuf },
}

fn hash_of(key: &str) -> String {
    if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        key.to_ascii_lowercase()
    } else {
        gatehouse_store::hash_key(key)
    }
}

fn view(k: &KeyRecord) -> Value {
    json!({
        "token": k.token_hash, "key_name": k.key_prefix_display, "key_alias": k.key_alias,
        "models": k.models, "mcp_servers": k.mcp_servers, "spend": k.spend,
        "max_budget": k.max_budget, "rpm_limit": k.rpm_limit, "blocked": k.blocked,
        "expires": k.expires_at, "source": k.source.as_str(),
    })
}

pub fn run(args: KeysArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(args)) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gatehouse keys: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(args: KeysArgs) -> Result<String, String> {
    let loaded = load_for_store(args.config.as_ref()).map_err(|e| e.to_string())?;
    let url = database_url(&loaded.config, loaded.source_dir.as_deref());
    ensure_sqlite_dir(&url)?;
    let store = gatehouse_store::open(&url)
        .await
        .map_err(|e| e.to_string())?;
    let pretty = |v: Value| serde_json::to_string_pretty(&v).unwrap_or_default();
    let out = match args.command {
        KeysCommand::Create {
            alias,
            models,
            mcp_servers,
            max_budget,
            rpm_limit,
        } => {
            let key = gatehouse_store::generate_key();
            let mut record = KeyRecord::new(&key, KeySource::Api, chrono::Utc::now());
            record.key_alias = alias;
            record.models = models;
            record.mcp_servers = mcp_servers;
            record.max_budget = max_budget;
            record.rpm_limit = rpm_limit;
            store.insert(&record).await.map_err(|e| e.to_string())?;
            let mut v = view(&record);
            if let Some(o) = v.as_object_mut() {
                o.insert("key".into(), json!(key));
            }
            pretty(v)
        }
        KeysCommand::List => {
            let mut all = Vec::new();
            let mut page = 1;
            loop {
                let p = store
                    .list(page, 1000, &KeyFilter::default())
                    .await
                    .map_err(|e| e.to_string())?;
                let n = p.keys.len();
                all.extend(p.keys.iter().map(view));
                if n < 1000 {
                    break;
                }
                page += 1;
            }
            pretty(Value::Array(all))
        }
        KeysCommand::Info { key } => {
            let record = store
                .get_by_hash(&hash_of(&key))
                .await
                .map_err(|e| e.to_string())?
                .ok_or("key not found")?;
            pretty(view(&record))
        }
        KeysCommand::Revoke { key, delete } => {
            let hash = hash_of(&key);
            if delete {
                if !store.delete(&hash).await.map_err(|e| e.to_string())? {
                    return Err("key not found".into());
                }
                "deleted".into()
            } else {
                let update = KeyUpdate {
                    blocked: Some(true),
                    ..KeyUpdate::default()
                };
                store
                    .update(&hash, &update)
                    .await
                    .map_err(|e| e.to_string())?;
                "blocked".into()
            }
        }
        KeysCommand::Import { file } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let rows: Vec<Value> =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let report = gatehouse_store::import_litellm(store.as_ref(), &rows)
                .await
                .map_err(|e| e.to_string())?;
            format!(
                "imported {}, already present {}",
                report.imported,
                report.skipped_existing.len()
            )
        }
    };
    store.close().await;
    Ok(out)
}
