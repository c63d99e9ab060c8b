//! One request's way through the router: which deployment to try next, when to retry,
//! when to fall back to another group, and when to give up.
//!
//! The rules, in order (LiteLLM's, with the choices Gatehouse makes where it is vague):
//! 1. A group's usable members are ordered by `order` tier, then the strategy. Members
//!    cooling down, over their own rpm/tpm, not matching the request's tags, or (with
//!    `enable_pre_call_checks`) too small for the prompt are left out.
//! 2. A transient failure (timeout, connection, 429, 5xx, overloaded) retries the same
//!    member up to its `max_retries` (honouring `Retry-After` up to `max_retry_after`),
//!    then moves to the next member at once. A member that cannot serve at all (bad
//!    credentials, unknown model) is left for the next member without retries.
//! 3. When every member failed transiently, the group gets `num_retries` more passes
//!    (per class from `retry_policy`), each after a growing, jittered backoff.
//! 4. Then fallbacks: a context-length error goes to `context_window_fallbacks`, a
//!    content-policy refusal to `content_policy_fallbacks`; otherwise (or when those are
//!    not set) the request's own `fallbacks`, else the config's `fallbacks` for the group,
//!    else `default_fallbacks`. Fallback groups are not followed further (at most
//!    `max_fallbacks` of them). A plain bad request is the client's error: no fallback.
//! 5. Failures that blame the deployment count toward its cooldown: more than
//!    `allowed_fails` (per class: `allowed_fails_policy`) within a minute of the first take it out of
//!    rotation for `cooldown_time`. A group's only member never cools down (there would
//!    be nothing left to serve the group).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_llm::ErrorKind;
use rand::Rng;

use crate::failure::Failure;
use crate::member::{InFlight, Member};
use crate::{Group, Resolved, Router, now_ms, strategy};

/// What the request says about routing.
#[derive(Debug, Clone, Default)]
pub struct RequestCtx {
    /// `metadata.tags` / `tags` (tag routing, when `enable_tag_filtering` is on).
    pub tags: Vec<String>,
    /// Estimated prompt tokens (pre-call checks, tpm capacity).
    pub input_tokens: u64,
    /// The body's `fallbacks`: replaces the config's generic fallbacks for this request.
    pub fallbacks: Option<Vec<String>>,
    /// The body's `num_retries`.
    pub num_retries: Option<u32>,
    /// A `routing_rules` preference: deployments for which it holds are tried first.
    pub prefer: Option<crate::rules::Prefer>,
}

/// One try of one deployment. Report its outcome: [`Plan::failed`] or
/// [`Attempt::succeeded`]. Dropping it unreported counts as neither.
pub struct Attempt<D> {
    member: Arc<Member<D>>,
    group: String,
    wildcard: Option<String>,
    fallback: u32,
    started: Instant,
    minute: u64,
    in_flight: InFlight<D>,
}

impl<D> Attempt<D> {
    pub fn deployment(&self) -> &Arc<D> {
        self.member.deployment()
    }

    pub fn member(&self) -> &Arc<Member<D>> {
        &self.member
    }

    pub fn id(&self) -> &str {
        self.member.id()
    }

    /// The group this attempt serves (the requested one, or a fallback).
    pub fn group(&self) -> &str {
        &self.group
    }

    /// What a wildcard route's `*` matched, to substitute into the upstream model.
    pub fn wildcard(&self) -> Option<&str> {
        self.wildcard.as_deref()
    }

    /// 0 for the requested group, n for its n-th fallback.
    pub fn fallback(&self) -> u32 {
        self.fallback
    }

    /// The deployment answered (for a stream: its first event arrived). Keep the
    /// returned [`Served`] as long as the answer is being delivered.
    pub fn succeeded(self, router: &Router<D>) -> Served<D> {
        self.member.stats().record_success(self.started.elapsed());
        Served {
            member: self.member,
            minute: self.minute,
            _in_flight: self.in_flight,
            cooldown: CooldownRule::of(router, &self.group),
        }
    }
}

/// A deployment's answer being delivered: holds its in-flight slot, and takes the
/// tokens used once they are known (usage-based routing, tpm).
pub struct Served<D> {
    member: Arc<Member<D>>,
    minute: u64,
    _in_flight: InFlight<D>,
    cooldown: CooldownRule,
}

/// What a failure reported after the answer started needs to decide a cooldown.
pub(crate) struct CooldownRule {
    allowed_fails: u32,
    by_class: crate::settings::RetryPolicy,
    cooldown: Duration,
    group_size: usize,
    sink: Option<Arc<dyn crate::CooldownSink>>,
}

