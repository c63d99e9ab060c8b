//! Model groups: every `model_list` entry resolved into a ready-to-call deployment, grouped
//! by public `model_name`, and picked by weight (LiteLLM's `simple-shuffle`).
//!
//! This is the router's seam: the full router (strategies, cooldowns, fallbacks) replaces
//! [`ModelGroups::pick_order`] without touching the handlers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use gatehouse_config::{Config, Dialect, Provider, provider};
use rand::Rng;
use serde_json::{Map, Value};

/// Default whole-request timeout when neither the deployment nor the settings give one
/// (LiteLLM's default is 600 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub struct Deployment {
    /// `model_info.id`, or `<model_name>#<index in model_list>`.
    pub id: String,
    pub model_name: String,
    pub provider: &'static Provider,
    /// The model id sent upstream (provider prefix stripped).
    pub upstream_model: String,
    /// Base URL, normalised: no trailing slash; for OpenAI-compatible upstreams it is the
    /// URL that `/chat/completions` is appended to.
    pub api_base: String,
    pub api_key: Option<String>,
    pub api_version: Option<String>,
    pub timeout: Duration,
    pub stream_timeout: Option<Duration>,
    pub max_retries: u32,
    pub weight: f64,
    /// Provider parameters from `litellm_params` merged under every request body.
    pub default_params: Map<String, Value>,
    pub headers: Vec<(String, String)>,
    pub access_groups: Vec<String>,
    pub mcp_servers: Vec<String>,
    /// Per-token prices: the price table's, with `model_info` costs taking precedence.
    pub price: Option<crate::cost::Price>,
    pub stats: DeploymentStats,
}

/// Passive health: what the last calls to this deployment did.
#[derive(Debug, Default)]
pub struct DeploymentStats {
    pub successes: AtomicU64,
    pub failures: AtomicU64,
    /// 0 when the last call succeeded, else the number of failures in a row.
    pub consecutive_failures: AtomicU64,
}

impl DeploymentStats {
    pub fn record(&self, ok: bool) {
        if ok {
            self.successes.fetch_add(1, Ordering::Relaxed);
            self.consecutive_failures.store(0, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
            self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("router_settings redis: {0}")]
    Redis(String),
    #[error("model_list[{index}].litellm_params.model: {source}")]
    Provider {
        index: usize,
        source: provider::ResolveError,
    },
    #[error(
        "model_list[{index}].litellm_params.api_base: required for provider \"{provider}\" (it has no default URL)"
    )]
    MissingApiBase {
        index: usize,
        provider: &'static str,
    },
}

/// Public model name → its deployments, in `model_list` order.
#[derive(Debug, Default)]
pub struct ModelGroups {
    groups: HashMap<String, Vec<Arc<Deployment>>>,
    /// Public names in `model_list` order, for listings.
    names: Vec<String>,
}

impl ModelGroups {
    pub fn from_config(config: &Config) -> Result<Self, DeploymentError> {
        let default_timeout = config
            .router_settings
            .timeout
            .or(config.litellm_settings.request_timeout)
            .map(Duration::from_secs_f64)
            .unwrap_or(DEFAULT_TIMEOUT);
        let default_retries = config
            .router_settings
            .num_retries
            .or(config.litellm_settings.num_retries)
            .unwrap_or(0);
        let mut groups: HashMap<String, Vec<Arc<Deployment>>> = HashMap::new();
        let mut names = Vec::new();
        for (index, entry) in config.model_list.iter().enumerate() {
            let params = &entry.litellm_params;
            let (provider, upstream_model) =
                provider::resolve(&params.model, params.custom_llm_provider.as_deref())
                    .map_err(|source| DeploymentError::Provider { index, source })?;
            let api_key = params.api_key.clone().or_else(|| {
                provider
                    .key_env
                    .and_then(|var| std::env::var(var).ok())
                    .filter(|k| !k.is_empty())
            });
            let api_base = match params.api_base.as_deref().or(provider.default_api_base) {
                Some(base) => normalize_api_base(base, provider.dialect),
                None => {
                    return Err(DeploymentError::MissingApiBase {
                        index,
                        provider: provider.name,
                    });
                }
            };
            let price = crate::cost::resolve(
                provider.name,
                &upstream_model,
                &crate::cost::CostOverrides {
                    input_cost_per_token: entry.model_info.input_cost_per_token,
                    output_cost_per_token: entry.model_info.output_cost_per_token,
                },
            );
            let deployment = Deployment {
                id: entry
                    .model_info
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("{}#{index}", entry.model_name)),
                model_name: entry.model_name.clone(),
                provider,
                upstream_model,
                api_base,
                api_key,
                api_version: params.api_version.clone(),
                timeout: params
                    .timeout
                    .map(Duration::from_secs_f64)
                    .unwrap_or(default_timeout),
                stream_timeout: params.stream_timeout.map(Duration::from_secs_f64),
                max_retries: params.max_retries.unwrap_or(default_retries),
                weight: params.weight.unwrap_or(1.0).max(0.0),
                default_params: with_aws_params(params, provider.dialect),
                headers: params
                    .headers
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                access_groups: entry.model_info.access_groups.clone(),
                mcp_servers: entry.model_info.mcp_servers.clone(),
                price,
                stats: DeploymentStats::default(),
            };
            let group = groups.entry(entry.model_name.clone()).or_default();
            if group.is_empty() {
                names.push(entry.model_name.clone());
            }
            group.push(Arc::new(deployment));
        }
        Ok(Self { groups, names })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn group(&self, name: &str) -> Option<&[Arc<Deployment>]> {
        self.groups.get(name).map(Vec::as_slice)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Deployment>> {
        self.names
            .iter()
            .filter_map(|n| self.groups.get(n))
            .flatten()
    }

    /// The order in which to try a group's deployments: the first is drawn by weight, the
    /// rest follow as fallbacks in their configured order.
    pub fn pick_order(&self, name: &str) -> Option<Vec<Arc<Deployment>>> {
        let group = self.groups.get(name)?;
        let first = if group.len() == 1 {
            0
        } else {
            weighted_index(group, &mut rand::rng())
        };
        let mut order = Vec::with_capacity(group.len());
        order.push(group[first].clone());
        order.extend(
            group
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != first)
                .map(|(_, d)| d.clone()),
        );
        Some(order)
    }
}

