//! Deployments: every `model_list` entry resolved into a ready-to-call [`Deployment`]
//! (provider, upstream model, URL, key, timeouts, prices), handed to the router
//! ([`build_router`]), which groups them by public `model_name` and keeps their live state.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_config::{Config, Dialect, Provider, provider};
use gatehouse_router::{MemberSpec, Router, RouterSettings};
use serde_json::{Map, Value};

/// Default whole-request timeout when neither the deployment nor the settings give one
/// (LiteLLM's default is 600 s).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone)]
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
    /// `litellm_params.model` is `*` (a `model_name: "*"` route): the provider comes from
    /// each requested name.
    pub any_provider: bool,
    /// Background health checks may probe it with a one-token chat request: a chat model
    /// (`model_info.mode` unset or `chat`) with a concrete upstream model (no wildcard).
    pub chat_probe: bool,
    /// The upstream URLs this deployment calls, parsed once.
    pub urls: crate::upstream::send::UrlCache,
}

#[derive(Debug, thiserror::Error)]
pub enum DeploymentError {
    #[error("router_settings redis: {0}")]
    Redis(String),
    #[error("{0}")]
    Router(#[from] gatehouse_router::SettingsError),
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

/// Resolves every `model_list` entry and builds the router over them.
pub fn build_router(config: &Config) -> Result<Router<Deployment>, DeploymentError> {
    let default_timeout = config
        .router_settings
        .timeout
        .or(config.litellm_settings.request_timeout)
        .map(Duration::from_secs_f64)
        .unwrap_or(DEFAULT_TIMEOUT);
    let mut members = Vec::with_capacity(config.model_list.len());
    for (index, entry) in config.model_list.iter().enumerate() {
        let deployment = resolve(entry, index, default_timeout)?;
        let params = &entry.litellm_params;
        let price = deployment.price;
        let spec = MemberSpec {
            id: deployment.id.clone(),
            weight: params.weight,
            rpm: params.rpm,
            tpm: params.tpm,
            order: params
                .extra
                .get("order")
                .and_then(Value::as_u64)
                .map(|o| o.min(u32::MAX as u64) as u32),
            tags: params
                .extra
                .get("tags")
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            cost_per_token: price.map(|p| p.input_cost_per_token + p.output_cost_per_token),
            max_input_tokens: entry
                .model_info
                .max_input_tokens
                .or(price.and_then(|p| p.max_input_tokens)),
            max_retries: params.max_retries.unwrap_or(0),
            deployment: Arc::new(deployment),
        };
        members.push((entry.model_name.clone(), spec));
    }
    Ok(Router::new(members, RouterSettings::from_config(config)?)?)
}

fn resolve(
    entry: &gatehouse_config::ModelEntry,
    index: usize,
    default_timeout: Duration,
) -> Result<Deployment, DeploymentError> {
    let params = &entry.litellm_params;
    let any_provider = params.model == "*";
    // A `*` model takes its provider from each request; until then it is OpenAI-compatible.
    let model = if any_provider {
        "openai/*"
    } else {
        params.model.as_str()
    };
    let (provider, upstream_model) =
        provider::resolve(model, params.custom_llm_provider.as_deref())
            .map_err(|source| DeploymentError::Provider { index, source })?;
    let api_key = params.api_key.clone().or_else(|| provider_key(provider));
    let api_base = match params.api_base.as_deref().or(provider.default_api_base) {
        Some(base) => normalize_api_base(base, provider.dialect),
        None if any_provider => String::new(),
        None => {
            return Err(DeploymentError::MissingApiBase {
                index,
                provider: provider.name,
            });
        }
    };
    let overrides = crate::cost::CostOverrides {
        input_cost_per_token: entry.model_info.input_cost_per_token,
        output_cost_per_token: entry.model_info.output_cost_per_token,
    };
    let price = crate::cost::resolve(provider.name, &upstream_model, &overrides);
    if price.is_none() && !any_provider && !upstream_model.contains('*') {
        // Said once at start-up: its requests cost $0, so budgets never see them.
        tracing::warn!(
            model = %entry.model_name,
            upstream = %upstream_model,
            "no price known for this deployment: its spend is logged as $0; set model_info.input_cost_per_token / output_cost_per_token"
        );
    }
    let chat_probe = !any_provider
        && !upstream_model.contains('*')
        && entry.model_info.mode.as_deref().is_none_or(|m| m == "chat");
    Ok(Deployment {
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
        max_retries: params.max_retries.unwrap_or(0),
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
        any_provider,
        chat_probe,
        urls: Default::default(),
    })
}

fn provider_key(provider: &Provider) -> Option<String> {
    provider
        .key_env
        .and_then(|var| std::env::var(var).ok())
        .filter(|k| !k.is_empty())
}

impl Deployment {
    /// This wildcard deployment serving one requested name: `capture` (what the route's
    /// `*` matched) replaces the `*` of the upstream model; a `*` model also takes its
    /// provider from the capture (`anthropic/claude-x` → Anthropic, `claude-x`).
    pub fn for_wildcard(&self, capture: &str) -> Result<Deployment, String> {
        let mut d = self.clone();
        if self.any_provider {
            let (provider, model) = provider::resolve(capture, None).map_err(|e| e.to_string())?;
            if d.api_base.is_empty() || d.provider.name != provider.name {
                d.api_base = match provider.default_api_base {
                    Some(base) => normalize_api_base(base, provider.dialect),
                    None => {
                        return Err(format!(
                            "provider \"{}\" needs an api_base; add a model_list entry for it",
                            provider.name
                        ));
                    }
                };
                if d.api_key.is_none() || d.provider.name != provider.name {
                    d.api_key = provider_key(provider);
                }
            }
            d.price = crate::cost::resolve(provider.name, &model, &Default::default());
            d.provider = provider;
            d.upstream_model = model;
        } else {
            d.upstream_model = self.upstream_model.replacen('*', capture, 1);
            d.price =
                crate::cost::resolve(self.provider.name, &d.upstream_model, &Default::default())
                    .or(self.price);
        }
        Ok(d)
    }
}

/// Bedrock's AWS settings are typed in the config; the Bedrock adapter reads them from
/// `default_params` (and strips every `aws_*` key before building the request body).
fn with_aws_params(
    params: &gatehouse_config::schema::LitellmParams,
    dialect: Dialect,
) -> Map<String, Value> {
    let mut out = params.extra.clone();
    // Routing facts, read by the router; not request parameters.
    for key in ["order", "tags"] {
        out.remove(key);
    }
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
            any_provider: false,
            chat_probe: true,
            urls: Default::default(),
        }
    }
}
