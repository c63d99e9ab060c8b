//! The router's decisions, driven as the server drives them: ask for the next attempt,
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may (project rule); covers helpers too
//! report how it went.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_llm::ErrorKind;
use gatehouse_router::{
    CooldownSink, Exhausted, Failure, MemberSpec, RequestCtx, Router, RouterSettings, Strategy,
};

fn spec(id: &str) -> MemberSpec<String> {
    MemberSpec {
        id: id.into(),
        deployment: Arc::new(id.to_string()),
        weight: None,
        rpm: None,
        tpm: None,
        order: None,
        tags: vec![],
        cost_per_token: None,
        max_input_tokens: None,
        max_retries: 0,
    }
}

fn router(groups: &[(&str, Vec<MemberSpec<String>>)], settings: RouterSettings) -> Router<String> {
    let members = groups
        .iter()
        .flat_map(|(g, specs)| specs.iter().map(move |s| (g.to_string(), s.clone())))
        .collect();
    Router::new(members, settings).unwrap()
}

/// Runs one request: `outcome(id)` says how each attempt went; returns the ids tried and
/// the id that served (or the exhaustion).
fn run(
    r: &Router<String>,
    model: &str,
    ctx: RequestCtx,
    mut outcome: impl FnMut(&str) -> Option<Failure>,
) -> (Vec<String>, Result<String, Exhausted>) {
    let mut plan = r.plan(model, ctx).unwrap();
    let mut tried = Vec::new();
    loop {
        match plan.next_attempt() {
            Err(e) => return (tried, Err(e)),
            Ok((attempt, _wait)) => {
                let id = attempt.id().to_string();
                tried.push(id.clone());
                match outcome(&id) {
                    None => {
                        let _served = attempt.succeeded(r);
                        return (tried, Ok(id));
                    }
                    Some(f) => plan.failed(attempt, f, None),
                }
            }
        }
    }
}

const DOWN_F: Failure = Failure::Vendor(ErrorKind::Upstream);
const DOWN: Option<Failure> = Some(DOWN_F);

#[test]
fn a_failing_member_falls_over_within_the_group() {
    let r = router(
        &[("g", vec![spec("a"), spec("b")])],
        RouterSettings::default(),
    );
    for _ in 0..20 {
        let (tried, served) = run(&r, "g", RequestCtx::default(), |id| {
            (id == "a").then_some(DOWN_F)
        });
        assert_eq!(served, Ok("b".into()));
        assert!(tried.len() <= 2);
    }
}

#[test]
fn cooldown_takes_a_member_out_after_allowed_fails_and_brings_it_back() {
    let settings = RouterSettings {
        allowed_fails: 1,
        cooldown: Duration::from_millis(300),
        ..Default::default()
    };
    let r = router(&[("g", vec![spec("a"), spec("b")])], settings);
    // Fail `a` twice (more than allowed_fails = 1).
    let mut failures = 0;
    while failures < 2 {
        let (tried, _) = run(&r, "g", RequestCtx::default(), |id| {
            (id == "a").then_some(DOWN_F)
        });
        failures += tried.iter().filter(|t| *t == "a").count();
    }
    assert!(
        r.member("a")
            .unwrap()
            .stats()
            .is_cooling(gatehouse_router::now_ms())
    );
    for _ in 0..20 {
        let (tried, served) = run(&r, "g", RequestCtx::default(), |_| None);
        assert_eq!((tried, served), (vec!["b".to_string()], Ok("b".into())));
    }
    std::thread::sleep(Duration::from_millis(350));
    let seen_a = (0..50).any(|_| run(&r, "g", RequestCtx::default(), |_| None).1 == Ok("a".into()));
    assert!(seen_a, "a came back after the cooldown");
}

#[test]
fn a_single_member_group_never_cools_down() {
    let settings = RouterSettings {
        allowed_fails: 0,
        ..Default::default()
    };
    let r = router(&[("g", vec![spec("a")])], settings);
    for _ in 0..3 {
        let _ = run(&r, "g", RequestCtx::default(), |_| DOWN);
    }
    assert!(
        !r.member("a")
            .unwrap()
            .stats()
            .is_cooling(gatehouse_router::now_ms())
    );
}

struct Sink(Mutex<Vec<String>>);
impl CooldownSink for Sink {
    fn cooled(&self, id: &str, _until: u64) {
        self.0.lock().unwrap().push(id.into());
    }
}