fn weighted_index(group: &[Arc<Deployment>], rng: &mut impl Rng) -> usize {
    let total: f64 = group.iter().map(|d| d.weight).sum();
    if total <= 0.0 {
        return rng.random_range(0..group.len());
    }
    let mut point = rng.random_range(0.0..total);
    for (i, d) in group.iter().enumerate() {
        if point < d.weight {
            return i;
        }
        point -= d.weight;
    }
    group.len() - 1
}

/// Bedrock's AWS settings are typed in the config; the Bedrock adapter reads them from
/// `default_params` (and strips every `aws_*` key before building the request body).
fn with_aws_params(
    params: &gatehouse_config::schema::LitellmParams,
    dialect: Dialect,
) -> Map<String, Value> {
    let mut out = params.extra.clone();
    if dialect == Dialect::Bedrock {
        for (key, value) in [
            ("aws_access_key_id", &params.aws_access_key_id),
            ("aws_secret_access_key", &params.aws_secret_access_key),
            ("aws_session_token", &params.aws_session_token),
            ("aws_region_name", &params.aws_region_name),
        ] {
            if let Some(v) = value {
                out.insert(key.to_owned(), Value::String(v.clone()));
            }
        }
    }
    out
}

/// LiteLLM users write `api_base` with or without the API path (`http://vllm:8000`,
/// `http://vllm:8000/v1`, `.../v1/chat/completions`). Normalise to the URL endpoints are
/// appended to.
pub fn normalize_api_base(base: &str, dialect: Dialect) -> String {
    let mut base = base.trim().trim_end_matches('/').to_string();
    for suffix in [
        "/chat/completions",
        "/embeddings",
        "/completions",
        "/messages",
    ] {
        if let Some(stripped) = base.strip_suffix(suffix) {
            base = stripped.to_string();
        }
    }
    if dialect == Dialect::OpenAi {
        // A bare host means the server's standard `/v1`; any other path (OpenRouter's
        // `/api/v1`, DeepInfra's `/v1/openai`) is taken as the user wrote it.
        let after_scheme = base
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(&base);
        if !after_scheme.contains('/') {
            base.push_str("/v1");
        }
    }
    if dialect == Dialect::Anthropic {
        base = base.strip_suffix("/v1").unwrap_or(&base).to_string();
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_base_with_or_without_v1() {
        let o = Dialect::OpenAi;
        assert_eq!(normalize_api_base("http://h:8000", o), "http://h:8000/v1");
        assert_eq!(normalize_api_base("http://h:8000/", o), "http://h:8000/v1");
        assert_eq!(
            normalize_api_base("http://h:8000/v1/", o),
            "http://h:8000/v1"
        );
        assert_eq!(
            normalize_api_base("http://h:8000/v1/chat/completions", o),
            "http://h:8000/v1"
        );
        assert_eq!(
            normalize_api_base("https://openrouter.ai/api/v1", o),
            "https://openrouter.ai/api/v1"
        );
        assert_eq!(
            normalize_api_base("https://api.anthropic.com/v1", Dialect::Anthropic),
            "https://api.anthropic.com"
        );
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    pub fn deployment(upstream_model: &str, default_params: Map<String, Value>) -> Deployment {
        Deployment {
            id: "d#0".into(),
            model_name: "public".into(),
            provider: Provider::by_name("openai").unwrap(),
            upstream_model: upstream_model.into(),
            api_base: "http://127.0.0.1:1/v1".into(),
            api_key: None,
            api_version: None,
            timeout: Duration::from_secs(1),
            stream_timeout: None,
            max_retries: 0,
            weight: 1.0,
            default_params,
            headers: vec![],
            access_groups: vec![],
            mcp_servers: vec![],
            price: None,
            stats: DeploymentStats::default(),
        }
    }
}
