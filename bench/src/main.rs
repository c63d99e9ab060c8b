//! `gatehouse-bench`: measures what Gatehouse adds on top of a zero-delay upstream.
//! Spawns `gatehouse-mock` and `gatehouse` (release binaries), sends the same requests
//! straight to the mock and through the gateway, prints the tables, judges the design's
//! targets. Exit status: 0 all targets met, 1 a target missed, 2 the run itself failed.

mod cli;
mod client;
mod error;
mod feature_run;
mod keys_run;
mod load;
mod many_keys;
mod mcp;
mod mcp_run;
mod mcp_scale;
mod nginx;
mod procs;
mod report;
mod results;
mod run;
mod scale;
mod stats;
mod targets;
mod upstream;

use std::process::ExitCode;

use clap::Parser;

use crate::error::BenchError;
use crate::report::Facts;

fn main() -> ExitCode {
    let args = cli::Args::parse();
    if let Err(message) = args.validate() {
        eprintln!("gatehouse-bench: {message}");
        return ExitCode::from(2);
    }
    match bench(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("gatehouse-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs, prints, writes the Markdown; `Ok(true)` when every target passed.
fn bench(args: &cli::Args) -> Result<bool, BenchError> {
    let bins = run::Binaries::resolve(args);
    let runtime = if args.client_threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.client_threads)
            .enable_all()
            .build()
    }
    .map_err(BenchError::Runtime)?;
    let started = std::time::Instant::now();
    let load_before = load_average();
    let results = runtime.block_on(run::run(args, &bins))?;
    if args.many_keys > 0 {
        return Ok(true);
    }
    let judged = targets::evaluate(&results);
    println!(
        "\nScenarios (latencies in ms):\n{}",
        report::scenarios(&results).text()
    );
    println!(
        "nginx and gateway vs. direct (ms):\n{}",
        report::comparison(&results).text()
    );
    if !results.mcp.is_empty() {
        println!(
            "MCP, one connection (ms; added = gateway - direct):\n{}",
            report::mcp(&results).text()
        );
    }
    if !results.keys.is_empty() {
        println!(
            "Keys, limits and spend logging off vs. on, non-stream, one connection (ms; added = on - off):\n{}",
            report::keys(&results).text()
        );
    }
    println!("Gateway process:\n{}", report::process(&results).text());
    if results.scale.is_some() {
        println!("Scale:\n{}", report::scale(&results).text());
    }
    if let Some(s) = &results.mcp_sessions {
        println!(
            "MCP sessions over one stdio upstream (ms; added = gateway - direct):\n{}",
            mcp_scale::table(s).text()
        );
    }
    println!("Targets:\n{}", report::checks(&judged).text());
    let passed = judged.iter().all(|c| c.pass);
    println!(
        "1-minute load average before / after: {load_before} / {} (other work on this machine skews p99 most)",
        load_average()
    );
    println!(
        "{} ({} of {} targets met, run took {:.1} s)",
        if passed { "PASS" } else { "FAIL" },
        judged.iter().filter(|c| c.pass).count(),
        judged.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.markdown {
        let text = report::markdown(&facts(load_before.clone()), &results, &judged);
        std::fs::write(path, text).map_err(|source| BenchError::Write {
            path: path.clone(),
            source,
        })?;
        eprintln!("wrote {}", path.display());
    }
    Ok(passed)
}

/// The 1-minute load average (`/proc/loadavg`), or "?" off Linux.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn facts(load_before: String) -> Facts {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{hash} (with uncommitted changes)")
            } else {
                hash
            }
        }
        None => "unknown".into(),
    };
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mut command: Vec<String> = vec!["cargo run --release -p gatehouse-bench --".into()];
    command.extend(std::env::args().skip(1));
    Facts {
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        commit,
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model,
        command: command.join(" "),
        load: (load_before, load_average()),
    }
}