#[test]
fn cooldowns_are_published_and_applied_from_elsewhere() {
    let sink = Arc::new(Sink(Mutex::new(vec![])));
    let settings = RouterSettings {
        allowed_fails: 0,
        ..Default::default()
    };
    let r = router(&[("g", vec![spec("a"), spec("b")])], settings.clone()).with_sink(sink.clone());
    while sink.0.lock().unwrap().is_empty() {
        let _ = run(&r, "g", RequestCtx::default(), |id| {
            (id == "a").then_some(DOWN_F)
        });
    }
    assert_eq!(*sink.0.lock().unwrap(), vec!["a".to_string()]);
    // Another replica learns of it.
    let other = router(&[("g", vec![spec("a"), spec("b")])], settings);
    other.apply_cooldown("a", gatehouse_router::now_ms() + 10_000);
    for _ in 0..10 {
        assert_eq!(
            run(&other, "g", RequestCtx::default(), |_| None).1,
            Ok("b".into())
        );
    }
}

#[test]
fn all_members_cooling_is_unavailable_with_the_wait() {
    let settings = RouterSettings {
        allowed_fails: 0,
        ..Default::default()
    };
    let r = router(&[("g", vec![spec("a"), spec("b")])], settings);
    r.apply_cooldown("a", gatehouse_router::now_ms() + 5_000);
    r.apply_cooldown("b", gatehouse_router::now_ms() + 9_000);
    let (tried, served) = run(&r, "g", RequestCtx::default(), |_| None);
    assert!(tried.is_empty());
    match served {
        Err(Exhausted::Unavailable {
            group,
            retry_in: Some(wait),
            at_limit: false,
        }) => {
            assert_eq!(group, "g");
            assert!(wait <= Duration::from_secs(5) && wait > Duration::from_secs(4));
        }
        other => panic!("{other:?}"),
    }
}

fn with_fallbacks(kind: &str, from: &str, to: &[&str]) -> RouterSettings {
    let map: HashMap<String, Vec<String>> =
        [(from.to_string(), to.iter().map(|s| s.to_string()).collect())].into();
    let mut s = RouterSettings::default();
    match kind {
        "generic" => s.fallbacks = map,
        "context" => s.context_window_fallbacks = map,
        "content" => s.content_policy_fallbacks = map,
        _ => unreachable!(),
    }
    s
}

#[test]
fn generic_fallbacks_after_the_group_failed() {
    let r = router(
        &[
            ("g", vec![spec("a")]),
            ("h", vec![spec("b")]),
            ("big", vec![spec("c")]),
        ],
        with_fallbacks("generic", "g", &["h"]),
    );
    let (tried, served) = run(&r, "g", RequestCtx::default(), |id| {
        (id == "a").then_some(DOWN_F)
    });
    assert_eq!(tried, vec!["a", "b"]);
    assert_eq!(served, Ok("b".into()));
    // A plain bad request is the client's: no fallback.
    let bad_f = Failure::Vendor(ErrorKind::InvalidRequest);
    let bad = Some(bad_f);
    let (tried, served) = run(&r, "g", RequestCtx::default(), |_| bad);
    assert_eq!(tried, vec!["a"]);
    assert_eq!(served, Err(Exhausted::Failed(bad_f)));
    // The request's own fallbacks replace the config's.
    let ctx = RequestCtx {
        fallbacks: Some(vec!["big".into()]),
        ..Default::default()
    };
    let (tried, _) = run(&r, "g", ctx, |id| (id != "c").then_some(DOWN_F));
    assert_eq!(tried, vec!["a", "c"]);
}

#[test]
fn context_window_and_content_policy_fallbacks() {
    let groups = [
        ("g", vec![spec("a"), spec("a2")]),
        ("h", vec![spec("b")]),
        ("big", vec![spec("c")]),
    ];
    let mut settings = with_fallbacks("generic", "g", &["h"]);
    settings.context_window_fallbacks = [("g".to_string(), vec!["big".to_string()])].into();
    let r = router(&groups, settings);
    let long = Failure::Vendor(ErrorKind::ContextLength);
    let (tried, served) = run(&r, "g", RequestCtx::default(), |id| {
        id.starts_with('a').then_some(long)
    });
    // The same group's other member is not asked: it has the same window.
    assert_eq!(tried.len(), 2);
    assert_eq!(tried[1], "c");
    assert_eq!(served, Ok("c".into()));
    // Without content_policy_fallbacks, a refusal goes to the generic ones.
    let refused = Failure::Vendor(ErrorKind::ContentPolicy);
    let (tried, _) = run(&r, "g", RequestCtx::default(), |id| {
        id.starts_with('a').then_some(refused)
    });
    assert_eq!(tried.last().map(String::as_str), Some("b"));
}

