//! Rate limits shared through the real local Redis (127.0.0.1:6379).
//!
//! These tests fail — they do not skip — when Redis is not running: a shared limit that
//! silently stopped being tested would look exactly like one that works.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may (project rule); covers helpers too

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_server::limits::{KeyLimits, LimitKind, Limiter, RedisOptions};

const REDIS: &str = "redis://127.0.0.1:6379";

/// A prefix no other test (or earlier run) uses, and a connection to clean it up.
struct Scope {
    prefix: String,
    conn: redis::aio::MultiplexedConnection,
}

impl Scope {
    async fn new(test: &str) -> Scope {
        let client = redis::Client::open(REDIS).unwrap();
        let mut conn = tokio::time::timeout(
            Duration::from_secs(2),
            client.get_multiplexed_async_connection(),
        )
        .await
        .expect("Redis at 127.0.0.1:6379 did not answer in 2 s")
        .expect("Redis must be running at 127.0.0.1:6379 for these tests");
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
        assert_eq!(pong, "PONG");
        let prefix = format!("gatehouse-test:{test}:{}:", uuid::Uuid::new_v4().simple());
        Scope { prefix, conn }
    }

    /// A limiter as one replica would build it; generous timeout so a busy test machine
    /// cannot turn a slow answer into a fail-open admission.
    fn replica(&self) -> Limiter {
        Limiter::redis(
            REDIS,
            RedisOptions {
                prefix: self.prefix.clone(),
                timeout: Duration::from_secs(2),
                background_timeout: Duration::from_secs(2),
                ..RedisOptions::default()
            },
        )
        .unwrap()
    }

    async fn keys(&mut self) -> Vec<String> {
        redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut self.conn)
            .await
            .unwrap()
    }

    async fn get(&mut self, key: &str) -> Option<i64> {
        redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.conn)
            .await
            .unwrap()
    }

    async fn cleanup(mut self) {
        let keys = self.keys().await;
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut self.conn)
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_enforce_one_rpm_limit_together() {
    let scope = Scope::new("rpm").await;
    let replicas = [Arc::new(scope.replica()), Arc::new(scope.replica())];
    let limits = KeyLimits {
        rpm: Some(10),
        ..KeyLimits::default()
    };

    // Taking turns: each replica admits five, then neither admits an eleventh.
    for i in 0..10 {
        let permit = replicas[i % 2].admit("key-a", &limits).await.unwrap();
        let requests = permit.status().requests.unwrap();
        assert_eq!((requests.limit, requests.remaining), (10, 9 - i as u64));
    }
    for replica in &replicas {
        let refusal = replica.admit("key-a", &limits).await.unwrap_err();
        assert_eq!(refusal.limit, LimitKind::Rpm);
        assert_eq!((refusal.limit_value, refusal.remaining), (10, 0));
        assert!(refusal.reset_after > Duration::ZERO);
        assert!(refusal.reset_after <= Duration::from_secs(120));
    }

    // At once: 30 concurrent requests spread over both replicas, exactly 10 get through.
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let limiter = Arc::clone(&replicas[i % 2]);
            tokio::spawn(async move { limiter.admit("key-b", &limits).await })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(refusal) => assert_eq!(refusal.limit, LimitKind::Rpm),
        }
    }
    assert_eq!(admitted, 10);
    assert_eq!(
        replicas[0].local_fallback_count() + replicas[1].local_fallback_count(),
        0
    );
    scope.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_slots_are_shared_and_released_on_drop() {
    let mut scope = Scope::new("parallel").await;
    let (one, two) = (scope.replica(), scope.replica());
    let limits = KeyLimits {
        max_parallel: Some(2),
        ..KeyLimits::default()
    };
    let first = one.admit("key", &limits).await.unwrap();
    let second = two.admit("key", &limits).await.unwrap();
    let refused = one.admit("key", &limits).await.unwrap_err();
    assert_eq!(refused.limit, LimitKind::Parallel);
    assert_eq!(refused.limit_value, 2);
    assert!(two.admit("key", &limits).await.is_err());

    // Releasing on one replica frees a slot for the other.
    drop(first);
    let two_ref = &two;
    let third = loop_until_admitted(two_ref, limits).await;
    assert!(one.admit("key", &limits).await.is_err());

    // Once every permit is gone the counter is gone too.
    drop(second);
    drop(third);
    let counter = format!("{}{{key}}:p", scope.prefix);
    let deadline = Instant::now() + Duration::from_secs(3);
    while scope.get(&counter).await.is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(scope.get(&counter).await, None);
    scope.cleanup().await;
}

/// Background releases land asynchronously: retry for up to 3 s.
async fn loop_until_admitted(
    limiter: &Limiter,
    limits: KeyLimits,
) -> gatehouse_server::limits::Permit {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match limiter.admit("key", &limits).await {
            Ok(permit) => return permit,
            Err(refusal) if Instant::now() < deadline => {
                assert_eq!(refusal.limit, LimitKind::Parallel);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(refusal) => panic!("slot never released: {refusal}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_recorded_on_one_replica_limit_the_other() {
    let mut scope = Scope::new("tpm").await;
    let (one, two) = (scope.replica(), scope.replica());
    let limits = KeyLimits {
        tpm: Some(1_000),
        ..KeyLimits::default()
    };
    let permit = one.admit("key", &limits).await.unwrap();
    assert_eq!(permit.status().tokens.map(|t| t.remaining), Some(1_000));
    one.record_tokens("key", &limits, 1_200);
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut refused = false;
    while !refused && Instant::now() < deadline {
        refused = matches!(two.admit("key", &limits).await, Err(r) if r.limit == LimitKind::Tpm);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "replica two sees the tokens replica one recorded");
    let refusal = two.admit("key", &limits).await.unwrap_err();
    assert_eq!(refusal.limit_value, 1_000);
    assert_eq!(refusal.status.tokens.map(|t| t.remaining), Some(0));
    // Counters carry a TTL, so an idle key leaves nothing behind in Redis for ever.
    for key in scope.keys().await {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut scope.conn)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 120_000, "{key} has TTL {ttl}");
    }
    scope.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_falls_back_to_local_limits_quickly() {
    // A port nothing listens on: bind one, note it, close it.
    let port = {
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().port()
    };
    let limiter = Limiter::from_settings(Some(format!("redis://127.0.0.1:{port}"))).unwrap();
    assert_eq!(limiter.backend_name(), "redis");
    let limits = KeyLimits {
        rpm: Some(3),
        tpm: None,
        max_parallel: None,
    };
    let started = Instant::now();
    let mut admitted = 0;
    for _ in 0..20 {
        match limiter.admit("key", &limits).await {
            Ok(permit) => {
                admitted += 1;
                assert!(
                    permit.status().requests.is_some(),
                    "local limits report their quota"
                );
            }
            Err(refusal) => assert_eq!(refusal.limit, LimitKind::Rpm),
        }
    }
    assert_eq!(admitted, 3, "the replica's own counters enforce the limit");
    // 20 decisions: at most one waits the 50 ms timeout; the back-off answers the rest at once.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(limiter.local_fallback_count(), 20);
    assert_eq!(limiter.redis_up(), Some(false));
}
