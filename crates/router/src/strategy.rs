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
    members: &mut [Arc<Member<D>>],
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
    tier: &mut [Arc<Member<D>>],
    settings: &RouterSettings,
    minute: u64,
    rng: &mut impl Rng,
) {
    if tier.len() < 2 {
        return;
    }
    // Shuffle first so that ties (a stable sort keeps their order) are broken at random.
    tier.shuffle(rng);
    match settings.strategy {
        Strategy::SimpleShuffle => weighted_shuffle(tier, rng),
        Strategy::LeastBusy => tier.sort_by_key(|m| m.stats().in_flight_everywhere()),
        Strategy::UsageBased => tier.sort_by_key(|m| m.stats().usage(minute).1),
        Strategy::CostBased => tier.sort_by(|a, b| {
            let cost = |m: &Arc<Member<D>>| m.spec().cost_per_token.unwrap_or(f64::INFINITY);
            cost(a).total_cmp(&cost(b))
        }),
        Strategy::LatencyBased => {
            // Unmeasured members first (they need a sample), then by latency; members
            // within the buffer of the fastest share the front at random.
            let latency = |m: &Arc<Member<D>>| m.stats().latency().map_or(0, |d| d.as_micros());
            tier.sort_by_key(latency);
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

/// Weighted random order without replacement: each position is drawn by weight among
/// the members not yet placed. LiteLLM's weight is `weight`, else `rpm`, else `tpm`.
fn weighted_shuffle<D>(tier: &mut [Arc<Member<D>>], rng: &mut impl Rng) {
    let weight = |m: &Arc<Member<D>>| {
        let s = m.spec();
        s.weight
            .or(s.rpm.map(|r| r as f64))
            .or(s.tpm.map(|t| t as f64))
            .unwrap_or(1.0)
            .max(0.0)
    };
    for i in 0..tier.len() - 1 {
        let total: f64 = tier[i..].iter().map(weight).sum();
        let pick = if total > 0.0 {
            let mut point = rng.random_range(0.0..total);
            let mut chosen = tier.len() - 1;
            for (j, m) in tier.iter().enumerate().skip(i) {
                let w = weight(m);
                if point < w {
                    chosen = j;
                    break;
                }
                point -= w;
            }
            chosen
        } else {
            rng.random_range(i..tier.len())
        };
        tier.swap(i, pick);
    }
}