#[test]
fn pre_call_checks_skip_members_too_small_for_the_prompt() {
    let mut small = spec("small");
    small.max_input_tokens = Some(100);
    let mut settings = with_fallbacks("context", "g", &["big"]);
    settings.pre_call_checks = true;
    let r = router(&[("g", vec![small]), ("big", vec![spec("c")])], settings);
    let ctx = RequestCtx {
        input_tokens: 5000,
        ..Default::default()
    };
    let (tried, served) = run(&r, "g", ctx, |_| None);
    assert_eq!(tried, vec!["c"]);
    assert_eq!(served, Ok("c".into()));
    let (tried, _) = run(
        &r,
        "g",
        RequestCtx {
            input_tokens: 10,
            ..Default::default()
        },
        |_| None,
    );
    assert_eq!(tried, vec!["small"]);
}

#[test]
fn retries_same_member_then_passes_with_num_retries() {
    let mut a = spec("a");
    a.max_retries = 2;
    let settings = RouterSettings {
        num_retries: 1,
        retry_backoff: Duration::from_millis(1),
        allowed_fails: 100,
        ..Default::default()
    };
    let r = router(&[("g", vec![a])], settings);
    let (tried, served) = run(&r, "g", RequestCtx::default(), |_| DOWN);
    // 1 + 2 member retries, then one more pass of 1 + 2.
    assert_eq!(tried.len(), 6);
    assert!(matches!(served, Err(Exhausted::Failed(_))));
    // Auth failures are not retried on the same member.
    let auth = Some(Failure::Vendor(ErrorKind::Auth));
    let (tried, _) = run(&r, "g", RequestCtx::default(), |_| auth);
    assert_eq!(tried.len(), 1);
}

#[test]
fn order_tiers_come_first() {
    let mut a = spec("a");
    a.order = Some(2);
    let mut b = spec("b");
    b.order = Some(1);
    let settings = RouterSettings {
        allowed_fails: 1000,
        ..Default::default()
    };
    let r = router(&[("g", vec![a, b, spec("c")])], settings);
    for _ in 0..20 {
        let (tried, _) = run(&r, "g", RequestCtx::default(), |_| DOWN);
        assert_eq!(tried, vec!["b", "a", "c"]);
    }
}

#[test]
fn simple_shuffle_follows_weights() {
    let mut a = spec("a");
    a.weight = Some(9.0);
    let mut b = spec("b");
    b.weight = Some(1.0);
    let r = router(&[("g", vec![a, b])], RouterSettings::default());
    let a_count = (0..2000)
        .filter(|_| run(&r, "g", RequestCtx::default(), |_| None).1 == Ok("a".into()))
        .count();
    assert!(
        (1650..1950).contains(&a_count),
        "a served {a_count} of 2000"
    );
}