impl CooldownRule {
    pub(crate) fn of<D>(router: &Router<D>, group: &str) -> Self {
        let s = &router.settings;
        Self {
            allowed_fails: s.allowed_fails,
            by_class: s.allowed_fails_policy.clone(),
            cooldown: s.cooldown,
            group_size: router.group(group).map_or(1, |g| g.members.len()),
            sink: router.sink.clone(),
        }
    }

    /// Counts `failure` against `member`; cools it down past the allowed fails (a
    /// group's only member never cools down).
    pub(crate) fn apply<D>(&self, member: &Member<D>, failure: Failure) {
        if !failure.blames_deployment() {
            return;
        }
        let (all, of_class) = member.stats().record_failure(now_ms(), failure);
        let over = match self.by_class.get(failure.class()) {
            Some(limit) => of_class > limit,
            None => all > self.allowed_fails,
        };
        if over && self.group_size > 1 {
            let until = now_ms() + self.cooldown.as_millis() as u64;
            member.stats().cool_until(until);
            if let Some(sink) = &self.sink {
                sink.cooled(member.id(), until);
            }
        }
    }
}

impl<D> Served<D> {
    /// The answer failed after it started (a stream cut mid-way): counts toward the
    /// deployment's cooldown like a failed attempt.
    pub fn failed(&self, failure: Failure) {
        self.cooldown.apply(&self.member, failure);
    }

    pub fn member(&self) -> &Arc<Member<D>> {
        &self.member
    }

    pub fn record_tokens(&self, tokens: u64) {
        self.member.stats().record_tokens(self.minute, tokens);
    }
}

/// Why a plan has nothing (more) to try.
#[derive(Debug, Clone, PartialEq)]
pub enum Exhausted {
    /// The last attempt's failure, which nothing could recover from.
    Failed(Failure),
    /// No member could be tried: each cooling down or over its own rpm/tpm; `retry_in`
    /// until the first is back (a cooldown's end, or the minute's turn for one at its
    /// limit).
    Unavailable {
        group: String,
        retry_in: Option<Duration>,
        /// Some member was left out for its rpm/tpm (not only cooldowns).
        at_limit: bool,
    },
    /// No member carries any of the request's tags.
    NoTagMatch { group: String, tags: Vec<String> },
    /// With pre-call checks: no member's context window fits the prompt.
    ContextWindow { group: String, tokens: u64 },
}

struct Stage<'r, D> {
    group: &'r Group<D>,
    wildcard: Option<String>,
    /// Borrowed from the group: ordering a plan moves no reference counts.
    order: Vec<&'r Arc<Member<D>>>,
    pos: usize,
    pass: u32,
    depth: u32,
    /// Member to try again, with its retries used so far and the wait before.
    again: Option<(Arc<Member<D>>, Duration)>,
    retries_used: u32,
}

pub struct Plan<'r, D> {
    router: &'r Router<D>,
    ctx: RequestCtx,
    primary: &'r Group<D>,
    stage: Option<Stage<'r, D>>,
    /// Fallback groups still to try, set when the requested group gives up.
    queue: Option<VecDeque<String>>,
    fallbacks_used: u32,
    last_failure: Option<Failure>,
    /// Why the current stage had no members, when it had none.
    empty: Option<Exhausted>,
    stopped: bool,
    attempts: u32,
}

/// Attempts one request may make in all, whatever the settings say.
const MAX_ATTEMPTS: u32 = 64;

impl<'r, D> Plan<'r, D> {
    pub(crate) fn new(router: &'r Router<D>, resolved: Resolved<'r, D>, ctx: RequestCtx) -> Self {
        let mut plan = Self {
            router,
            ctx,
            primary: resolved.group,
            stage: None,
            queue: None,
            fallbacks_used: 0,
            last_failure: None,
            empty: None,
            stopped: false,
            attempts: 0,
        };
        plan.enter(resolved.group, resolved.wildcard, 0);
        plan
    }

    /// Fallback groups tried so far (`x-litellm-attempted-fallbacks`).
    pub fn fallbacks_used(&self) -> u32 {
        self.fallbacks_used
    }

