//! The router's state shared by every replica through Redis, so that several replicas
//! route as one: cooldowns as they start ([`cooldowns`], pub/sub), and in-flight counts,
//! latencies and per-minute usage as periodic reports ([`reports`]). The hot path never
//! waits on Redis; with Redis away each replica routes on what it knows itself.

pub mod cooldowns;
pub mod reports;

use std::sync::Arc;

use crate::state::AppState;

/// Starts sharing; the caller owns the task and aborts it at shutdown.
pub fn spawn(state: Arc<AppState>, feed: cooldowns::Feed) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(client) = redis::Client::open(feed.url()) else {
            tracing::warn!("router state: the Redis URL does not parse; not shared");
            return;
        };
        tokio::join!(
            cooldowns::share(client.clone(), state.clone(), feed),
            reports::share(client, state),
        );
    })
}
