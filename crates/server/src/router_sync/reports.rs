//! In-flight counts, latencies and usage windows exchanged between replicas.
//!
//! Every [`INTERVAL`] each replica writes its own figures for every deployment into one
//! Redis hash of its own (`gatehouse:router:stats:<replica>`, field = deployment id,
//! expiring after [`STALE`] so a replica that died stops counting), announces itself in a
//! sorted set of live replicas, reads the others' hashes and hands their sum to the
//! local router. A replica's figures thus reach the others within one interval; the rpm
//! and tpm of a deployment can be overshot across replicas by what they serve in that time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_router::{Report, now_ms};
use rand::Rng;

use crate::state::AppState;

const INTERVAL: Duration = Duration::from_millis(500);
/// A replica silent this long is no longer counted.
const STALE: Duration = Duration::from_secs(3);
const REPLICAS: &str = "gatehouse:router:replicas";
const STATS_PREFIX: &str = "gatehouse:router:stats:";

/// Exchanges reports until aborted, reconnecting after errors.
pub async fn share(client: redis::Client, state: Arc<AppState>) {
    let me = format!("{:016x}", rand::rng().random::<u64>());
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut warned = false;
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if conn.is_none() {
            conn = client.get_multiplexed_async_connection().await.ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        // Bounded: a Redis that silently drops packets must not stall the exchange.
        let exchanged = tokio::time::timeout(STALE, exchange(c, &me, &state))
            .await
            .unwrap_or_else(|_| Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out"))));
        match exchanged {
            Ok(()) => warned = false,
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "router state: exchanging reports through Redis failed; routing on this replica's own figures");
                    warned = true;
                }
                conn = None;
            }
        }
    }
}

async fn exchange(
    conn: &mut redis::aio::MultiplexedConnection,
    me: &str,
    state: &AppState,
) -> redis::RedisResult<()> {
    let now = now_ms();
    let stale_ms = STALE.as_millis() as u64;
    let mine: Vec<(String, String)> = state
        .router
        .reports()
        .map(|(id, r)| (id.to_owned(), encode(&r)))
        .collect();
    let mut pipe = redis::pipe();
    if !mine.is_empty() {
        let key = format!("{STATS_PREFIX}{me}");
        pipe.cmd("HSET").arg(&key).arg(&mine).ignore();
        pipe.cmd("PEXPIRE").arg(&key).arg(stale_ms).ignore();
    }
    pipe.cmd("ZADD").arg(REPLICAS).arg(now).arg(me).ignore();
    pipe.cmd("ZREMRANGEBYSCORE")
        .arg(REPLICAS)
        .arg("-inf")
        .arg(now.saturating_sub(stale_ms))
        .ignore();
    pipe.cmd("ZRANGE").arg(REPLICAS).arg(0).arg(-1);
    let (replicas,): (Vec<String>,) = pipe.query_async(conn).await?;
    let others: Vec<&String> = replicas.iter().filter(|r| r.as_str() != me).collect();
    let mut sums: HashMap<String, Report> = HashMap::new();
    if !others.is_empty() {
        let mut pipe = redis::pipe();
        for other in &others {
            pipe.cmd("HGETALL").arg(format!("{STATS_PREFIX}{other}"));
        }
        let hashes: Vec<HashMap<String, String>> = pipe.query_async(conn).await?;
        let minute = now / 60_000;
        for hash in hashes {
            for (id, value) in hash {
                if let Some(report) = decode(&value) {
                    sums.entry(id).or_default().merge(&report, minute);
                }
            }
        }
    }
    // Every deployment is set, so figures of a replica that went away drop to zero.
    let empty = Report::default();
    for (id, _) in &mine {
        state
            .router
            .apply_reports(id, sums.get(id).unwrap_or(&empty));
    }
    Ok(())
}

fn encode(r: &Report) -> String {
    format!(
        "{} {} {} {} {}",
        r.in_flight, r.latency_us, r.minute, r.requests, r.tokens
    )
}

/// A report another replica wrote; `None` for anything else (Redis is shared, so a
/// malformed field is skipped, not trusted).
fn decode(value: &str) -> Option<Report> {
    let mut parts = value.split(' ').map(str::parse::<u64>);
    let mut next = || parts.next()?.ok();
    Some(Report {
        in_flight: next()?,
        latency_us: next()?,
        minute: next()?,
        requests: next()?,
        tokens: next()?,
    })
}
