//! What keys cost (issue #5): two gateways against the same mock, one in local mode with
//! spend logs off (no auth, no limits, no spend rows), one with a master key and a
//! virtual key carrying rpm/tpm/parallel limits (key lookup, the limiter, one spend row
//! per request). Non-stream chat completions at one connection, in alternating slices
//! like the direct-vs-gateway scenarios, so "on minus off" is what keys add.

use crate::cli::Args;
use crate::client::{Conn, Failure, Prepared, Target};
use crate::error::BenchError;
use crate::load::{self, Amount, Plan};
use crate::procs::{Service, model_list};
use crate::results::{KeysRow, KeysSide};
use crate::run::{Binaries, COUNT_PHASE_LIMIT, LATENCY_ROUNDS, MASTER_KEY, REQUEST_TIMEOUT};
use crate::stats::ms;

/// The virtual key the "on" gateway declares and every request of this section carries.
pub const VIRTUAL_KEY: &str = "sk-bench-virtual";

/// Local mode (no master key, no keys) and no spend rows: the gateway without key work.
pub fn keys_off_config(upstream_url: &str) -> String {
    format!(
        "{}general_settings:\n  disable_spend_logs: true\n",
        model_list(upstream_url)
    )
}

/// A master key and one virtual key for `bench` whose limits are far above anything the
/// benchmark sends: every limit is checked, none ever refuses. Spend logs stay on (the
/// default).
pub fn keys_on_config(upstream_url: &str) -> String {
    format!(
        "{}general_settings:\n  master_key: {MASTER_KEY}\n\
         virtual_keys:\n  - api_key: {VIRTUAL_KEY}\n    models: [bench]\n    \
         rpm_limit: 100000000\n    tpm_limit: 100000000000\n    max_parallel_requests: 100000\n",
        model_list(upstream_url)
    )
}

/// Starts both gateways, measures them in alternating slices, and stops them.
pub async fn run(args: &Args, bins: &Binaries, mock_url: &str) -> Result<Vec<KeysRow>, BenchError> {
    let mut off = Service::gateway_with_config(&bins.gateway, &keys_off_config(mock_url))?;
    let mut on = Service::gateway_with_config(&bins.gateway, &keys_on_config(mock_url))?;
    // The same header on both sides, so the request bytes are identical; local mode
    // ignores it.
    refuses_unknown_keys(&on).await?;
    let off_target = Target::from_url(&off.url, VIRTUAL_KEY)?;
    let on_target = Target::from_url(&on.url, VIRTUAL_KEY)?;
    let plan = Plan {
        connections: 1,
        warmup: Amount::Requests {
            count: args.keys_requests / 10,
            limit: COUNT_PHASE_LIMIT,
        },
        measure: Amount::Requests {
            count: args.keys_requests,
            limit: COUNT_PHASE_LIMIT,
        },
        request_timeout: REQUEST_TIMEOUT,
        rounds: LATENCY_ROUNDS,
    };
    let routes = [
        (off_target.clone(), Prepared::chat(&off_target, false)),
        (on_target.clone(), Prepared::chat(&on_target, false)),
    ];
    let outcomes = load::compare(&routes, &plan).await?;
    let mut rows = Vec::with_capacity(2);
    for (side, outcome) in [KeysSide::Off, KeysSide::On].into_iter().zip(outcomes) {
        let row = KeysRow::new(side, outcome);
        print_progress(&row);
        rows.push(row);
    }
    for service in [&mut off, &mut on] {
        if !service.alive() {
            return Err(BenchError::NotServing {
                what: "gatehouse",
                detail: format!(
                    "it exited during the key-overhead scenario; last output:\n{}",
                    service.tail()
                ),
            });
        }
    }
    Ok(rows)
}

/// "on minus off" means nothing if the "on" gateway came up in local mode (a config
/// it read differently than intended): it must answer an unknown key with 401.
async fn refuses_unknown_keys(on: &Service) -> Result<(), BenchError> {
    let stranger = Target::from_url(&on.url, "sk-not-a-bench-key")?;
    let mut conn = Conn::open(stranger.addr).await?;
    match conn
        .send(&Prepared::chat(&stranger, false), REQUEST_TIMEOUT)
        .await
    {
        Err(Failure::Status { status: 401, .. }) => Ok(()),
        other => Err(BenchError::NotServing {
            what: "gatehouse",
            detail: format!(
                "the keys-on gateway must refuse an unknown key with HTTP 401, got {other:?}; \
                 last output:\n{}",
                on.tail()
            ),
        }),
    }
}

fn print_progress(row: &KeysRow) {
    let p50 = row.full.map(|s| ms(s.p50)).unwrap_or(f64::NAN);
    eprintln!(
        "keys {:<4} non-stream c=1   p50 {p50:.3} ms  {:.0} req/s  errors {}{}",
        row.side.label(),
        row.per_second,
        row.errors,
        row.first_error
            .as_deref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> gatehouse_config::Config {
        gatehouse_config::load::load_str(text, "bench.yaml", &|_| None)
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .config
    }

    #[test]
    fn off_config_is_local_mode_without_spend_logs() {
        let text = keys_off_config("http://127.0.0.1:9");
        let c = load(&text);
        assert_eq!(c.model_list.len(), 1);
        assert_eq!(c.model_list[0].model_name, "bench");
        assert!(
            text.contains("api_base: \"http://127.0.0.1:9/v1\""),
            "{text}"
        );
        // Local mode: no master key anywhere, no declared keys.
        assert_eq!(c.general_settings.master_key, None);
        assert_eq!(c.litellm_settings.master_key, None);
        assert!(c.virtual_keys.is_empty());
        assert_eq!(c.general_settings.disable_spend_logs, Some(true));
    }

    #[test]
    fn on_config_has_the_master_key_and_a_limited_virtual_key() {
        let c = load(&keys_on_config("http://127.0.0.1:9"));
        assert_eq!(c.model_list[0].model_name, "bench");
        assert_eq!(c.general_settings.master_key.as_deref(), Some(MASTER_KEY));
        assert_ne!(c.general_settings.disable_spend_logs, Some(true));
        assert_eq!(c.virtual_keys.len(), 1);
        let k = &c.virtual_keys[0];
        assert_eq!(k.api_key, VIRTUAL_KEY);
        assert_eq!(k.models, vec!["bench".to_string()]);
        assert_eq!(k.rpm_limit, Some(100_000_000));
        assert_eq!(k.tpm_limit, Some(100_000_000_000));
        assert_eq!(k.max_parallel_requests, Some(100_000));
    }
}