    /// Attempts handed out so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The next attempt and how long to wait before making it, or why there is none.
    pub fn next_attempt(&mut self) -> Result<(Attempt<D>, Duration), Exhausted> {
        loop {
            if self.stopped || self.attempts >= MAX_ATTEMPTS {
                return Err(self.exhausted());
            }
            let minute = now_ms() / 60_000;
            if let Some(stage) = self.stage.as_mut() {
                if let Some((member, wait)) = stage.again.take() {
                    return Ok(self.hand_out(member, wait, minute));
                }
                if stage.pos < stage.order.len() {
                    let member = Arc::clone(stage.order[stage.pos]);
                    stage.pos += 1;
                    stage.retries_used = 0;
                    return Ok(self.hand_out(member, Duration::ZERO, minute));
                }
                // Every member of this group was tried.
                let retries = self
                    .ctx
                    .num_retries
                    .unwrap_or_else(|| match self.last_failure {
                        Some(f) => self.router.settings.retries_for(f.class()),
                        None => 0,
                    });
                let transient = self.last_failure.is_some_and(Failure::is_transient);
                if transient && stage.pass < retries {
                    stage.pass += 1;
                    let (group, wildcard, depth, pass) =
                        (stage.group, stage.wildcard.clone(), stage.depth, stage.pass);
                    self.enter(group, wildcard, depth);
                    if let Some(stage) = self.stage.as_mut() {
                        stage.pass = pass;
                        if let Some(first) = stage.order.first().map(|m| Arc::clone(m)) {
                            stage.pos = 1;
                            let wait = backoff(self.router.settings.retry_backoff, pass);
                            return Ok(self.hand_out(first, wait, minute));
                        }
                    }
                }
            }
            // This group is done: the next fallback, if any.
            let Some(group) = self.next_fallback() else {
                return Err(self.exhausted());
            };
            self.fallbacks_used += 1;
            let depth = self.fallbacks_used;
            self.enter(group, None, depth);
        }
    }

    /// Reports a failed attempt (before anything reached the client).
    pub fn failed(&mut self, attempt: Attempt<D>, failure: Failure, retry_after: Option<Duration>) {
        let settings = &self.router.settings;
        self.last_failure = Some(failure);
        let member = attempt.member.clone();
        CooldownRule::of(self.router, &attempt.group).apply(&member, failure);
        drop(attempt);
        match failure {
            Failure::Vendor(ErrorKind::ContextLength) => {
                self.jump_to(&settings.context_window_fallbacks);
                return;
            }
            Failure::Vendor(ErrorKind::ContentPolicy) => {
                self.jump_to(&settings.content_policy_fallbacks);
                return;
            }
            f if !f.allows_generic_fallback() => {
                self.stopped = true;
                return;
            }
            _ => {}
        }
        let Some(stage) = self.stage.as_mut() else {
            return;
        };
        if failure.is_transient() && stage.retries_used < member.spec().max_retries {
            let wait = match retry_after {
                Some(after) if after > settings.max_retry_after => None,
                Some(after) => Some(after),
                None => Some(backoff(settings.retry_backoff, stage.retries_used + 1)),
            };
            if let Some(wait) = wait {
                stage.retries_used += 1;
                stage.again = Some((member, wait));
            }
        }
    }

    /// The specific fallbacks for the requested group replace whatever is left of this
    /// group and of the generic fallbacks; without any, the generic ones apply.
    fn jump_to(&mut self, specific: &std::collections::HashMap<String, Vec<String>>) {
        match specific.get(&self.primary.name) {
            Some(list) => {
                let done = self.fallbacks_used as usize;
                self.queue = Some(list.iter().skip(done).cloned().collect());
            }
            None if self.queue.is_none() => self.queue = Some(self.generic_fallbacks().into()),
            None => {}
        }
        // Nothing in this group can take a request it refused for its content or size.
        self.stage = None;
    }

