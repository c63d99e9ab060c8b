//! Issue 13's key-scale scenario (`--many-keys N`): N virtual keys in the store. Two
//! gateways with the same config (master key, the bench's virtual key and its limits),
//! one over a store of 10 keys, one over a store of N, both filled through
//! `gatehouse keys import` (what an operator moving from LiteLLM runs). For each:
//! start-up to the first served request (several trials; the worst counts) and one
//! connection's non-stream latency in alternating slices, so "N minus 10" is what the
//! key count costs per request. SQLite (a file beside the config) always; Postgres too
//! with `--many-keys-postgres URL` (a database is made there and dropped after).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cli::Args;
use crate::client::{Prepared, Target};
use crate::error::BenchError;
use crate::keys_run::{VIRTUAL_KEY, keys_on_config};
use crate::load::{self, Amount, Plan};
use crate::procs::{Service, config_dir, gateway_env};
use crate::run::{Binaries, COUNT_PHASE_LIMIT, LATENCY_ROUNDS, REQUEST_TIMEOUT, time_startup};
use crate::stats::{Summary, ms};

/// The small store the large one is compared with.
const FEW: usize = 10;
/// Start-ups timed per store.
const TRIALS: usize = 3;

/// One store size on one backend.
#[derive(Debug, Clone)]
pub struct ManyKeysRow {
    pub backend: &'static str,
    pub keys: usize,
    /// `gatehouse keys import` of every key.
    pub import: Duration,
    /// Spawn → first chat 200, per trial.
    pub startups: Vec<Duration>,
    /// Non-stream, one connection, send → last body byte.
    pub full: Option<Summary>,
    pub errors: u64,
    /// KiB after the latency phase.
    pub rss_kib: Option<u64>,
}

/// Runs the scenario on SQLite and, when asked, Postgres; prints a Markdown table.
pub async fn run(args: &Args, bins: &Binaries, upstream_url: &str) -> Result<(), BenchError> {
    let mut rows = Vec::new();
    rows.extend(backend(args, bins, upstream_url, None).await?);
    if let Some(pg) = &args.many_keys_postgres {
        rows.extend(backend(args, bins, upstream_url, Some(pg)).await?);
    }
    println!("\n{}", table(&rows));
    Ok(())
}

async fn backend(
    args: &Args,
    bins: &Binaries,
    upstream_url: &str,
    postgres: Option<&str>,
) -> Result<Vec<ManyKeysRow>, BenchError> {
    let name = if postgres.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let mut stores = Vec::new();
    for keys in [FEW, args.many_keys] {
        let db = match postgres {
            Some(base) => Some(PgDatabase::create(base, keys)?),
            None => None,
        };
        let mut config = keys_on_config(upstream_url);
        if let Some(db) = &db {
            config = config.replacen(
                "general_settings:\n",
                &format!("general_settings:\n  database_url: \"{}\"\n", db.url),
                1,
            );
        }
        let dir = Scratch(config_dir(&config)?);
        let import = import(bins, &dir.0, keys)?;
        eprintln!("many-keys {name}: {keys} keys imported in {import:.1?}");
        stores.push((keys, dir, db, import));
    }
    let mut startups: Vec<Vec<Duration>> = vec![Vec::new(); stores.len()];
    for _ in 0..TRIALS {
        for (i, (_, dir, _, _)) in stores.iter().enumerate() {
            let (service, startup) =
                time_startup(Service::gateway_in(&bins.gateway, &dir.0)?).await?;
            drop(service);
            startups[i].push(startup.to_first_chat);
        }
    }
    let mut gateways = Vec::new();
    for (_, dir, _, _) in &stores {
        gateways.push(Service::gateway_in(&bins.gateway, &dir.0)?);
    }
    let mut routes = Vec::new();
    for g in &gateways {
        let t = Target::from_url(&g.url, VIRTUAL_KEY)?;
        routes.push((t.clone(), Prepared::chat(&t, false)));
    }
    let plan = Plan {
        connections: 1,
        warmup: Amount::Requests {
            count: args.keys_requests / 10,
            limit: COUNT_PHASE_LIMIT,
        },
        measure: Amount::Requests {
            count: args.keys_requests,
            limit: COUNT_PHASE_LIMIT,
        },
        request_timeout: REQUEST_TIMEOUT,
        rounds: LATENCY_ROUNDS,
    };
    let outcomes = load::compare(&routes, &plan).await?;
    let mut rows = Vec::new();
    for (((keys, _, _, import), outcome), (g, startups)) in stores
        .iter()
        .zip(outcomes)
        .zip(gateways.iter().zip(startups))
    {
        let row = ManyKeysRow {
            backend: name,
            keys: *keys,
            import: *import,
            startups,
            full: Summary::of(outcome.timings.iter().map(|t| t.full).collect()),
            errors: outcome.errors,
            rss_kib: g.rss_kib(),
        };
        eprintln!(
            "many-keys {name} {keys:>7} keys: start-up worst {:.1} ms, p50 {:.3} ms, errors {}",
            worst(&row.startups).as_secs_f64() * 1e3,
            row.full.map_or(f64::NAN, |s| ms(s.p50)),
            row.errors
        );
        rows.push(row);
    }
    Ok(rows)
}

