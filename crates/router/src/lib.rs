//! The router: which deployment answers a request, and what happens when it fails.
//!
//! It reads LiteLLM's `router_settings` (strategy, retries, retry policy, allowed fails,
//! cooldowns, the three fallback lists, aliases, tags) and keeps every deployment's live
//! state (in-flight count, latency, usage in the current minute, failures, cooldown).
//!
//! It is pure and synchronous: no I/O, no clock it does not get told about beyond
//! `SystemTime`, no HTTP types. A request asks [`Router::plan`] for a [`Plan`], then loops:
//! [`Plan::next_attempt`] names the next [`Attempt`] (and how long to wait before it), the caller
//! sends it and reports back with [`Plan::failed`] or [`Attempt::succeeded`]. The caller's
//! loop is written once (the server's `pipeline::attempts`) and shared by every inbound API.
//!
//! State shared across replicas: the router publishes each cooldown it starts through a
//! [`CooldownSink`] and takes in the others' with [`Router::apply_cooldown`], so a replica's
//! hot path never waits on the network. In-flight counts, latencies and usage windows
//! travel the same way, as periodic [`Report`]s ([`Router::reports`],
//! [`Router::apply_reports`]).

mod failure;
mod member;
mod plan;
pub mod rules;
mod settings;
mod strategy;
mod wildcard;

use std::collections::HashMap;
use std::sync::Arc;

pub use failure::Failure;
pub use member::{InFlight, Member, MemberSpec, MemberStats, Report};
pub use plan::{Attempt, Exhausted, Plan, RequestCtx, Served};
pub use rules::{RequestFacts, Rules};
pub use settings::{RetryPolicy, RouterSettings, SettingsError, Strategy};

/// Told about every cooldown this replica starts, so other replicas can skip the
/// deployment too (the server implements it with Redis).
pub trait CooldownSink: Send + Sync {
    fn cooled(&self, deployment_id: &str, until_ms: u64);
}

/// One public model name and its deployments.
pub struct Group<D> {
    pub name: String,
    pub members: Vec<Arc<Member<D>>>,
}

/// Where a requested model name leads.
pub struct Resolved<'r, D> {
    pub group: &'r Group<D>,
    /// For a wildcard route (`openai/*`): the part of the requested name the `*` matched,
    /// which replaces the `*` of the deployment's upstream model.
    pub wildcard: Option<String>,
}

pub struct Router<D> {
    groups: HashMap<String, Group<D>>,
    /// Exact group names in config order, for listings.
    names: Vec<String>,
    wildcards: Vec<wildcard::Pattern>,
    by_id: HashMap<String, Arc<Member<D>>>,
    settings: RouterSettings,
    sink: Option<Arc<dyn CooldownSink>>,
}

impl<D> Router<D> {
    /// Builds the router from deployments in `model_list` order (`group` is the
    /// deployment's `model_name`).
    pub fn new(
        members: Vec<(String, MemberSpec<D>)>,
        settings: RouterSettings,
    ) -> Result<Self, SettingsError> {
        let mut groups: HashMap<String, Group<D>> = HashMap::new();
        let mut names = Vec::new();
        let mut wildcards = Vec::new();
        let mut by_id = HashMap::new();
        for (group, spec) in members {
            let member = Arc::new(Member::new(spec, group.clone()));
            if by_id
                .insert(member.id().to_owned(), member.clone())
                .is_some()
            {
                return Err(SettingsError::DuplicateId(member.id().to_owned()));
            }
            let entry = groups.entry(group.clone()).or_insert_with(|| {
                if group.contains('*') {
                    wildcards.push(wildcard::Pattern::new(&group));
                } else {
                    names.push(group.clone());
                }
                Group {
                    name: group.clone(),
                    members: Vec::new(),
                }
            });
            entry.members.push(member);
        }
        // Most specific pattern first: the longest literal text wins.
        wildcards.sort_by_key(|p| std::cmp::Reverse(p.literal_len()));
        settings.check(|name| groups.contains_key(name))?;
        Ok(Self {
            groups,
            names,
            wildcards,
            by_id,
            settings,
            sink: None,
        })
    }