    fn next_fallback(&mut self) -> Option<&'r Group<D>> {
        if self.fallbacks_used as usize >= self.router.settings.max_fallbacks {
            return None;
        }
        if self.queue.is_none() {
            let allowed = self
                .last_failure
                .is_none_or(Failure::allows_generic_fallback)
                || self.empty.is_some();
            let list = if allowed {
                self.generic_fallbacks()
            } else {
                Vec::new()
            };
            self.queue = Some(list.into());
        }
        let queue = self.queue.as_mut()?;
        while let Some(name) = queue.pop_front() {
            if let Some(group) = self.router.group(&name) {
                return Some(group);
            }
        }
        None
    }

    fn generic_fallbacks(&self) -> Vec<String> {
        let settings = &self.router.settings;
        if let Some(list) = &self.ctx.fallbacks {
            return list.clone();
        }
        settings
            .fallbacks
            .get(&self.primary.name)
            .cloned()
            .unwrap_or_else(|| settings.default_fallbacks.clone())
            .into_iter()
            .filter(|g| *g != self.primary.name)
            .collect()
    }

    /// Starts on `group`: orders its usable members.
    fn enter(&mut self, group: &'r Group<D>, wildcard: Option<String>, depth: u32) {
        let settings = &self.router.settings;
        let now = now_ms();
        let minute = now / 60_000;
        let mut members: Vec<&'r Arc<Member<D>>> = group.members.iter().collect();
        if settings.tag_filtering {
            members = by_tags(members, &self.ctx.tags);
            if members.is_empty() {
                self.empty = Some(Exhausted::NoTagMatch {
                    group: group.name.clone(),
                    tags: self.ctx.tags.clone(),
                });
            }
        }
        if settings.pre_call_checks && !members.is_empty() {
            let tokens = self.ctx.input_tokens;
            members.retain(|m| m.spec().max_input_tokens.is_none_or(|max| tokens <= max));
            if members.is_empty() {
                self.empty = Some(Exhausted::ContextWindow {
                    group: group.name.clone(),
                    tokens,
                });
                self.stage = None;
                self.last_failure = Some(Failure::Vendor(ErrorKind::ContextLength));
                if depth == 0 {
                    self.jump_to(&settings.context_window_fallbacks);
                }
                return;
            }
        }
        let before = members.len();
        let mut back_at: Option<u64> = None;
        let mut at_limit = false;
        members.retain(|m| {
            let until = m.stats().cooldown_until_ms();
            if until > now {
                back_at = Some(back_at.map_or(until, |b| b.min(until)));
                return false;
            }
            if !m.has_capacity(minute, self.ctx.input_tokens) {
                // Its window opens again when the minute turns.
                let turn = (minute + 1) * 60_000;
                back_at = Some(back_at.map_or(turn, |b| b.min(turn)));
                at_limit = true;
                return false;
            }
            true
        });
        if members.is_empty() && before > 0 {
            self.empty = Some(Exhausted::Unavailable {
                group: group.name.clone(),
                retry_in: back_at.map(|at| Duration::from_millis(at.saturating_sub(now))),
                at_limit,
            });
        }
        strategy::order(&mut members, settings, minute, &mut rand::rng());
        if let Some(prefer) = &self.ctx.prefer {
            // Stable: the strategy's order stays within the preferred and the rest.
            members.sort_by_cached_key(|m| !prefer.holds(m, minute));
        }
        self.stage = Some(Stage {
            group,
            wildcard,
            order: members,
            pos: 0,
            pass: 0,
            depth,
            again: None,
            retries_used: 0,
        });
    }

    fn hand_out(
        &mut self,
        member: Arc<Member<D>>,
        wait: Duration,
        minute: u64,
    ) -> (Attempt<D>, Duration) {
        self.attempts += 1;
        member.stats().started(minute);
        let (group, wildcard, fallback) = match &self.stage {
            Some(s) => (s.group.name.clone(), s.wildcard.clone(), s.depth),
            None => (self.primary.name.clone(), None, 0),
        };
        let attempt = Attempt {
            in_flight: InFlight::new(member.clone()),
            member,
            group,
            wildcard,
            fallback,
            started: Instant::now() + wait,
            minute,
        };
        (attempt, wait)
    }

    fn exhausted(&self) -> Exhausted {
        if let Some(f) = self.last_failure
            && !(self.attempts == 0 && self.empty.is_some())
        {
            return Exhausted::Failed(f);
        }
        self.empty.clone().unwrap_or(Exhausted::Unavailable {
            group: self.primary.name.clone(),
            retry_in: None,
            at_limit: false,
        })
    }
}

/// Tag routing as LiteLLM documents it: a tagged request goes to members sharing one of
/// its tags, else to members tagged `default`; an untagged request goes to members tagged
/// `default` when there are any, else to all.
fn by_tags<'r, D>(members: Vec<&'r Arc<Member<D>>>, tags: &[String]) -> Vec<&'r Arc<Member<D>>> {
    let has = |m: &Arc<Member<D>>, t: &str| m.spec().tags.iter().any(|x| x == t);
    let defaults: Vec<_> = members
        .iter()
        .filter(|m| has(m, "default"))
        .cloned()
        .collect();
    if tags.is_empty() {
        return if defaults.is_empty() {
            members
        } else {
            defaults
        };
    }
    let matching: Vec<_> = members
        .iter()
        .filter(|m| tags.iter().any(|t| has(m, t)))
        .cloned()
        .collect();
    if matching.is_empty() {
        defaults
    } else {
        matching
    }
}

/// Exponential backoff with jitter: between half and three quarters of `base × 2^(n-1)`
/// (at most 8 s), so that replicas retrying together spread out.
fn backoff(base: Duration, n: u32) -> Duration {
    let ceiling = base
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(Duration::from_secs(8));
    let half = ceiling / 2;
    half + ceiling.mul_f64(rand::rng().random_range(0.0..0.5))
}
