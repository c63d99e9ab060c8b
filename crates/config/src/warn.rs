//! Start-up warnings: everything in the file that Gatehouse reads but does not act on.
//!
//! The design rule is "never silently ignored": an existing LiteLLM config must load, and
//! whatever part of it we skip is listed with its path and line.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ConfigWarning;
use crate::lines::{LineIndex, child_index, child_key};
use crate::schema::{
    Config, GeneralSettings, LitellmParams, LitellmSettings, McpServerConfig, McpSettings,
    ModelInfo, RouterSettings, ToolsetConfig, ToolsetEntry, VirtualKeyConfig,
};

/// Settings keys Gatehouse implements, per section. Anything else set in these sections
/// — typed in the schema or not — is reported as "not supported yet". Extend a list
/// here when a feature lands, in the same change.
const IMPLEMENTED: &[(&str, &[&str])] = &[
    (
        "litellm_settings",
        &[
            "drop_params",
            "additional_drop_params",
            "num_retries",
            "request_timeout",
            "json_logs",
            "set_verbose",
            "master_key",
            "database_url",
            "mcp_aliases",
            "mcp_max_iterations",
            "cache",
            "cache_params",
            // Warned about per entry by `callbacks::warnings`.
            "callbacks",
            "success_callback",
            "failure_callback",
            // Router keys LiteLLM also reads here (crates/router/src/settings.rs).
            "fallbacks",
            "context_window_fallbacks",
            "content_policy_fallbacks",
            "default_fallbacks",
            "allowed_fails",
            "cooldown_time",
        ],
    ),
    (
        "router_settings",
        &[
            "routing_strategy",
            "routing_strategy_args",
            "num_retries",
            "retry_policy",
            "retry_after",
            "allowed_fails",
            "allowed_fails_policy",
            "cooldown_time",
            "fallbacks",
            "context_window_fallbacks",
            "content_policy_fallbacks",
            "default_fallbacks",
            "max_fallbacks",
            "model_group_alias",
            "enable_pre_call_checks",
            "enable_tag_filtering",
            "timeout",
            "redis_host",
            "redis_port",
            "redis_password",
            "redis_url",
            "routing_rules",
        ],
    ),
    (
        "general_settings",
        &[
            "master_key",
            "database_url",
            "allowed_origins",
            "allowed_hosts",
            "max_request_size_mb",
            "disable_spend_logs",
            "background_health_checks",
            "health_check_interval",
        ],
    ),
];

/// LiteLLM keys we know and do not implement: never "corrected" into one of ours
/// (`callbacks` is not a typo of `fallbacks`).
const LITELLM_UNSUPPORTED: &[&str] = &[
    "callbacks",
    "success_callback",
    "failure_callback",
    "service_callback",
    "callback_settings",
    "guardrails",
    "turn_off_message_logging",
    "redact_user_api_key_info",
    "default_team_settings",
    "alerting",
    "alerting_threshold",
    "max_budget",
    "budget_duration",
    "allow_requests_on_db_unavailable",
    "proxy_batch_write_at",
    "environment_variables",
];

const NOT_SUPPORTED: &str = "not supported yet, ignored";

/// Field names of a schema struct, read from its serialized default so this list can
/// never drift from the struct.
fn fields<T: Default + Serialize>() -> Vec<String> {
    match serde_json::to_value(T::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn suggest<'a>(key: &str, candidates: &'a [String]) -> Option<&'a str> {
    if LITELLM_UNSUPPORTED.contains(&key) {
        return None;
    }
    candidates
        .iter()
        .map(|c| (c.as_str(), strsim::damerau_levenshtein(key, c)))
        .filter(|(c, d)| *d > 0 && *d <= 2 && c.len() > 3)
        .min_by_key(|(_, d)| *d)
        .map(|(c, _)| c)
}

struct Collector<'a> {
    lines: &'a LineIndex,
    out: Vec<ConfigWarning>,
}

impl Collector<'_> {
    fn push(&mut self, path: String, message: String) {
        self.out.push(ConfigWarning {
            line: self.lines.line(&path),
            path,
            message,
        });
    }

    /// One warning per unknown key, with a did-you-mean when it looks like a typo.
    fn extras(&mut self, parent: &str, extra: &Map<String, Value>, known: &[String]) {
        for key in extra.keys() {
            let message = match suggest(key, known) {
                Some(s) => format!("unknown key, ignored (did you mean \"{s}\"?)"),
                None => NOT_SUPPORTED.to_string(),
            };
            self.push(child_key(parent, key), message);
        }
    }
}

