//! `router_settings` (and the router keys LiteLLM also reads from `litellm_settings`),
//! typed and checked.

use std::collections::HashMap;
use std::time::Duration;

use gatehouse_config::Config;
use serde_json::Value;

use crate::failure::FailureClass;

/// `routing_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Weighted random (`weight`, else `rpm`, else `tpm` as the weight).
    #[default]
    SimpleShuffle,
    /// Fewest requests in flight.
    LeastBusy,
    /// Lowest moving-average latency (time to first token for streams), random among
    /// those within `lowest_latency_buffer` of the best.
    LatencyBased,
    /// Lowest tokens used this minute, respecting each deployment's rpm/tpm.
    UsageBased,
    /// Cheapest per token.
    CostBased,
}

impl Strategy {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "simple-shuffle" | "shuffle" => Self::SimpleShuffle,
            "least-busy" => Self::LeastBusy,
            "latency-based-routing" => Self::LatencyBased,
            "usage-based-routing" | "usage-based-routing-v2" => Self::UsageBased,
            "cost-based-routing" => Self::CostBased,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::SimpleShuffle => "simple-shuffle",
            Self::LeastBusy => "least-busy",
            Self::LatencyBased => "latency-based-routing",
            Self::UsageBased => "usage-based-routing-v2",
            Self::CostBased => "cost-based-routing",
        }
    }
}

/// Retries (or allowed fails) per failure class, LiteLLM's `retry_policy` /
/// `allowed_fails_policy` keys (`TimeoutErrorRetries`, `RateLimitErrorAllowedFails`, ...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetryPolicy {
    by_class: HashMap<FailureClass, u32>,
}

impl RetryPolicy {
    fn parse(value: Option<&Value>, suffix: &str) -> Result<Self, SettingsError> {
        let mut by_class = HashMap::new();
        let Some(value) = value else {
            return Ok(Self { by_class });
        };
        let Value::Object(map) = value else {
            return Err(SettingsError::Invalid(format!(
                "must be a map of <ErrorClass>{suffix}: <number>"
            )));
        };
        for (key, n) in map {
            let class = match key.strip_suffix(suffix) {
                Some("TimeoutError") => FailureClass::Timeout,
                Some("RateLimitError") => FailureClass::RateLimit,
                Some("ContentPolicyViolationError") => FailureClass::ContentPolicy,
                Some("AuthenticationError") => FailureClass::Auth,
                Some("BadRequestError") => FailureClass::BadRequest,
                Some("InternalServerError") => FailureClass::InternalServer,
                _ => {
                    return Err(SettingsError::Invalid(format!(
                        "unknown key \"{key}\" (expected TimeoutError{suffix}, RateLimitError{suffix}, ContentPolicyViolationError{suffix}, AuthenticationError{suffix}, BadRequestError{suffix} or InternalServerError{suffix})"
                    )));
                }
            };
            let n = n
                .as_u64()
                .ok_or_else(|| SettingsError::Invalid(format!("\"{key}\" must be a number")))?;
            by_class.insert(class, n.min(100) as u32);
        }
        Ok(Self { by_class })
    }

    pub(crate) fn get(&self, class: FailureClass) -> Option<u32> {
        self.by_class.get(&class).copied()
    }
}

#[derive(Debug, Clone)]
pub struct RouterSettings {
    pub strategy: Strategy,
    /// Extra passes over a group after every member failed (`num_retries`).
    pub num_retries: u32,
    pub retry_policy: RetryPolicy,
    /// Failures within a minute a deployment may have before it cools down.
    pub allowed_fails: u32,
    pub allowed_fails_policy: RetryPolicy,
    pub cooldown: Duration,
    pub fallbacks: HashMap<String, Vec<String>>,
    pub context_window_fallbacks: HashMap<String, Vec<String>>,
    pub content_policy_fallbacks: HashMap<String, Vec<String>>,
    pub default_fallbacks: Vec<String>,
    pub max_fallbacks: usize,
    pub model_group_alias: HashMap<String, String>,
    /// Aliases marked `hidden: true`: served, not listed.
    pub hidden_aliases: Vec<String>,
    pub pre_call_checks: bool,
    pub tag_filtering: bool,
    pub lowest_latency_buffer: f64,
    /// First backoff before a new pass over a group; doubles per pass, with jitter.
    pub retry_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for: the next member is tried.
    pub max_retry_after: Duration,
    /// `routing_rules` (Gatehouse's stand-in for LiteLLM's Python routing hooks).
    pub rules: std::sync::Arc<crate::rules::Rules>,
}