#[test]
fn deployment_rpm_is_respected() {
    let mut a = spec("a");
    a.rpm = Some(3);
    let r = router(&[("g", vec![a, spec("b")])], RouterSettings::default());
    let a_count = (0..40)
        .filter(|_| run(&r, "g", RequestCtx::default(), |_| None).1 == Ok("a".into()))
        .count();
    assert_eq!(a_count, 3);
    // Both at their limit: unavailable until the minute turns.
    let mut a = spec("a");
    a.rpm = Some(1);
    let r = router(&[("g", vec![a])], RouterSettings::default());
    assert!(run(&r, "g", RequestCtx::default(), |_| None).1.is_ok());
    let now = gatehouse_router::now_ms();
    match run(&r, "g", RequestCtx::default(), |_| None).1 {
        Err(Exhausted::Unavailable {
            retry_in: Some(wait),
            at_limit: true,
            ..
        }) => {
            let to_turn = 60_000 - now % 60_000;
            assert!(
                wait.as_millis() as u64 <= to_turn,
                "{wait:?} vs {to_turn} ms"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn least_busy_picks_the_idle_member() {
    let settings = RouterSettings {
        strategy: Strategy::LeastBusy,
        ..Default::default()
    };
    let r = router(&[("g", vec![spec("a"), spec("b")])], settings);
    // Hold two requests on whichever member served them.
    let mut held = Vec::new();
    let mut plan = r.plan("g", RequestCtx::default()).unwrap();
    let (first, _) = plan.next_attempt().unwrap();
    let busy = first.id().to_string();
    held.push(first.succeeded(&r));
    for _ in 0..10 {
        let mut plan = r.plan("g", RequestCtx::default()).unwrap();
        let (attempt, _) = plan.next_attempt().unwrap();
        assert_ne!(attempt.id(), busy);
    }
    drop(held);
}

#[test]
fn latency_based_prefers_the_fast_member() {
    let settings = RouterSettings {
        strategy: Strategy::LatencyBased,
        ..Default::default()
    };
    let r = router(&[("g", vec![spec("slow"), spec("fast")])], settings);
    for (id, ms) in [("slow", 40), ("fast", 2)] {
        // One measured success each.
        loop {
            let mut plan = r.plan("g", RequestCtx::default()).unwrap();
            let (attempt, _) = plan.next_attempt().unwrap();
            if attempt.id() == id {
                std::thread::sleep(Duration::from_millis(ms));
                attempt.succeeded(&r);
                break;
            }
            plan.failed(attempt, Failure::Vendor(ErrorKind::InvalidRequest), None);
        }
    }
    for _ in 0..10 {
        assert_eq!(
            run(&r, "g", RequestCtx::default(), |_| None).1,
            Ok("fast".into())
        );
    }
}

#[test]
fn cost_based_prefers_the_cheap_member() {
    let mut dear = spec("dear");
    dear.cost_per_token = Some(0.00003);
    let mut cheap = spec("cheap");
    cheap.cost_per_token = Some(0.000001);
    let settings = RouterSettings {
        strategy: Strategy::CostBased,
        allowed_fails: 1000,
        ..Default::default()
    };
    let r = router(&[("g", vec![dear, cheap, spec("unknown")])], settings);
    for _ in 0..10 {
        let (tried, _) = run(&r, "g", RequestCtx::default(), |_| DOWN);
        assert_eq!(tried, vec!["cheap", "dear", "unknown"]);
    }
}

#[test]
fn usage_based_prefers_the_least_used_member() {
    let settings = RouterSettings {
        strategy: Strategy::UsageBased,
        ..Default::default()
    };
    let r = router(&[("g", vec![spec("a"), spec("b")])], settings);
    let mut plan = r.plan("g", RequestCtx::default()).unwrap();
    let (attempt, _) = plan.next_attempt().unwrap();
    let used = attempt.id().to_string();
    attempt.succeeded(&r).record_tokens(10_000);
    for _ in 0..10 {
        assert_ne!(
            run(&r, "g", RequestCtx::default(), |_| None).1,
            Ok(used.clone())
        );
    }
}

#[test]
fn tags_route_to_matching_members_or_default() {
    let mut paid = spec("paid");
    paid.tags = vec!["paid".into()];
    let mut free = spec("free");
    free.tags = vec!["default".into()];
    let settings = RouterSettings {
        tag_filtering: true,
        ..Default::default()
    };
    let r = router(&[("g", vec![paid, free])], settings);
    let tagged = |t: &str| RequestCtx {
        tags: vec![t.into()],
        ..Default::default()
    };
    for _ in 0..10 {
        assert_eq!(run(&r, "g", tagged("paid"), |_| None).1, Ok("paid".into()));
        assert_eq!(run(&r, "g", tagged("other"), |_| None).1, Ok("free".into()));
        assert_eq!(
            run(&r, "g", RequestCtx::default(), |_| None).1,
            Ok("free".into())
        );
    }
}

#[test]
fn wildcards_and_aliases_resolve() {
    let mut settings = RouterSettings::default();
    settings
        .model_group_alias
        .insert("gpt4".into(), "exact".into());
    let r = router(
        &[
            ("exact", vec![spec("e")]),
            ("openai/*", vec![spec("w")]),
            ("*", vec![spec("any")]),
        ],
        settings,
    );
    let resolved = r.resolve("openai/gpt-4o").unwrap();
    assert_eq!(resolved.group.name, "openai/*");
    assert_eq!(resolved.wildcard.as_deref(), Some("gpt-4o"));
    assert_eq!(r.resolve("mistral/x").unwrap().group.name, "*");
    assert_eq!(r.resolve("gpt4").unwrap().group.name, "exact");
    assert_eq!(r.resolve("exact").unwrap().wildcard, None);
    let mut plan = r.plan("openai/gpt-4o", RequestCtx::default()).unwrap();
    let (attempt, _) = plan.next_attempt().unwrap();
    assert_eq!(attempt.wildcard(), Some("gpt-4o"));
}

#[test]
fn unknown_fallback_groups_are_refused_at_start_up() {
    let members = vec![("g".to_string(), spec("a"))];
    let err = Router::new(members, with_fallbacks("generic", "g", &["nope"])).err();
    assert!(
        err.unwrap()
            .to_string()
            .contains("\"nope\" is not a model_name")
    );
}

/// Two routers stand for two replicas; what one does reaches the other only through
/// the reports the server exchanges.
fn exchange(from: &Router<String>, to: &Router<String>) {
    let minute = gatehouse_router::now_ms() / 60_000;
    for (id, report) in from.reports() {
        let mut sum = gatehouse_router::Report::default();
        sum.merge(&report, minute);
        to.apply_reports(id, &sum);
    }
}

#[test]
fn other_replicas_usage_counts_against_a_deployment_rpm() {
    let mut a = spec("a");
    a.rpm = Some(3);
    let here = router(
        &[("g", vec![a.clone(), spec("b")])],
        RouterSettings::default(),
    );
    let there = router(&[("g", vec![a, spec("b")])], RouterSettings::default());
    let served_by_a = |r: &Router<String>, n| {
        (0..n)
            .filter(|_| run(r, "g", RequestCtx::default(), |_| None).1 == Ok("a".into()))
            .count()
    };
    assert_eq!(served_by_a(&here, 40), 3);
    exchange(&here, &there);
    assert_eq!(
        served_by_a(&there, 40),
        0,
        "a's rpm was used up on the other replica"
    );
}

#[test]
fn least_busy_counts_requests_in_flight_on_other_replicas() {
    let settings = RouterSettings {
        strategy: Strategy::LeastBusy,
        ..Default::default()
    };
    let here = router(&[("g", vec![spec("a"), spec("b")])], settings.clone());
    let there = router(&[("g", vec![spec("a"), spec("b")])], settings);
    let mut plan = here.plan("g", RequestCtx::default()).unwrap();
    let (first, _) = plan.next_attempt().unwrap();
    let busy = first.id().to_string();
    let held = first.succeeded(&here);
    exchange(&here, &there);
    for _ in 0..10 {
        let mut plan = there.plan("g", RequestCtx::default()).unwrap();
        let (attempt, _) = plan.next_attempt().unwrap();
        assert_ne!(attempt.id(), busy);
    }
    drop(held);
    exchange(&here, &there);
    assert_eq!(
        there.member(&busy).unwrap().stats().in_flight_everywhere(),
        0
    );
}

#[test]
fn latency_measured_elsewhere_steers_a_replica_with_no_samples() {
    let settings = RouterSettings {
        strategy: Strategy::LatencyBased,
        ..Default::default()
    };
    let here = router(&[("g", vec![spec("a"), spec("b")])], settings.clone());
    let there = router(&[("g", vec![spec("a"), spec("b")])], settings);
    for (id, ms) in [("a", 60), ("b", 2)] {
        loop {
            let mut plan = here.plan("g", RequestCtx::default()).unwrap();
            let (attempt, _) = plan.next_attempt().unwrap();
            if attempt.id() == id {
                std::thread::sleep(Duration::from_millis(ms));
                attempt.succeeded(&here);
                break;
            }
            plan.failed(attempt, Failure::Vendor(ErrorKind::InvalidRequest), None);
        }
    }
    exchange(&here, &there);
    for _ in 0..10 {
        let mut plan = there.plan("g", RequestCtx::default()).unwrap();
        let (attempt, _) = plan.next_attempt().unwrap();
        assert_eq!(attempt.id(), "b");
    }
}

#[test]
fn failed_health_checks_cool_a_member_down_like_failed_attempts() {
    let settings = RouterSettings {
        allowed_fails: 1,
        cooldown: Duration::from_secs(30),
        ..Default::default()
    };
    let r = router(&[("g", vec![spec("a"), spec("b")])], settings);
    r.checked("a", Err(DOWN_F));
    assert!(
        !r.member("a")
            .unwrap()
            .stats()
            .is_cooling(gatehouse_router::now_ms())
    );
    r.checked("a", Err(DOWN_F));
    assert!(
        r.member("a")
            .unwrap()
            .stats()
            .is_cooling(gatehouse_router::now_ms())
    );
    for _ in 0..10 {
        assert_eq!(
            run(&r, "g", RequestCtx::default(), |_| None).1,
            Ok("b".into())
        );
    }
    r.checked("b", Err(DOWN_F));
    assert_eq!(r.member("b").unwrap().stats().consecutive_failures(), 1);
    r.checked("b", Ok(()));
    assert_eq!(r.member("b").unwrap().stats().consecutive_failures(), 0);
}
