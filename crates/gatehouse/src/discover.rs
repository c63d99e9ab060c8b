//! Start-up probes for the config served without `--config`: a local Ollama and the
//! OpenAI-compatible server at `GATEHOUSE_DEFAULT_UPSTREAM` are served only when they
//! answer their model listing now. Both probes run at once under one short deadline, so
//! a host that drops packets costs start-up at most [`PROBE_TIMEOUT`].

use std::time::Duration;

use gatehouse_config::ConfigErrors;
use gatehouse_config::discover::{Discovered, ProbeAnswers, ProbeTargets, discover, probe_targets};
use serde_json::Value;

/// Long enough for a loopback or LAN server, short enough not to matter at start-up.
const PROBE_TIMEOUT: Duration = Duration::from_millis(800);

/// A listing larger than this is not a model listing.
const MAX_LISTING_BYTES: usize = 1 << 20;

/// Discovers the config from the process environment, probing what needs it.
pub fn from_environment() -> Result<Discovered, ConfigErrors> {
    let env = |n: &str| std::env::var(n).ok();
    let targets = probe_targets(&env)?;
    let answers = probe(&targets);
    discover(&env, &targets, &answers)
}

fn probe(targets: &ProbeTargets) -> ProbeAnswers {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        // Without a runtime nothing can be probed; the keyed providers still serve.
        Err(_) => return ProbeAnswers::default(),
    };
    runtime.block_on(async {
        let Ok(client) = reqwest::Client::builder()
            .timeout(PROBE_TIMEOUT)
            .connect_timeout(PROBE_TIMEOUT)
            .build()
        else {
            return ProbeAnswers::default();
        };
        let ollama = model_ids(&client, &targets.ollama);
        let upstream = async {
            match &targets.upstream {
                Some(base) => model_ids(&client, base).await,
                None => None,
            }
        };
        let (ollama, upstream_models) = tokio::join!(ollama, upstream);
        ProbeAnswers {
            ollama: ollama.is_some(),
            upstream_models,
        }
    })
}

/// `GET {base}/models`: the ids listed, or `None` when the server does not answer an
/// OpenAI-shaped listing.
async fn model_ids(client: &reqwest::Client, base: &str) -> Option<Vec<String>> {
    let mut response = client.get(format!("{base}/models")).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    // Read in chunks so a server that streams without end cannot grow the buffer.
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.ok()? {
        if body.len() + chunk.len() > MAX_LISTING_BYTES {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    let listing: Value = serde_json::from_slice(&body).ok()?;
    let data = listing.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect(),
    )
}
