//! Opening the key store at start-up and the background work that keeps it current.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use gatehouse_config::Config;
use gatehouse_server::state::Persistence;
use gatehouse_store::{KeyCache, RefreshHandle, SpendWriter, SpendWriterConfig};
use tokio::task::JoinHandle;

/// How stale another replica's key changes may be here.
const KEY_REFRESH: Duration = Duration::from_secs(5);
const BUDGET_RESET_CHECK: Duration = Duration::from_secs(60);
/// Spend batches on a shared database: other replicas see spend this late at most.
const SHARED_FLUSH: Duration = Duration::from_millis(250);

/// The database URL: `general_settings.database_url` (or LiteLLM's
/// `litellm_settings.database_url`, copied there by the loader), else `DATABASE_URL`, else
/// a SQLite file beside the config — or, with no config file, in the user's data
/// directory (never the current directory, which may be anywhere the binary was run).
pub fn database_url(config: &Config, config_dir: Option<&Path>) -> String {
    if let Some(url) = config
        .general_settings
        .database_url
        .as_deref()
        .filter(|u| !u.is_empty())
    {
        return url.to_string();
    }
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.is_empty()
    {
        return url;
    }
    let dir = match config_dir {
        Some(dir) => dir.to_path_buf(),
        None => data_dir(),
    };
    let path = dir.join("gatehouse.db");
    let path = std::path::absolute(&path).unwrap_or(path);
    format!("sqlite://{}", path.display())
}

/// `$XDG_DATA_HOME/gatehouse`, else `~/.local/share/gatehouse` (the XDG default); the
/// current directory only when there is no home at all.
fn data_dir() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    var("XDG_DATA_HOME")
        .or_else(|| var("HOME").map(|h| h.join(".local/share")))
        .map(|d| d.join("gatehouse"))
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Where unwritten spend rows wait on local disk: `GATEHOUSE_SPOOL_DIR`, else `spool/`
/// beside the config (or in the data directory). Replicas on one host may share it: each
/// keeps its own locked file, and adopts only files whose owner is gone.
pub fn spool_dir(config_dir: Option<&Path>) -> PathBuf {
    if let Some(dir) = std::env::var_os("GATEHOUSE_SPOOL_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let base = match config_dir {
        Some(dir) => dir.to_path_buf(),
        None => data_dir(),
    };
    let dir = base.join("spool");
    std::path::absolute(&dir).unwrap_or(dir)
}

/// SQLite creates the file but not its directory.
pub fn ensure_sqlite_dir(url: &str) -> Result<(), String> {
    let Some(path) = url.strip_prefix("sqlite://") else {
        return Ok(());
    };
    let path = Path::new(path.split('?').next().unwrap_or(path));
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display())),
        _ => Ok(()),
    }
}

/// Work that runs beside the server, stopped in order at shutdown.
pub struct Background {
    refresher: RefreshHandle,
    budget_reset: JoinHandle<()>,
}

impl Background {
    pub async fn stop(self, persistence: Option<&Persistence>) {
        self.budget_reset.abort();
        self.refresher.stop().await;
        if let Some(p) = persistence {
            // Every request that completed has its spend row.
            p.spend.shutdown().await;
            p.store.close().await;
        }
    }
}

pub async fn open(
    config: &Config,
    config_dir: Option<&Path>,
) -> Result<(Persistence, Background), String> {
    let url = database_url(config, config_dir);
    ensure_sqlite_dir(&url)?;
    // SQLite serialises writes anyway; each idle connection keeps its own page cache.
    let options = gatehouse_store::StoreOptions {
        max_connections: if url.starts_with("sqlite") { 2 } else { 8 },
        ..gatehouse_store::StoreOptions::default()
    };
    let store = gatehouse_store::open_with(&url, &options)
        .await
        .map_err(|e| format!("key store at {}: {e}", gatehouse_config::redact::url(&url)))?;
    let upserted = sync_config_keys(store.as_ref(), config).await?;
    let keys = KeyCache::load(store.clone())
        .await
        .map_err(|e| format!("loading keys: {e}"))?;
    let refresher = keys.spawn_refresher(KEY_REFRESH);
    let spool = spool_dir(config_dir);
    let writer_config = SpendWriterConfig {
        log_rows: !config.general_settings.disable_spend_logs.unwrap_or(false),
        spool_dir: Some(spool.clone()),
        // Other replicas see a key's spend once it is written: write often enough that a
        // budget holds across replicas within a second (a small transaction each time).
        flush_interval: if store.backend() == "postgres" {
            SHARED_FLUSH
        } else {
            SpendWriterConfig::default().flush_interval
        },
        ..SpendWriterConfig::default()
    };
    let spend = SpendWriter::spawn_with_cache(store.clone(), Some(keys.clone()), writer_config);
    let adopted = spend.stats().adopted;
    if adopted > 0 {
        tracing::info!(rows = adopted, dir = %spool.display(), "writing spend rows left in the spool by an earlier run");
    }
    // Every replica runs this; the store lets one at a time do the work (a Postgres
    // advisory lock), and a reset another replica just did is a no-op.
    let reset_store = store.clone();
    let budget_reset = tokio::spawn(async move {
        let mut tick = tokio::time::interval(BUDGET_RESET_CHECK);
        loop {
            tick.tick().await;
            match reset_store.reset_budgets(chrono::Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(keys = n, "budgets reset"),
                Err(e) => tracing::warn!(error = %e, "budget reset failed; will retry"),
            }
        }
    });
    tracing::info!(
        backend = store.backend(),
        url = %gatehouse_config::redact::url(&url),
        keys = keys.len(),
        config_keys = upserted,
        "key store ready"
    );
    let persistence = Persistence {
        store,
        keys: Arc::clone(&keys),
        spend,
    };
    Ok((
        persistence,
        Background {
            refresher,
            budget_reset,
        },
    ))
}

/// Upserts the config's `virtual_keys` into the store (start-up and every config
/// reload) and warns about the config keys it leaves as they are: those no longer in the
/// config and those revoked through the API. Returns how many were upserted.
pub async fn sync_config_keys(
    store: &dyn gatehouse_store::KeyStore,
    config: &Config,
) -> Result<usize, String> {
    let report = store
        .upsert_config_keys(&config.virtual_keys)
        .await
        .map_err(|e| format!("virtual_keys: {e}"))?;
    for (hash, alias) in &report.orphaned {
        tracing::warn!(
            key = %alias.clone().unwrap_or_else(|| format!("{}…", &hash[..hash.len().min(12)])),
            "a key once declared in virtual_keys is no longer in the config; it stays valid until blocked or deleted"
        );
    }
    for r in &report.revoked {
        let key = r
            .key_alias
            .clone()
            .unwrap_or_else(|| format!("{}…", &r.token_hash[..r.token_hash.len().min(12)]));
        match r.revocation {
            gatehouse_store::Revocation::Blocked => tracing::warn!(
                key = %key,
                "a key declared in virtual_keys was blocked through the API; it stays blocked (POST /key/unblock to restore it)"
            ),
            gatehouse_store::Revocation::Deleted => tracing::warn!(
                key = %key,
                "a key declared in virtual_keys was deleted or regenerated through the API; it stays revoked (remove it from the config, or POST /key/generate with the same key to restore it)"
            ),
        }
    }
    Ok(report.upserted)
}
