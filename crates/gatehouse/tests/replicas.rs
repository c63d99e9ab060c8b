#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! Several replicas over one Postgres (and one Redis) acting as one gateway: real
//! `gatehouse` processes, the machine's Postgres with a database made by the test, a
//! private redis-server that the test kills, nginx round-robin in front, and a TCP relay
//! that takes one replica's database away.

mod common;
mod replicas_support;

use std::time::{Duration, Instant};

use common::{Gateway, TempDatabase, client};
use gatehouse_testkit::{MockOptions, MockServer};
use replicas_support::{Nginx, PgRelay, Redis, sigkill};
use serde_json::{Value, json};

const MASTER: &str = "sk-master-replicas";

fn config(mock: &MockServer, database_url: &str, redis: Option<&str>) -> String {
    let redis = redis
        .map(|url| format!("router_settings:\n  redis_url: \"{url}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
model_list:
  - model_name: gpt
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}/v1", api_key: sk-up}}
    model_info: {{input_cost_per_token: 0.001, output_cost_per_token: 0.002}}
general_settings:
  master_key: {MASTER}
  database_url: "{database_url}"
{redis}"#,
        base = mock.url()
    )
}

fn pg_url(db: &TempDatabase) -> String {
    format!("postgres://postgres@127.0.0.1:5432/{}", db.0)
}

async fn admin(gw: &str, path: &str, body: Value) -> Value {
    let resp = client()
        .post(format!("{gw}{path}"))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{path}: {}", resp.status());
    resp.json().await.unwrap()
}

