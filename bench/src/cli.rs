//! Command-line options.

use std::path::PathBuf;

use clap::Parser;

use crate::results::Mode;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "gatehouse-bench",
    about = "Load benchmark: straight to gatehouse-mock vs. through gatehouse, in one run, \
             judged against the design's targets"
)]
pub struct Args {
    /// The gateway binary (default: `gatehouse` next to this binary, i.e. target/release).
    #[arg(long)]
    pub gateway_bin: Option<PathBuf>,
    /// The mock binary (default: `gatehouse-mock` next to this binary).
    #[arg(long)]
    pub mock_bin: Option<PathBuf>,
    /// What answers the chat requests: the bench's own minimal hyper server (`fast`, the
    /// default: ready-made answers, as cheap as an upstream gets) or `gatehouse-mock`.
    #[arg(long, value_enum, default_value = "fast")]
    pub upstream: UpstreamKind,
    /// The nginx binary for the plain-proxy reference route.
    #[arg(long, default_value = "/usr/sbin/nginx")]
    pub nginx_bin: PathBuf,
    /// Leave the nginx route out.
    #[arg(long)]
    pub no_nginx: bool,
    /// Also run the scale scenarios: many streams held open, 1 MB bodies.
    #[arg(long)]
    pub scale: bool,
    /// Streams held open at once in the scale scenario.
    #[arg(long, default_value_t = 10_000)]
    pub streams: usize,
    /// Keep the held streams open this many seconds after they are all open, before
    /// letting them finish (time to look at the gateway with other tools).
    #[arg(long, default_value_t = 0.0)]
    pub hold_secs: f64,
    /// Measured requests per latency scenario (one connection).
    #[arg(long, default_value_t = 5000)]
    pub requests: u64,
    /// Warm-up requests before each latency scenario (not measured).
    #[arg(long, default_value_t = 500)]
    pub warmup_requests: u64,
    /// Which request kinds to measure (comma-separated). Targets for a kind left out
    /// are reported as not measured, so a partial run never passes.
    #[arg(long, value_delimiter = ',', default_value = "non-stream,stream")]
    pub modes: Vec<Mode>,
    /// Connection counts for the throughput scenarios (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub concurrency: Vec<usize>,
    /// Measured seconds per throughput scenario.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
    /// Warm-up seconds before each throughput scenario (not measured).
    #[arg(long, default_value_t = 0.5)]
    pub warmup: f64,
    /// How many times to start the gateway to time start-up (the worst one is judged).
    #[arg(long, default_value_t = 3)]
    pub startup_trials: usize,
    /// Threads of the load generator's runtime. One keeps the generator on one core's worth
    /// of CPU, leaving the rest to the mock and the gateway.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Measured requests per MCP method and route (`tools/list`, `tools/call`, one
    /// connection, sequential). A tenth of this is sent first as warm-up.
    #[arg(long, default_value_t = 1000)]
    pub mcp_requests: u64,
    /// Measured requests per gateway in the key-overhead scenario (keys, limits and
    /// spend logging off vs. on; non-stream, one connection). A tenth of this is sent
    /// first as warm-up.
    #[arg(long, default_value_t = 3000)]
    pub keys_requests: u64,
    /// Measured requests per route at one connection in the feature scenarios (direct,
    /// gateway without, gateway with: the response cache answering, OTLP tracing on);
    /// 0 skips them.
    #[arg(long, alias = "cache-requests", default_value_t = 3000)]
    pub feature_requests: u64,
    /// Run only the key-scale scenario: a store of this many virtual keys against one
    /// of 10 (start-up and per-request latency; issue 13). 0 skips it.
    #[arg(long, default_value_t = 0)]
    pub many_keys: usize,
    /// Also run the key-scale scenario on this Postgres (`postgres://user@host:port`;
    /// a database is made there and dropped after).
    #[arg(long)]
    pub many_keys_postgres: Option<String>,
    /// Skip the MCP scenarios (their targets are then reported as not measured).
    #[arg(long, conflicts_with = "mcp_only")]
    pub no_mcp: bool,
    /// Run only the MCP scenarios (the chat, key-overhead, start-up and memory targets
    /// are then reported as not measured).
    #[arg(long)]
    pub mcp_only: bool,
    /// MCP sessions held open at once on `/mcp` over one stdio upstream (a scale
    /// scenario: runs with `--scale` unless `--no-mcp`, or alone with
    /// `--mcp-sessions-only`); its `tools/call` latency uses `--mcp-requests` calls.
    #[arg(long, default_value_t = 1000)]
    pub mcp_sessions: usize,
    /// Run only the MCP sessions scenario (every other target is then not measured).
    #[arg(long, conflicts_with = "no_mcp")]
    pub mcp_sessions_only: bool,
    /// Where `scripts/install-peers` put the npm peers (default: $GATEHOUSE_NPM_PREFIX,
    /// else ~/.cache/gatehouse/npm); server-everything is started from there.
    #[arg(long)]
    pub npm_prefix: Option<PathBuf>,
    /// Also write the results as Markdown to this file.
    #[arg(long)]
    pub markdown: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UpstreamKind {
    Fast,
    Mock,
}

impl Args {
    /// Both phases of a throughput scenario must fit in a short run.
    pub fn validate(&self) -> Result<(), String> {
        let ok_secs = |s: f64| s.is_finite() && (0.0..=60.0).contains(&s);
        if !ok_secs(self.duration) || self.duration == 0.0 || !ok_secs(self.warmup) {
            return Err("--duration must be in (0, 60] s and --warmup in [0, 60] s".into());
        }
        if self.mcp_requests == 0 || self.mcp_requests > 100_000 {
            return Err("--mcp-requests must be in 1..=100000".into());
        }
        if self.keys_requests == 0 || self.keys_requests > 1_000_000 {
            return Err("--keys-requests must be in 1..=1000000".into());
        }
        if self.requests == 0 || self.requests > 1_000_000 || self.warmup_requests > 1_000_000 {
            return Err("--requests must be in 1..=1000000, --warmup-requests <= 1000000".into());
        }
        if self.concurrency.iter().any(|&c| c == 0 || c > 1024) {
            return Err("--concurrency values must be in 1..=1024".into());
        }
        if !(0.0..=3600.0).contains(&self.hold_secs) {
            return Err("--hold-secs must be in [0, 3600]".into());
        }
        if self.streams == 0 || self.streams > 100_000 {
            return Err("--streams must be in 1..=100000".into());
        }
        if self.mcp_sessions == 0 || self.mcp_sessions > 20_000 {
            return Err("--mcp-sessions must be in 1..=20000".into());
        }
        if self.many_keys > 1_000_000 {
            return Err("--many-keys must be at most 1000000".into());
        }
        if self.client_threads == 0 || self.client_threads > 64 {
            return Err("--client-threads must be in 1..=64".into());
        }
        Ok(())
    }
}