    pub fn with_sink(mut self, sink: Arc<dyn CooldownSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    pub fn settings(&self) -> &RouterSettings {
        &self.settings
    }

    /// Exact (non-wildcard) group names, in config order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Wildcard group names (`openai/*`), most specific first.
    pub fn wildcard_names(&self) -> impl Iterator<Item = &str> {
        self.wildcards.iter().map(wildcard::Pattern::text)
    }

    pub fn group(&self, name: &str) -> Option<&Group<D>> {
        self.groups.get(name)
    }

    pub fn member(&self, id: &str) -> Option<&Arc<Member<D>>> {
        self.by_id.get(id)
    }

    /// Every deployment, grouped, exact groups first in config order.
    pub fn members(&self) -> impl Iterator<Item = &Arc<Member<D>>> {
        self.names
            .iter()
            .chain(self.wildcards.iter().map(|w| &w.group))
            .filter_map(|n| self.groups.get(n))
            .flat_map(|g| g.members.iter())
    }

    /// The group a requested name leads to: an alias (`model_group_alias`), an exact
    /// name, or the most specific wildcard route.
    pub fn resolve(&self, requested: &str) -> Option<Resolved<'_, D>> {
        let name = self
            .settings
            .model_group_alias
            .get(requested)
            .map(String::as_str)
            .unwrap_or(requested);
        if let Some(group) = self.groups.get(name) {
            return Some(Resolved {
                group,
                wildcard: None,
            });
        }
        self.wildcards.iter().find_map(|p| {
            let capture = p.capture(name)?;
            Some(Resolved {
                group: self.groups.get(&p.group)?,
                wildcard: Some(capture.to_owned()),
            })
        })
    }

    /// This replica's figures for every deployment, for the other replicas.
    pub fn reports(&self) -> impl Iterator<Item = (&str, Report)> {
        let minute = now_ms() / 60_000;
        self.by_id
            .iter()
            .map(move |(id, m)| (id.as_str(), m.stats().report(minute)))
    }

    /// Takes in the other replicas' figures for one deployment (the sum of their
    /// reports, see [`Report::merge`]); the strategies and rpm/tpm checks count them.
    pub fn apply_reports(&self, deployment_id: &str, others: &Report) {
        if let Some(member) = self.by_id.get(deployment_id) {
            member.stats().set_remote(others);
        }
    }

    /// A health check's outcome for one deployment: a failure counts toward its cooldown
    /// exactly as a failed attempt does; a success ends its run of failures.
    pub fn checked(&self, deployment_id: &str, outcome: Result<(), Failure>) {
        let Some(member) = self.by_id.get(deployment_id) else {
            return;
        };
        match outcome {
            Ok(()) => member.stats().record_probe_success(),
            Err(failure) => plan::CooldownRule::of(self, member.group()).apply(member, failure),
        }
    }

    /// Takes in a cooldown another replica started.
    /// Never longer than this replica's own `cooldown_time` from now (plus a little for
    /// clock skew): Redis is shared, and a bogus instant must not take a deployment out
    /// for good.
    pub fn apply_cooldown(&self, deployment_id: &str, until_ms: u64) {
        if let Some(member) = self.by_id.get(deployment_id) {
            let ceiling = now_ms()
                .saturating_add(self.settings.cooldown.as_millis() as u64)
                .saturating_add(5_000);
            member.stats().cool_until(until_ms.min(ceiling));
        }
    }

    /// The attempts for one request to `requested`, in order, with retries and
    /// fallbacks. `None` when no group has that name.
    pub fn plan(&self, requested: &str, ctx: RequestCtx) -> Option<Plan<'_, D>> {
        let resolved = self.resolve(requested)?;
        Some(Plan::new(self, resolved, ctx))
    }
}

/// Milliseconds since the Unix epoch: cooldowns are shared across replicas, so they are
/// wall-clock instants.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
