//! Routing rules: parsing (errors at start-up, with where), what `when` matches, and how a
//! `prefer` reorders a group without ever emptying it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;

use gatehouse_router::rules::Action;
use gatehouse_router::{MemberSpec, RequestCtx, RequestFacts, Router, RouterSettings, Rules};
use serde_json::{Value, json};

#[derive(Default)]
struct Facts {
    model: String,
    tokens: u64,
    headers: HashMap<String, String>,
    key_metadata: serde_json::Map<String, Value>,
    tags: Vec<String>,
}

impl RequestFacts for Facts {
    fn model(&self) -> &str {
        &self.model
    }
    fn tokens(&self) -> u64 {
        self.tokens
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
        self.headers.get(name).map(String::as_str)
    }
    fn metadata(&self, _: &str) -> Option<&Value> {
        None
    }
    fn key_alias(&self) -> Option<&str> {
        Some("ci-bot")
    }
    fn key_user_id(&self) -> Option<&str> {
        None
    }
    fn key_team_id(&self) -> Option<&str> {
        Some("research")
    }
    fn key_is_admin(&self) -> bool {
        false
    }
    fn key_metadata(&self, name: &str) -> Option<&Value> {
        self.key_metadata.get(name)
    }
}

fn rules(value: Value) -> Rules {
    Rules::parse(Some(&value)).unwrap()
}

fn first_model<'r>(r: &'r Rules, f: &Facts) -> Option<&'r str> {
    r.iter().find_map(|rule| match &rule.action {
        Action::Model(m) if rule.matches(f) => Some(m.as_str()),
        _ => None,
    })
}

#[test]
fn when_reads_headers_tokens_and_the_keys_metadata() {
    let r = rules(json!([
        {"name": "long-research", "when": "request.headers[\"X-Team\"] == 'research' && request.tokens > 1000", "model": "big"},
        {"when": "key.metadata.tier == \"free\" || key.alias.startsWith(\"trial-\")", "model": "small"},
        {"when": "'beta' in request.tags && !(key.team_id == 'ops')", "model": "beta"},
    ]));
    let mut f = Facts {
        model: "gpt".into(),
        tokens: 5000,
        ..Facts::default()
    };
    assert_eq!(first_model(&r, &f), None);
    f.headers.insert("x-team".into(), "research".into());
    assert_eq!(first_model(&r, &f), Some("big"));
    f.tokens = 10;
    assert_eq!(first_model(&r, &f), None);
    f.key_metadata.insert("tier".into(), json!("free"));
    assert_eq!(first_model(&r, &f), Some("small"));
    f.key_metadata.clear();
    f.tags = vec!["beta".into()];
    assert_eq!(first_model(&r, &f), Some("beta"));
}

#[test]
fn mismatched_types_and_missing_values_are_false_not_errors() {
    let r = rules(json!([
        {"when": "request.headers.missing > 3", "model": "a"},
        {"when": "key.metadata.tier == 1", "model": "b"},
        {"when": "request.headers.missing == null", "model": "c"},
    ]));
    let mut f = Facts::default();
    f.key_metadata.insert("tier".into(), json!("1"));
    assert_eq!(first_model(&r, &f), Some("c"));
}

#[test]
fn bad_rules_fail_at_start_up_with_their_place() {
    let cases = [
        (
            json!([{"when": "request.tokenz > 1", "model": "a"}]),
            "routing_rules[0].when: unknown variable 'request.tokenz'",
        ),
        (
            json!([{"when": "true"}]),
            "routing_rules[0]: needs exactly one of `model` or `prefer`",
        ),
        (
            json!([{"when": "true", "model": "a"}, {"prefer": "request.tokens > 1"}]),
            "routing_rules[1].prefer: unknown variable 'request.tokens'",
        ),
        (
            json!([{"when": "(a", "model": "a"}]),
            "routing_rules[0].when",
        ),
        (
            json!([{"when": "'open", "model": "a"}]),
            "unterminated string",
        ),
        (
            json!([{"when": "x ~ y", "model": "a"}]),
            "unexpected character '~'",
        ),
        (
            json!([{"when": "true", "model": "a", "then": 1}]),
            "unknown field `then`",
        ),
        (json!({"when": "true"}), "must be a list"),
    ];
    for (value, expected) in cases {
        let err = Rules::parse(Some(&value)).unwrap_err().to_string();
        assert!(err.contains(expected), "{err} should contain {expected}");
    }
    let deep = format!("{}true{}", "(".repeat(200), ")".repeat(200));
    let err = Rules::parse(Some(&json!([{"when": deep, "model": "a"}]))).unwrap_err();
    assert!(err.to_string().contains("nested deeper"), "{err}");
    let long = "true && ".repeat(1000) + "true";
    assert!(Rules::parse(Some(&json!([{"when": long, "model": "a"}]))).is_err());
}

fn spec(id: &str, tags: &[&str]) -> MemberSpec<String> {
    MemberSpec {
        id: id.into(),
        deployment: Arc::new(id.to_string()),
        weight: None,
        rpm: None,
        tpm: None,
        order: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        cost_per_token: None,
        max_input_tokens: None,
        max_retries: 0,
    }
}

#[test]
fn prefer_tries_matching_deployments_first_and_the_others_after() {
    let settings = RouterSettings {
        rules: Arc::new(rules(json!([
            {"when": "key.metadata.tier == 'free'", "prefer": "'cheap' in deployment.tags"},
        ]))),
        // Failures below must not cool the preferred member down.
        allowed_fails: 1000,
        ..Default::default()
    };
    let members = ["a", "b", "c", "d"]
        .iter()
        .map(|id| {
            let tags: &[&str] = if *id == "c" { &["cheap"] } else { &[] };
            ("g".to_string(), spec(id, tags))
        })
        .collect();
    let router = Router::new(members, settings).unwrap();
    let mut f = Facts::default();
    f.key_metadata.insert("tier".into(), json!("free"));
    for _ in 0..20 {
        let ctx = RequestCtx {
            prefer: router.settings().rules.preference(&f),
            ..Default::default()
        };
        let mut plan = router.plan("g", ctx).unwrap();
        let (first, _) = plan.next_attempt().unwrap();
        assert_eq!(first.id(), "c");
        // When the preferred member fails, the others still serve.
        plan.failed(
            first,
            gatehouse_router::Failure::Vendor(gatehouse_llm::ErrorKind::Upstream),
            None,
        );
        let (next, _) = plan.next_attempt().unwrap();
        assert_ne!(next.id(), "c");
    }
    // Not a free key: no preference.
    let paid = Facts::default();
    assert!(router.settings().rules.preference(&paid).is_none());
}
