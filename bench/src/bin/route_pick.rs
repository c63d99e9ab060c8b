//! `gatehouse-route-bench`: the router's decision cost, in nanoseconds per request, for
//! every strategy over groups of 2 and 50 deployments, with and without a `routing_rules`
//! preference. One request's decision is what the pipeline does per request: a plan,
//! its first attempt, and the success report (which releases the in-flight slot).
//!
//! Single-threaded and in process: no network, so the figure is the router's own work.
//! Run with `cargo run --release -p gatehouse-bench --bin gatehouse-route-bench`.

use std::sync::Arc;
use std::time::Instant;

use gatehouse_router::rules::RequestFacts;
use gatehouse_router::{MemberSpec, RequestCtx, Router, RouterSettings, Rules, Strategy};
use serde_json::{Value, json};

const ITERATIONS: u32 = 200_000;

fn fail(message: &str) -> ! {
    eprintln!("gatehouse-route-bench: {message}");
    std::process::exit(2)
}

fn spec(i: usize) -> MemberSpec<()> {
    MemberSpec {
        id: format!("d{i}"),
        deployment: Arc::new(()),
        weight: Some(1.0 + (i % 3) as f64),
        rpm: Some(1_000_000_000),
        tpm: None,
        order: None,
        tags: if i.is_multiple_of(5) {
            vec!["cheap".into()]
        } else {
            vec![]
        },
        cost_per_token: Some(1e-6 * (1 + i % 7) as f64),
        max_input_tokens: Some(128_000),
        max_retries: 0,
    }
}

fn router(n: usize, strategy: Strategy, rules: Option<Value>) -> Router<()> {
    let settings = RouterSettings {
        strategy,
        rules: Arc::new(Rules::parse(rules.as_ref()).unwrap_or_default()),
        ..RouterSettings::default()
    };
    let members = (0..n).map(|i| ("g".to_string(), spec(i))).collect();
    match Router::new(members, settings) {
        Ok(r) => r,
        Err(e) => fail(&format!("bench router: {e}")),
    }
}

struct Facts {
    headers: Vec<(String, String)>,
    tags: Vec<String>,
}

impl RequestFacts for Facts {
    fn model(&self) -> &str {
        "g"
    }
    fn tokens(&self) -> u64 {
        1200
    }
    fn stream(&self) -> bool {
        false
    }
    fn user(&self) -> Option<&str> {
        None
    }
    fn tags(&self) -> &[String] {
        &self.tags
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn metadata(&self, _: &str) -> Option<&Value> {
        None
    }
    fn key_alias(&self) -> Option<&str> {
        Some("bench")
    }
    fn key_user_id(&self) -> Option<&str> {
        None
    }
    fn key_team_id(&self) -> Option<&str> {
        None
    }
    fn key_is_admin(&self) -> bool {
        false
    }
    fn key_metadata(&self, _: &str) -> Option<&Value> {
        None
    }
}

/// ns per decision: plan + first attempt + success.
fn decide(r: &Router<()>, facts: &Facts) -> f64 {
    let rules = &r.settings().rules;
    let once = || {
        let ctx = RequestCtx {
            input_tokens: 1200,
            prefer: rules.preference(facts),
            ..RequestCtx::default()
        };
        let Some(mut plan) = r.plan("g", ctx) else {
            fail("no group");
        };
        match plan.next_attempt() {
            Ok((attempt, _)) => drop(attempt.succeeded(r)),
            Err(e) => fail(&format!("no attempt: {e:?}")),
        }
    };
    for _ in 0..ITERATIONS / 10 {
        once();
    }
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        once();
    }
    started.elapsed().as_nanos() as f64 / f64::from(ITERATIONS)
}

/// ns per evaluation of a rule's `when`.
fn when_cost(facts: &Facts) -> f64 {
    let rules = match Rules::parse(Some(&json!([{
        "when": "request.headers[\"x-team\"] == 'research' && request.tokens > 1000 || key.alias.startsWith('ci-')",
        "model": "g"
    }]))) {
        Ok(r) => r,
        Err(e) => fail(&e.to_string()),
    };
    let mut matched = 0u32;
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        for rule in rules.iter() {
            if std::hint::black_box(rule.matches(facts)) {
                matched += 1;
            }
        }
    }
    let ns = started.elapsed().as_nanos() as f64 / f64::from(ITERATIONS);
    assert_eq!(matched, ITERATIONS, "the rule should match");
    ns
}

fn main() {
    let facts = Facts {
        headers: vec![("x-team".into(), "research".into())],
        tags: vec![],
    };
    let strategies = [
        Strategy::SimpleShuffle,
        Strategy::LeastBusy,
        Strategy::LatencyBased,
        Strategy::UsageBased,
        Strategy::CostBased,
    ];
    let prefer = json!([{"when": "request.headers[\"x-team\"] == 'research'", "prefer": "'cheap' in deployment.tags && deployment.in_flight < 10"}]);
    println!("| strategy | 2 deployments (ns/decision) | 50 deployments | 50 + `prefer` rule |");
    println!("|---|---|---|---|");
    for strategy in strategies {
        let two = decide(&router(2, strategy, None), &facts);
        let fifty = decide(&router(50, strategy, None), &facts);
        let preferred = decide(&router(50, strategy, Some(prefer.clone())), &facts);
        println!(
            "| {} | {two:.0} | {fifty:.0} | {preferred:.0} |",
            strategy.name()
        );
    }
    println!();
    println!(
        "routing rule `when` (3 comparisons, a header, a key field): {:.0} ns per evaluation",
        when_cost(&facts)
    );
}
