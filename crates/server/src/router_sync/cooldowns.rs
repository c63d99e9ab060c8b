//! Router cooldowns shared by every replica through Redis.
//!
//! The hot path never waits on Redis: when this replica's router cools a deployment down,
//! [`RedisCooldowns`] queues it, and a background task publishes it (`PUBLISH` on one
//! channel, plus a key with the cooldown's own expiry for replicas that start later). The
//! same task subscribes to the channel and hands every other replica's cooldowns to the
//! local router, which then skips the deployment exactly as if it had failed here. Redis
//! down: each replica keeps its own cooldowns and catches up from the keys on reconnect.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gatehouse_router::CooldownSink;
use tokio::sync::mpsc;

use crate::state::AppState;

const CHANNEL: &str = "gatehouse:router:cooldowns";
const KEY_PREFIX: &str = "gatehouse:router:cooldown:";
/// Cooldowns waiting to be published, at most (older ones are dropped when Redis is
/// away so long that this fills: they would have expired anyway).
const QUEUE: usize = 1024;

/// The router's sink: queues each cooldown for the publisher.
pub struct RedisCooldowns {
    tx: mpsc::Sender<(String, u64)>,
}

impl CooldownSink for RedisCooldowns {
    fn cooled(&self, deployment_id: &str, until_ms: u64) {
        if self
            .tx
            .try_send((deployment_id.to_owned(), until_ms))
            .is_err()
        {
            metrics::counter!("gatehouse_cooldowns_unpublished_total").increment(1);
        }
    }
}

/// The sink for the router and what the background task needs to start.
pub fn channel(url: String) -> (RedisCooldowns, Feed) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (RedisCooldowns { tx }, Feed { url, rx })
}

pub struct Feed {
    url: String,
    rx: mpsc::Receiver<(String, u64)>,
}

impl Feed {
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Publishes this replica's cooldowns and follows the others' (runs until aborted).
pub async fn share(client: redis::Client, state: Arc<AppState>, feed: Feed) {
    let publisher = publish(client.clone(), feed.rx);
    let subscriber = follow(client, state);
    tokio::join!(publisher, subscriber);
}

async fn publish(client: redis::Client, mut rx: mpsc::Receiver<(String, u64)>) {
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    while let Some((id, until)) = rx.recv().await {
        let ttl = until.saturating_sub(gatehouse_router::now_ms()).max(1);
        for _ in 0..2 {
            if conn.is_none() {
                conn = client.get_multiplexed_async_connection().await.ok();
            }
            let Some(c) = conn.as_mut() else { break };
            let mut pipe = redis::pipe();
            pipe.cmd("SET")
                .arg(format!("{KEY_PREFIX}{id}"))
                .arg(until)
                .arg("PX")
                .arg(ttl)
                .ignore()
                .cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(format!("{until} {id}"))
                .ignore();
            let sent = pipe.query_async(c);
            // Bounded: a Redis that silently drops packets must not stall publishing.
            let sent: redis::RedisResult<()> = tokio::time::timeout(Duration::from_secs(2), sent)
                .await
                .unwrap_or_else(|_| {
                    Err(redis::RedisError::from((redis::ErrorKind::Io, "timed out")))
                });
            match sent {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "router cooldowns: publishing to Redis failed");
                    conn = None;
                }
            }
        }
    }
}

/// Follows the channel, reconnecting with a backoff; on every (re)connect, reads the
/// cooldowns still running so that none started while away is missed.
async fn follow(client: redis::Client, state: Arc<AppState>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match follow_once(&client, &state).await {
            Ok(()) => {
                // The subscription ended cleanly (Redis closed it): not a hot loop.
                backoff = Duration::from_millis(200);
                tokio::time::sleep(backoff).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "router cooldowns: Redis subscription lost; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn follow_once(client: &redis::Client, state: &AppState) -> redis::RedisResult<()> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(CHANNEL).await?;
    catch_up(client, state).await?;
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let Ok(payload) = message.get_payload::<String>() else {
            continue;
        };
        if let Some((until, id)) = payload.split_once(' ')
            && let Ok(until) = until.parse::<u64>()
        {
            state.router.apply_cooldown(id, until);
        }
    }
    Ok(())
}

async fn catch_up(client: &redis::Client, state: &AppState) -> redis::RedisResult<()> {
    let ids: Vec<String> = state.router.members().map(|m| m.id().to_owned()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = ids.iter().map(|id| format!("{KEY_PREFIX}{id}")).collect();
    let untils: Vec<Option<u64>> = redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
    for (id, until) in ids.iter().zip(untils) {
        if let Some(until) = until {
            state.router.apply_cooldown(id, until);
        }
    }
    Ok(())
}
