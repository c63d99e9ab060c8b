//! The MCP scenarios (issue #3): `@modelcontextprotocol/server-everything` over streamable
//! HTTP, `tools/list` and `tools/call echo` at one connection, straight to it and through
//! the gateway's `/mcp/ev`, in alternating slices like the chat latency scenarios.

use std::path::PathBuf;

use crate::cli::Args;
use crate::client::{Conn, Prepared, Target};
use crate::error::BenchError;
use crate::load::{self, Amount, Plan};
use crate::mcp::{self, Method};
use crate::procs::Service;
use crate::results::{McpRow, Route};
use crate::run::{
    Binaries, COUNT_PHASE_LIMIT, LATENCY_ROUNDS, MASTER_KEY, REQUEST_TIMEOUT, start_gateway,
};
use crate::stats::ms;

/// server-everything's endpoint, and the gateway's endpoint for the one server `ev`.
const DIRECT_PATH: &str = "/mcp";
const GATEWAY_PATH: &str = "/mcp/ev";
/// The package `scripts/install-peers` installs, relative to the npm prefix.
const EVERYTHING_SCRIPT: &str =
    "node_modules/@modelcontextprotocol/server-everything/dist/index.js";

/// server-everything's entry script: `--npm-prefix`, else `$GATEHOUSE_NPM_PREFIX`, else
/// `~/.cache/gatehouse/npm` (where `scripts/install-peers` puts it).
pub fn everything_script(args: &Args) -> Result<PathBuf, BenchError> {
    let prefix = args
        .npm_prefix
        .clone()
        .or_else(|| std::env::var_os("GATEHOUSE_NPM_PREFIX").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/gatehouse/npm")))
        .unwrap_or_else(|| PathBuf::from(".cache/gatehouse/npm"));
    let script = prefix.join(EVERYTHING_SCRIPT);
    if script.is_file() {
        Ok(script)
    } else {
        Err(BenchError::MissingPeer {
            what: "@modelcontextprotocol/server-everything",
            path: script,
        })
    }
}

/// Starts server-everything and a gateway that knows it as `ev`, opens one session per
/// route, and measures each method on both routes.
pub async fn run(
    args: &Args,
    bins: &Binaries,
    script: &std::path::Path,
    mock_url: &str,
) -> Result<Vec<McpRow>, BenchError> {
    let mut server = Service::everything(script)?;
    let mcp_url = format!("{}{DIRECT_PATH}", server.url);
    let config = crate::procs::gateway_config(mock_url, Some(&mcp_url), MASTER_KEY);
    let (mut gateway, _) = start_gateway(bins, &config).await?;
    let direct = Target::from_url(&server.url, "")?;
    let via = Target::from_url(&gateway.url, MASTER_KEY)?;
    let direct_session = open_session(&direct, DIRECT_PATH, "direct").await?;
    let via_session = open_session(&via, GATEWAY_PATH, "gateway").await?;

    let plan = Plan {
        connections: 1,
        warmup: Amount::Requests {
            count: args.mcp_requests / 10,
            limit: COUNT_PHASE_LIMIT,
        },
        measure: Amount::Requests {
            count: args.mcp_requests,
            limit: COUNT_PHASE_LIMIT,
        },
        request_timeout: REQUEST_TIMEOUT,
        rounds: LATENCY_ROUNDS,
    };
    let mut rows = Vec::new();
    for method in [Method::ToolsList, Method::ToolsCall] {
        let routes = [
            (
                direct.clone(),
                Prepared::mcp(&direct, DIRECT_PATH, &direct_session, method),
            ),
            (
                via.clone(),
                Prepared::mcp(&via, GATEWAY_PATH, &via_session, method),
            ),
        ];
        let outcomes = load::compare(&routes, &plan).await?;
        for (route, outcome) in [Route::Direct, Route::Gateway].into_iter().zip(outcomes) {
            let row = McpRow::new(method, route, outcome);
            print_progress(&row);
            rows.push(row);
        }
    }
    for (what, service) in [
        ("server-everything", &mut server),
        ("gatehouse", &mut gateway),
    ] {
        if !service.alive() {
            return Err(BenchError::NotServing {
                what,
                detail: format!(
                    "it exited during the MCP scenarios; last output:\n{}",
                    service.tail()
                ),
            });
        }
    }
    Ok(rows)
}

/// `initialize` (protocol 2025-06-18), read `Mcp-Session-Id`, then
/// `notifications/initialized`. Returns the session id.
pub async fn open_session(
    target: &Target,
    path: &'static str,
    route: &'static str,
) -> Result<String, BenchError> {
    let fail = |detail: String| BenchError::McpSession { route, detail };
    let mut conn = Conn::open(target.addr).await?;
    let init = Prepared::mcp_post(target, path, None, mcp::initialize_body(1));
    let (status, headers, body) = conn
        .fetch(&init, REQUEST_TIMEOUT)
        .await
        .map_err(|e| fail(format!("initialize: {e}")))?;
    let text = || {
        String::from_utf8_lossy(&body)
            .chars()
            .take(300)
            .collect::<String>()
    };
    if !status.is_success() {
        return Err(fail(format!("initialize: HTTP {status}: {}", text())));
    }
    mcp::check_response(&body, 1, None)
        .map_err(|e| fail(format!("initialize: {e}: {}", text())))?;
    let session = headers
        .get(mcp::SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .ok_or_else(|| fail("initialize answered without an Mcp-Session-Id header".into()))?;
    let initialized =
        Prepared::mcp_post(target, path, Some(&session), mcp::INITIALIZED_BODY.into());
    let (status, _, body) = conn
        .fetch(&initialized, REQUEST_TIMEOUT)
        .await
        .map_err(|e| fail(format!("notifications/initialized: {e}")))?;
    if !status.is_success() {
        return Err(fail(format!(
            "notifications/initialized: HTTP {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        )));
    }
    Ok(session)
}

fn print_progress(row: &McpRow) {
    let p50 = row.full.map(|s| ms(s.p50)).unwrap_or(f64::NAN);
    eprintln!(
        "mcp {:<10} {:<7} c=1   p50 {p50:.3} ms  {:.0} req/s  errors {}{}",
        row.method.label(),
        row.route.label(),
        row.per_second,
        row.errors,
        row.first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
}
