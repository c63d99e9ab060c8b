//! `gatehouse-mock`: serve the mock vendor APIs until killed.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gatehouse_testkit::{MockOptions, MockServer};

#[derive(Parser, Debug)]
#[command(
    name = "gatehouse-mock",
    about = "Mock OpenAI + Anthropic APIs for tests and benchmarks"
)]
struct Args {
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Delay before every response (before the first chunk of a stream).
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Delay between stream chunks.
    #[arg(long, default_value_t = 0)]
    chunk_delay_ms: u64,
    /// Required API key (Bearer for OpenAI, x-api-key for Anthropic); any key when unset.
    #[arg(long)]
    api_key: Option<String>,
    /// Fail every n-th chat/messages/responses request with `--fail-status`.
    #[arg(long)]
    fail_every_n: Option<u64>,
    /// Status for `--fail-every-n` (429 is sent with `retry-after: 1`).
    #[arg(long, default_value_t = 429)]
    fail_status: u16,
    /// Comma-separated model allow-list; other models get the vendor's 404.
    #[arg(long, value_delimiter = ',')]
    models: Option<Vec<String>>,
    /// Keep received requests in memory (off by default so long benchmarks stay flat).
    #[arg(long)]
    record: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse-mock: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let opts = MockOptions {
            host: args.host.clone(),
            port: args.port,
            api_key: args.api_key,
            latency: Duration::from_millis(args.latency_ms),
            chunk_delay: Duration::from_millis(args.chunk_delay_ms),
            record_requests: args.record,
            fail_every_n: args.fail_every_n,
            fail_status: args.fail_status,
            models: args.models,
        };
        let server = match MockServer::start(opts).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!(
                    "gatehouse-mock: cannot bind {}:{}: {e}",
                    args.host, args.port
                );
                return ExitCode::FAILURE;
            }
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "gatehouse-mock listening on http://{}:{}",
            args.host,
            server.addr().port()
        );
        let _ = out.flush();
        drop(out);
        tokio::select! {
            () = server.wait() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        ExitCode::SUCCESS
    })
}