/// `gatehouse keys --config DIR/config.yaml import FILE` of `n` keys (LiteLLM export
/// rows); how long it took.
fn import(bins: &Binaries, dir: &Path, n: usize) -> Result<Duration, BenchError> {
    let file = dir.join("keys.json");
    let rows: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                // A SHA-256 hex, as LiteLLM stores tokens.
                "token": format!("{:064x}", 0xb0b0_0000_0000_u64 + i as u64),
                "key_alias": format!("bulk-{i}"),
                "models": ["bench"],
                "rpm_limit": 1000,
            })
        })
        .collect();
    let text = serde_json::to_vec(&rows).map_err(|e| BenchError::NotServing {
        what: "gatehouse keys import",
        detail: e.to_string(),
    })?;
    std::fs::write(&file, text).map_err(|source| BenchError::Write {
        path: file.clone(),
        source,
    })?;
    let mut cmd = Command::new(&bins.gateway);
    cmd.arg("keys")
        .arg("--config")
        .arg(dir.join("config.yaml"))
        .arg("import")
        .arg(&file);
    gateway_env(&mut cmd);
    let started = Instant::now();
    let out = cmd.output().map_err(|source| BenchError::Spawn {
        what: "gatehouse keys import",
        path: bins.gateway.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(BenchError::NotServing {
            what: "gatehouse keys import",
            detail: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(started.elapsed())
}

fn worst(d: &[Duration]) -> Duration {
    d.iter().copied().max().unwrap_or_default()
}

fn table(rows: &[ManyKeysRow]) -> String {
    let mut out = String::from(
        "| store | keys | import (s) | start to first chat, worst of 3 (ms) | c=1 p50 (ms) | p99 (ms) | added p50 vs 10 keys (ms) | RSS (MiB) | errors |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let base = rows
            .iter()
            .find(|r| r.backend == row.backend && r.keys == FEW)
            .and_then(|r| r.full);
        let added = match (row.full, base) {
            (Some(s), Some(b)) => format!("{:+.3}", ms(s.p50) - ms(b.p50)),
            _ => "-".into(),
        };
        let f = |s: Option<Summary>, pick: fn(&Summary) -> Duration| {
            s.map_or("-".into(), |s| format!("{:.3}", ms(pick(&s))))
        };
        out.push_str(&format!(
            "| {} | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} |\n",
            row.backend,
            row.keys,
            row.import.as_secs_f64(),
            worst(&row.startups).as_secs_f64() * 1e3,
            f(row.full, |s| s.p50),
            f(row.full, |s| s.p99),
            added,
            row.rss_kib
                .map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
            row.errors
        ));
    }
    out
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A database made on the Postgres at `base` for one store, dropped with this.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    fn create(base: &str, keys: usize) -> Result<PgDatabase, BenchError> {
        let base = base.trim_end_matches('/');
        let name = format!("gh_bench_keys_{}_{keys}", std::process::id());
        let db = PgDatabase {
            admin: format!("{base}/postgres"),
            url: format!("{base}/{name}"),
            name,
        };
        db.psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name))?;
        db.psql(&format!("CREATE DATABASE {}", db.name))?;
        Ok(db)
    }

    fn psql(&self, sql: &str) -> Result<(), BenchError> {
        let out = Command::new("psql")
            .args([self.admin.as_str(), "-qtAc", sql])
            .output()
            .map_err(|source| BenchError::Spawn {
                what: "psql",
                path: PathBuf::from("psql"),
                source,
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(BenchError::NotServing {
                what: "postgres",
                detail: format!("{sql}: {}", String::from_utf8_lossy(&out.stderr)),
            })
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = self.psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}