async fn chat(gw: &str, key: &str) -> reqwest::Response {
    client()
        .post(format!("{gw}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .await
        .unwrap()
}

/// Polls `gw` with `key` until the answer's status is `want`; how long that took.
async fn until_status(gw: &str, key: &str, want: u16, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let status = client()
            .get(format!("{gw}/v1/models"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if status == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{gw} still answers {status} (want {want}) after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn readiness(gw: &str) -> Value {
    client()
        .get(format!("{gw}/health/readiness"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn spend_rows(db: &TempDatabase) -> u64 {
    psql_db(db, "SELECT COUNT(*) FROM gatehouse_spend_logs")
        .trim()
        .parse()
        .unwrap()
}

fn psql_db(db: &TempDatabase, sql: &str) -> String {
    let out = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            &db.0,
            "-tAc",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_changes_on_one_replica_reach_the_other_within_a_second() {
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    let db = TempDatabase::create();
    let cfg = config(&mock, &pg_url(&db), None);
    let a = Gateway::start(&cfg);
    let b = Gateway::start(&cfg);
    // The periodic refresh runs every 5 s: anything under a second is the notification.
    let second = Duration::from_secs(1);

    let made = admin(&a.url, "/key/generate", json!({"key_alias": "moving"})).await;
    let key = made["key"].as_str().unwrap().to_owned();
    let took = until_status(&b.url, &key, 200, second).await;
    eprintln!("created: visible on the other replica after {took:?}");

    admin(&a.url, "/key/block", json!({"key": key})).await;
    let took = until_status(&b.url, &key, 401, second).await;
    eprintln!("blocked: refused by the other replica after {took:?}");

    admin(&a.url, "/key/unblock", json!({"key": key})).await;
    until_status(&b.url, &key, 200, second).await;

    admin(
        &a.url,
        "/key/update",
        json!({"key": key, "models": ["none-such"]}),
    )
    .await;
    let deadline = Instant::now() + second;
    loop {
        let resp = chat(&b.url, &key).await;
        if resp.status() != 200 {
            assert!(resp.status().is_client_error(), "{}", resp.status());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the update did not reach the other replica"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    admin(&a.url, "/key/update", json!({"key": key, "models": []})).await;

    let regenerated = admin(&a.url, "/key/regenerate", json!({"key": key})).await;
    let new_key = regenerated["key"].as_str().unwrap().to_owned();
    until_status(&b.url, &key, 401, second).await;
    until_status(&b.url, &new_key, 200, second).await;

    admin(&b.url, "/key/delete", json!({"keys": [new_key]})).await;
    let took = until_status(&a.url, &new_key, 401, second).await;
    eprintln!("deleted on the second: refused by the first after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_spent_through_one_replica_holds_on_the_other() {
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    let db = TempDatabase::create();
    let cfg = config(&mock, &pg_url(&db), None);
    let a = Gateway::start(&cfg);
    let b = Gateway::start(&cfg);
    let made = admin(&a.url, "/key/generate", json!({})).await;
    let key = made["key"].as_str().unwrap().to_owned();
    let first = chat(&a.url, &key).await;
    assert_eq!(first.status(), 200);
    let cost: f64 = first.headers()["x-litellm-response-cost"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(cost > 0.0);
    // Room for four more requests' worth after the first.
    admin(
        &a.url,
        "/key/update",
        json!({"key": key, "max_budget": cost * 4.5}),
    )
    .await;
    until_status(&b.url, &key, 200, Duration::from_secs(1)).await;
    let mut served_on_a = 1;
    loop {
        let resp = chat(&a.url, &key).await;
        if resp.status() != 200 {
            assert_eq!(resp.status(), 400, "a budget refusal");
            break;
        }
        served_on_a += 1;
        assert!(served_on_a < 20, "replica A never enforced the budget");
    }
    assert_eq!(served_on_a, 5, "A alone enforces the budget exactly");
    // B learns the spend from the database within a second (the spend writer's batch, then
    // the change notification); it never served this key a model request.
    let started = Instant::now();
    loop {
        let resp = chat(&b.url, &key).await;
        if resp.status() == 400 {
            let v: Value = resp.json().await.unwrap();
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Budget"),
                "{v}"
            );
            break;
        }
        assert_eq!(resp.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "replica B still serves an exhausted budget after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "budget refused on B {:?} after A refused",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_means_local_limits_said_out_loud_then_shared_again() {
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    let db = TempDatabase::create();
    let mut redis = Redis::start();
    let cfg = config(&mock, &pg_url(&db), Some(&redis.url()));
    let a = Gateway::start(&cfg);
    let b = Gateway::start(&cfg);
    let made = admin(&a.url, "/key/generate", json!({"rpm_limit": 4})).await;
    let key = made["key"].as_str().unwrap().to_owned();
    until_status(&b.url, &key, 200, Duration::from_secs(1)).await;

    let burst = |n: usize| {
        let (a, b, key) = (a.url.clone(), b.url.clone(), key.clone());
        async move {
            let mut ok = 0;
            for i in 0..n {
                let gw = if i % 2 == 0 { &a } else { &b };
                if chat(gw, &key).await.status() == 200 {
                    ok += 1;
                }
            }
            ok
        }
    };
    assert_eq!(burst(10).await, 4, "one limit across both replicas");

    redis.kill();
    // Still serving: each replica now enforces the limit on its own, so a fresh key gets
    // at most its limit on each.
    let made = admin(&a.url, "/key/generate", json!({"rpm_limit": 3})).await;
    let key2 = made["key"].as_str().unwrap().to_owned();
    until_status(&b.url, &key2, 200, Duration::from_secs(1)).await;
    let mut ok = 0;
    for i in 0..12 {
        let gw = if i % 2 == 0 { &a.url } else { &b.url };
        let status = chat(gw, &key2).await.status();
        assert!(status == 200 || status == 429, "{status}");
        ok += usize::from(status == 200);
    }
    assert_eq!(ok, 6, "three per replica while Redis is down");
    for gw in [&a, &b] {
        let ready = readiness(&gw.url).await;
        assert_eq!(ready["cache"], "unreachable", "{ready}");
        assert_eq!(ready["shared_state"]["redis"]["limits"], "local", "{ready}");
        assert_eq!(ready["status"], "degraded");
        let metrics = client()
            .get(format!("{}/metrics", gw.url))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(metrics.contains("gatehouse_redis_up 0"), "{metrics}");
        assert!(
            gw.logs()
                .contains("rate limits are now enforced per replica"),
            "{}",
            gw.logs()
        );
    }

    redis.restart();
    // The back-off is a second; then the next decision reaches Redis and rejoins.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let made = admin(&a.url, "/key/generate", json!({"rpm_limit": 2})).await;
    let key3 = made["key"].as_str().unwrap().to_owned();
    until_status(&b.url, &key3, 200, Duration::from_secs(1)).await;
    // The first decision on each replica may still be local (it finds Redis back).
    let mut ok = 0;
    for i in 0..10 {
        let gw = if i % 2 == 0 { &a.url } else { &b.url };
        ok += usize::from(chat(gw, &key3).await.status() == 200);
    }
    assert!(ok <= 3, "shared again: {ok} served for a limit of 2");
    for gw in [&a, &b] {
        let ready = readiness(&gw.url).await;
        assert_eq!(ready["cache"], "connected", "{ready}");
        assert!(gw.logs().contains("Redis is back"), "{}", gw.logs());
    }
}

/// Requests through nginx, `n` at a time from `workers` tasks; successes counted.
async fn load(url: &str, key: &str, requests: usize, workers: usize) -> (usize, usize) {
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (url, key) = (url.to_owned(), key.to_owned());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0, 0);
                for _ in (w..requests).step_by(workers) {
                    match client()
                        .post(format!("{url}/v1/chat/completions"))
                        .bearer_auth(&key)
                        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 200 => {
                            if r.bytes().await.is_ok() {
                                ok += 1;
                            } else {
                                failed += 1;
                            }
                        }
                        _ => failed += 1,
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let mut total = (0, 0);
    for t in tasks {
        let (ok, failed) = t.await.unwrap();
        total = (total.0 + ok, total.1 + failed);
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_and_a_sigkill_lose_no_spend_rows() {
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    let db = TempDatabase::create();
    let relay = PgRelay::start();
    // Replica A reaches Postgres through the relay; B directly.
    let cfg_a = config(&mock, &relay.url(&db.0), None);
    let cfg_b = config(&mock, &pg_url(&db), None);
    // A's spool outlives the process (as a directory on the host does).
    let spool = tempfile::tempdir().unwrap();
    let spool_env = [("GATEHOUSE_SPOOL_DIR", spool.path().to_str().unwrap())];
    let a = Gateway::start_with(&cfg_a, &[], &spool_env);
    let b = Gateway::start(&cfg_b);
    let lb = Nginx::start(&[&a.url, &b.url]);
    let made = admin(&a.url, "/key/generate", json!({})).await;
    let key = made["key"].as_str().unwrap().to_owned();
    until_status(&b.url, &key, 200, Duration::from_secs(1)).await;

    let (ok1, failed1) = load(&lb.url, &key, 200, 4).await;
    assert_eq!((ok1, failed1), (200, 0), "both replicas healthy");

    // A loses its database: it keeps authenticating from memory and spools spend rows.
    relay.cut();
    let (ok2, failed2) = load(&lb.url, &key, 200, 4).await;
    assert_eq!(
        (ok2, failed2),
        (200, 0),
        "an outage on one replica fails no request"
    );
    let started = Instant::now();
    loop {
        let ready = readiness(&a.url).await;
        if ready["db"] == "unreachable" {
            assert!(
                ready["shared_state"]["database"]["spend_rows_spooled"].as_u64() > Some(0),
                "{ready}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "{ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Under load, A dies without a goodbye; its database is still out.
    let lb_url = lb.url.clone();
    let key2 = key.clone();
    let during = tokio::spawn(async move { load(&lb_url, &key2, 400, 4).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    sigkill(a.pid());
    let (ok3, failed3) = during.await.unwrap();
    drop(a);
    eprintln!("during the kill: {ok3} served, {failed3} failed (in flight on the killed replica)");
    assert!(
        failed3 <= 4,
        "only requests in flight on the killed replica fail: {failed3}"
    );
    // The other replica never noticed.
    let (ok4, failed4) = load(&b.url, &key, 50, 2).await;
    assert_eq!((ok4, failed4), (50, 0));

    // The database comes back and A restarts where it ran: it writes the spooled rows.
    relay.restore();
    let a2 = Gateway::start_with(&cfg_a, &[], &spool_env);
    let served = (ok1 + ok2 + ok3 + ok4) as u64;
    let started = Instant::now();
    let rows = loop {
        let rows = spend_rows(&db);
        if rows >= served || started.elapsed() > Duration::from_secs(20) {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        rows >= served,
        "every served request has its spend row: {rows} rows for {served} served\n{}",
        a2.logs()
    );
    // A row can exist for a request whose answer the kill cut off on its way out.
    assert!(
        rows <= served + failed3 as u64,
        "{rows} rows for {served} served"
    );
    assert!(
        a2.logs().contains("adopted the spend rows"),
        "{}",
        a2.logs()
    );
    // The key's stored spend matches the rows.
    let sums = psql_db(
        &db,
        "SELECT (SELECT SUM(cost) FROM gatehouse_spend_logs)::numeric(20,9) || ' ' || \
         (SELECT SUM(spend) FROM gatehouse_keys)::numeric(20,9)",
    );
    let parts: Vec<f64> = sums
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert!(
        (parts[0] - parts[1]).abs() < 1e-6,
        "rows {} vs key spend {}",
        parts[0],
        parts[1]
    );
}

/// server-everything over streamable HTTP on `port`.
fn http_everything(port: u16) -> common::Child2 {
    let child = std::process::Command::new("node")
        .arg(common::everything())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for_port(port);
    common::Child2(child)
}

async fn mcp(url: &str, sid: Option<&str>, body: Value) -> reqwest::Response {
    let mut r = client()
        .post(format!("{url}/mcp"))
        .bearer_auth(MASTER)
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(s) = sid {
        r = r.header("mcp-session-id", s);
    }
    r.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mcp_session_moves_between_replicas_behind_the_balancer() {
    let mock = MockServer::start(MockOptions::with_api_key("sk-up"))
        .await
        .unwrap();
    let db = TempDatabase::create();
    let port = common::free_port();
    let mut upstream = http_everything(port);
    let cfg = format!(
        "{}mcp_servers:\n  ev:\n    url: http://127.0.0.1:{port}/mcp\n",
        config(&mock, &pg_url(&db), None)
    );
    let a = Gateway::start(&cfg);
    let b = Gateway::start(&cfg);
    let lb = Nginx::start(&[&a.url, &b.url]);
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let resp = mcp(&lb.url, None, init).await;
    assert_eq!(resp.status(), 200);
    let sid = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let call = |n: u64| {
        json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
            "params": {"name": "ev-echo", "arguments": {"message": format!("call {n}")}}})
    };
    // Round-robin: consecutive calls land on both replicas; each has its own upstream
    // session to the HTTP server and resumes the client's session from its sealed id.
    for n in 1..=6 {
        let v: Value = mcp(&lb.url, Some(&sid), call(n))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            v["result"]["content"][0]["text"],
            format!("Echo: call {n}"),
            "{v}"
        );
    }
    // The HTTP server restarts (its sessions die with it): each replica re-initialises
    // its upstream session; the client's session goes on.
    drop(upstream);
    upstream = http_everything(port);
    let mut answered = 0;
    for n in 7..=16 {
        let v: Value = mcp(&lb.url, Some(&sid), call(n))
            .await
            .json()
            .await
            .unwrap();
        if v["result"]["content"][0]["text"] == format!("Echo: call {n}") {
            answered += 1;
        }
    }
    assert_eq!(
        answered, 10,
        "after the upstream restart {answered} of 10 calls answered"
    );
    drop(upstream);
}