/// Warnings for unknown and not-yet-implemented keys. `raw` is the substituted document,
/// used to see which settings keys were actually written.
pub(crate) fn unsupported_keys(
    config: &Config,
    raw: &Value,
    lines: &LineIndex,
) -> Vec<ConfigWarning> {
    let mut c = Collector {
        lines,
        out: Vec::new(),
    };

    let top: Vec<String> = [
        "model_list",
        "litellm_settings",
        "router_settings",
        "general_settings",
        "mcp_servers",
        "mcp_settings",
        "toolsets",
        "virtual_keys",
    ]
    .map(String::from)
    .to_vec();
    c.extras("", &config.extra, &top);

    for (section, implemented) in IMPLEMENTED {
        let known = match *section {
            "litellm_settings" => fields::<LitellmSettings>(),
            "router_settings" => fields::<RouterSettings>(),
            _ => fields::<GeneralSettings>(),
        };
        let Some(Value::Object(written)) = raw.get(section) else {
            continue;
        };
        for (key, value) in written {
            // `cache: false` asks for nothing we lack.
            if implemented.contains(&key.as_str()) || *value == Value::Bool(false) {
                continue;
            }
            let message = match (known.contains(key), suggest(key, &known)) {
                (false, Some(s)) => format!("unknown key, ignored (did you mean \"{s}\"?)"),
                _ => NOT_SUPPORTED.to_string(),
            };
            c.push(child_key(section, key), message);
        }
    }

    let entry_fields: Vec<String> = ["model_name", "litellm_params", "model_info"]
        .map(String::from)
        .to_vec();
    let param_fields = fields::<LitellmParams>();
    let info_fields = fields::<ModelInfo>();
    for (i, m) in config.model_list.iter().enumerate() {
        let path = child_index("model_list", i);
        c.extras(&path, &m.extra, &entry_fields);
        // Unknown litellm_params are provider parameters and are forwarded on purpose;
        // only a near-miss of one of our own fields is worth a word.
        let params = child_key(&path, "litellm_params");
        for key in m.litellm_params.extra.keys() {
            if let Some(s) = suggest(key, &param_fields) {
                c.push(
                    child_key(&params, key),
                    format!("sent to the provider as a request parameter; did you mean \"{s}\"?"),
                );
            }
        }
        c.extras(
            &child_key(&path, "model_info"),
            &m.model_info.extra,
            &info_fields,
        );
    }

    let server_fields = fields::<McpServerConfig>();
    for (name, s) in &config.mcp_servers {
        c.extras(&child_key("mcp_servers", name), &s.extra, &server_fields);
    }

    c.extras(
        "mcp_settings",
        &config.mcp_settings.extra,
        &fields::<McpSettings>(),
    );
    let toolset_fields = fields::<ToolsetConfig>();
    let entry_fields = fields::<ToolsetEntry>();
    for (name, t) in &config.toolsets {
        let path = child_key("toolsets", name);
        c.extras(&path, &t.extra, &toolset_fields);
        for (i, e) in t.tools.iter().enumerate() {
            c.extras(
                &child_index(&child_key(&path, "tools"), i),
                &e.extra,
                &entry_fields,
            );
        }
    }

    let key_fields = fields::<VirtualKeyConfig>();
    for (i, k) in config.virtual_keys.iter().enumerate() {
        c.extras(&child_index("virtual_keys", i), &k.extra, &key_fields);
    }
    c.out
}

/// Real LiteLLM configs put `master_key` and `database_url` under `litellm_settings`;
/// `general_settings` is canonical. Copies the value over when the canonical one is
/// empty, and says so.
pub(crate) fn migrate_legacy(config: &mut Config, lines: &LineIndex) -> Vec<ConfigWarning> {
    let mut out = Vec::new();
    let general = &mut config.general_settings;
    let legacy = &config.litellm_settings;
    for (name, from, to) in [
        ("master_key", &legacy.master_key, &mut general.master_key),
        (
            "database_url",
            &legacy.database_url,
            &mut general.database_url,
        ),
    ] {
        let Some(value) = from else { continue };
        let message = match to {
            None => {
                *to = Some(value.clone());
                format!("general_settings.{name} is the canonical place; using this value")
            }
            Some(existing) if existing == value => {
                format!("duplicate of general_settings.{name}, which is the canonical place")
            }
            Some(_) => format!("ignored: general_settings.{name} is set and takes precedence"),
        };
        let path = format!("litellm_settings.{name}");
        out.push(ConfigWarning {
            line: lines.line(&path),
            path,
            message,
        });
    }
    out
}
