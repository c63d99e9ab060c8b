//! The order in which a group's members are tried, per routing strategy.
//!
//! Only members that may serve the request at all are ordered: not cooling down, with
//! room in their own rpm/tpm, matching the request's tags, and (with pre-call checks)
//! whose context window fits the prompt. `order` tiers come first; the strategy orders
//! members within a tier.

use std::sync::Arc;

use rand::Rng;
use rand::seq::SliceRandom;

use crate::member::Member;
use crate::settings::{RouterSettings, Strategy};

/// Orders `members` (already filtered) for one request.
pub(crate) fn order<D>(
    members: &mut [&Arc<Member<D>>],
    settings: &RouterSettings,
    minute: u64,
    rng: &mut impl Rng,
) {
    if members.len() < 2 {
        return;
    }
    // Tiers by `order` (unset last), strategy within each tier.
    members.sort_by_key(|m| m.spec().order.unwrap_or(u32::MAX));
    let mut start = 0;
    while start < members.len() {
        let tier = members[start].spec().order.unwrap_or(u32::MAX);
        let end = members[start..]
            .iter()
            .position(|m| m.spec().order.unwrap_or(u32::MAX) != tier)
            .map_or(members.len(), |p| start + p);
        order_tier(&mut members[start..end], settings, minute, rng);
        start = end;
    }
}

fn order_tier<D>(
    tier: &mut [&Arc<Member<D>>],
    settings: &RouterSettings,
    minute: u64,
    rng: &mut impl Rng,
) {
    if tier.len() < 2 {
        return;
    }
    // Shuffle first so that ties (a stable sort keeps their order) are broken at random.
    tier.shuffle(rng);
    // Every sort key is read once per member (`sort_by_cached_key`): the stats behind
    // them are atomics and small locks, and a comparison sort would read each ~log n times.
    match settings.strategy {
        Strategy::SimpleShuffle => weighted_shuffle(tier, rng),
        Strategy::LeastBusy => tier.sort_by_cached_key(|m| m.stats().in_flight_everywhere()),
        Strategy::UsageBased => tier.sort_by_cached_key(|m| m.stats().usage(minute).1),
        Strategy::CostBased => tier.sort_by(|a, b| {
            let cost = |m: &&Arc<Member<D>>| m.spec().cost_per_token.unwrap_or(f64::INFINITY);
            cost(a).total_cmp(&cost(b))
        }),
        Strategy::LatencyBased => {
            // Unmeasured members first (they need a sample), then by latency; members
            // within the buffer of the fastest share the front at random.
            let latency = |m: &&Arc<Member<D>>| m.stats().latency().map_or(0, |d| d.as_micros());
            tier.sort_by_cached_key(latency);
            let best = latency(&tier[0]) as f64;
            if best > 0.0 && settings.lowest_latency_buffer > 0.0 {
                let limit = best * (1.0 + settings.lowest_latency_buffer);
                let close = tier
                    .iter()
                    .take_while(|m| latency(m) as f64 <= limit)
                    .count();
                tier[..close].shuffle(rng);
            }
        }
    }
}

/// Weighted random order without replacement (Efraimidis–Spirakis: each member draws
/// the key `u^(1/w)` and the highest keys go first, which places each position with
/// probability proportional to weight among those not yet placed), in O(n log n).
/// LiteLLM's weight is `weight`, else `rpm`, else `tpm`; a zero weight goes last.
fn weighted_shuffle<D>(tier: &mut [&Arc<Member<D>>], rng: &mut impl Rng) {
    let weight = |m: &&Arc<Member<D>>| {
        let s = m.spec();
        s.weight
            .or(s.rpm.map(|r| r as f64))
            .or(s.tpm.map(|t| t as f64))
            .unwrap_or(1.0)
            .max(0.0)
    };
    // ln(u)/w orders like u^(1/w) and stays finite for tiny weights.
    let mut keyed: Vec<(f64, &Arc<Member<D>>)> = tier
        .iter()
        .map(|m| {
            let w = weight(m);
            let key = if w > 0.0 {
                rng.random::<f64>().max(f64::MIN_POSITIVE).ln() / w
            } else {
                f64::NEG_INFINITY
            };
            (key, *m)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (slot, (_, m)) in tier.iter_mut().zip(keyed) {
        *slot = m;
    }
}