impl Default for RouterSettings {
    fn default() -> Self {
        Self {
            strategy: Strategy::default(),
            num_retries: 0,
            retry_policy: RetryPolicy::default(),
            allowed_fails: 3,
            allowed_fails_policy: RetryPolicy::default(),
            cooldown: Duration::from_secs(5),
            fallbacks: HashMap::new(),
            context_window_fallbacks: HashMap::new(),
            content_policy_fallbacks: HashMap::new(),
            default_fallbacks: Vec::new(),
            max_fallbacks: 5,
            model_group_alias: HashMap::new(),
            hidden_aliases: Vec::new(),
            pre_call_checks: false,
            tag_filtering: false,
            lowest_latency_buffer: 0.0,
            retry_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(30),
            rules: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "router_settings.{setting}: unknown routing strategy \"{name}\" (expected simple-shuffle, least-busy, latency-based-routing, usage-based-routing-v2 or cost-based-routing)"
    )]
    Strategy { setting: &'static str, name: String },
    #[error("router_settings.{setting}: \"{group}\" is not a model_name in model_list")]
    UnknownGroup {
        setting: &'static str,
        group: String,
    },
    #[error("model_info.id \"{0}\" is used by two deployments")]
    DuplicateId(String),
    #[error("router_settings.{0}")]
    Rule(#[from] crate::rules::RuleError),
}

fn at(setting: &'static str) -> impl Fn(SettingsError) -> SettingsError {
    move |e| match e {
        SettingsError::Invalid(m) => {
            SettingsError::Invalid(format!("router_settings.{setting}: {m}"))
        }
        other => other,
    }
}

impl RouterSettings {
    /// Reads `router_settings`, falling back to `litellm_settings` for the keys LiteLLM
    /// accepts in both places (`num_retries`, `fallbacks`, `context_window_fallbacks`,
    /// `content_policy_fallbacks`, `default_fallbacks`, `allowed_fails`, `cooldown_time`).
    pub fn from_config(config: &Config) -> Result<Self, SettingsError> {
        let rs = &config.router_settings;
        let ls = &config.litellm_settings;
        let get = |key: &str| rs.extra.get(key).or_else(|| ls.extra.get(key));
        let mut s = Self::default();
        if let Some(name) = &rs.routing_strategy {
            s.strategy = Strategy::parse(name).ok_or_else(|| SettingsError::Strategy {
                setting: "routing_strategy",
                name: name.clone(),
            })?;
        }
        s.num_retries = rs.num_retries.or(ls.num_retries).unwrap_or(0).min(100);
        s.retry_policy =
            RetryPolicy::parse(get("retry_policy"), "Retries").map_err(at("retry_policy"))?;
        s.allowed_fails_policy = RetryPolicy::parse(get("allowed_fails_policy"), "AllowedFails")
            .map_err(at("allowed_fails_policy"))?;
        if let Some(n) = rs.allowed_fails.or_else(|| {
            get("allowed_fails")
                .and_then(Value::as_u64)
                .map(|n| n as u32)
        }) {
            s.allowed_fails = n;
        }
        if let Some(secs) = rs
            .cooldown_time
            .or_else(|| get("cooldown_time").and_then(Value::as_f64))
        {
            s.cooldown = seconds(secs).map_err(at("cooldown_time"))?;
        }
        let fallbacks = if rs.fallbacks.is_empty() {
            &ls.fallbacks
        } else {
            &rs.fallbacks
        };
        s.fallbacks = fallback_map(fallbacks).map_err(at("fallbacks"))?;
        let cw = if rs.context_window_fallbacks.is_empty() {
            &ls.context_window_fallbacks
        } else {
            &rs.context_window_fallbacks
        };
        s.context_window_fallbacks = fallback_map(cw).map_err(at("context_window_fallbacks"))?;
        if let Some(v) = get("content_policy_fallbacks") {
            let list = v.as_array().cloned().unwrap_or_default();
            s.content_policy_fallbacks =
                fallback_map(&list).map_err(at("content_policy_fallbacks"))?;
        }
        if let Some(v) = get("default_fallbacks") {
            s.default_fallbacks = string_list(v).map_err(at("default_fallbacks"))?;
        }
        if let Some(n) = get("max_fallbacks").and_then(Value::as_u64) {
            s.max_fallbacks = n.min(20) as usize;
        }
        if let Some(v) = get("model_group_alias") {
            let Value::Object(map) = v else {
                return Err(SettingsError::Invalid(
                    "router_settings.model_group_alias: must be a map of alias: model_name".into(),
                ));
            };
            for (alias, target) in map {
                let (name, hidden) = match target {
                    Value::String(name) => (name.clone(), false),
                    Value::Object(o) => match o.get("model").and_then(Value::as_str) {
                        Some(name) => (
                            name.to_owned(),
                            o.get("hidden").and_then(Value::as_bool).unwrap_or(false),
                        ),
                        None => {
                            return Err(SettingsError::Invalid(format!(
                                "router_settings.model_group_alias.{alias}: needs a `model`"
                            )));
                        }
                    },
                    _ => {
                        return Err(SettingsError::Invalid(format!(
                            "router_settings.model_group_alias.{alias}: must be a model_name"
                        )));
                    }
                };
                if hidden {
                    s.hidden_aliases.push(alias.clone());
                }
                s.model_group_alias.insert(alias.clone(), name);
            }
        }
        s.pre_call_checks = get("enable_pre_call_checks")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        s.tag_filtering = get("enable_tag_filtering")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if let Some(buffer) = get("routing_strategy_args")
            .and_then(|a| a.get("lowest_latency_buffer"))
            .or_else(|| get("lowest_latency_buffer"))
        {
            s.lowest_latency_buffer = buffer
                .as_f64()
                .filter(|b| b.is_finite() && *b >= 0.0)
                .ok_or_else(|| {
                    SettingsError::Invalid(
                        "router_settings.routing_strategy_args.lowest_latency_buffer: must be a number ≥ 0".into(),
                    )
                })?
                .min(100.0);
        }
        if let Some(secs) = rs.retry_after {
            // LiteLLM's `retry_after`: the minimum wait before a retry.
            s.retry_backoff = seconds(secs)
                .map_err(at("retry_after"))?
                .max(Duration::from_millis(1));
        }
        s.rules = std::sync::Arc::new(crate::rules::Rules::parse(rs.extra.get("routing_rules"))?);
        Ok(s)
    }

    /// Every group the settings name must exist.
    pub(crate) fn check(&self, exists: impl Fn(&str) -> bool) -> Result<(), SettingsError> {
        let named = [
            ("fallbacks", &self.fallbacks),
            ("context_window_fallbacks", &self.context_window_fallbacks),
            ("content_policy_fallbacks", &self.content_policy_fallbacks),
        ];
        for (setting, map) in named {
            for (from, to) in map {
                for group in std::iter::once(from).chain(to) {
                    if !exists(group) {
                        return Err(SettingsError::UnknownGroup {
                            setting,
                            group: group.clone(),
                        });
                    }
                }
            }
        }
        for group in self
            .default_fallbacks
            .iter()
            .chain(self.model_group_alias.values())
        {
            if !exists(group) {
                return Err(SettingsError::UnknownGroup {
                    setting: "default_fallbacks / model_group_alias",
                    group: group.clone(),
                });
            }
        }
        for group in self.rules.targets() {
            if !exists(group) {
                return Err(SettingsError::UnknownGroup {
                    setting: "routing_rules",
                    group: group.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Retries allowed after every member of a group failed with `class`.
    pub(crate) fn retries_for(&self, class: FailureClass) -> u32 {
        self.retry_policy.get(class).unwrap_or(self.num_retries)
    }
}

fn seconds(secs: f64) -> Result<Duration, SettingsError> {
    if secs.is_finite() && (0.0..=86_400.0).contains(&secs) {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(SettingsError::Invalid(
            "must be a number of seconds between 0 and 86400".into(),
        ))
    }
}

fn string_list(v: &Value) -> Result<Vec<String>, SettingsError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| SettingsError::Invalid("must list model names".into()))
            })
            .collect(),
        _ => Err(SettingsError::Invalid("must list model names".into())),
    }
}

/// LiteLLM's fallback lists: `[{"gpt-4": ["gpt-3.5", "claude"]}, ...]`.
pub fn fallback_map(list: &[Value]) -> Result<HashMap<String, Vec<String>>, SettingsError> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for entry in list {
        let Value::Object(map) = entry else {
            return Err(SettingsError::Invalid(
                "each entry must be a map of model_name: [fallback model names]".into(),
            ));
        };
        for (from, to) in map {
            out.entry(from.clone())
                .or_default()
                .extend(string_list(to)?);
        }
    }
    Ok(out)
}
