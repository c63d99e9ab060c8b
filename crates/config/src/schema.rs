//! The typed shape of `config.yaml` — LiteLLM's proxy format plus `virtual_keys`.
//!
//! Every section keeps the keys it does not know in an `extra` map so the loader can
//! report them as ignored at start-up instead of dropping them silently.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The whole configuration file, after environment substitution.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Config {
    pub model_list: Vec<ModelEntry>,
    pub litellm_settings: LitellmSettings,
    pub router_settings: RouterSettings,
    pub general_settings: GeneralSettings,
    pub mcp_servers: IndexMap<String, McpServerConfig>,
    /// Gatehouse's MCP endpoint settings (sessions, catalog mode, sealing secret).
    pub mcp_settings: McpSettings,
    /// Named bundles of tools from several MCP servers, served at `/toolset/<name>/mcp`.
    pub toolsets: IndexMap<String, ToolsetConfig>,
    pub virtual_keys: Vec<VirtualKeyConfig>,
    /// Top-level sections we do not know (reported as ignored).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One deployment: a public `model_name` backed by one upstream model.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ModelEntry {
    pub model_name: String,
    pub litellm_params: LitellmParams,
    #[serde(default)]
    pub model_info: ModelInfo,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// How to reach the upstream model. Unknown keys are provider parameters that are
/// forwarded into every request body (LiteLLM does the same), so they live in `extra`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LitellmParams {
    /// `provider/model` or a bare well-known model name.
    pub model: String,
    pub custom_llm_provider: Option<String>,
    pub api_base: Option<String>,
    pub api_key: Option<String>,
    pub api_version: Option<String>,
    pub organization: Option<String>,
    /// Seconds for the whole request.
    pub timeout: Option<f64>,
    /// Seconds to the first byte of a stream.
    pub stream_timeout: Option<f64>,
    pub max_retries: Option<u32>,
    pub weight: Option<f64>,
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub headers: Option<IndexMap<String, String>>,
    pub aws_access_key_id: Option<String>,
    pub aws_secret_access_key: Option<String>,
    pub aws_session_token: Option<String>,
    pub aws_region_name: Option<String>,
    pub vertex_project: Option<String>,
    pub vertex_location: Option<String>,
    /// Provider parameters (temperature, max_tokens, thinking, safety_settings, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ModelInfo {
    pub id: Option<String>,
    pub mode: Option<String>,
    pub base_model: Option<String>,
    pub max_tokens: Option<u64>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    pub access_groups: Vec<String>,
    /// MCP servers attached to every request for this model.
    pub mcp_servers: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LitellmSettings {
    pub drop_params: Option<bool>,
    pub additional_drop_params: Vec<String>,
    pub num_retries: Option<u32>,
    pub request_timeout: Option<f64>,
    pub json_logs: Option<bool>,
    pub set_verbose: Option<bool>,
    /// Accepted with a warning: real configs put it here; `general_settings` is canonical.
    pub master_key: Option<String>,
    /// Accepted with a warning, as `master_key`.
    pub database_url: Option<String>,
    pub mcp_aliases: IndexMap<String, String>,
    pub mcp_max_iterations: Option<u32>,
    pub fallbacks: Vec<Value>,
    pub context_window_fallbacks: Vec<Value>,
    pub cache: Option<bool>,
    pub cache_params: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RouterSettings {
    pub routing_strategy: Option<String>,
    pub num_retries: Option<u32>,
    pub timeout: Option<f64>,
    pub retry_after: Option<f64>,
    pub allowed_fails: Option<u32>,
    pub cooldown_time: Option<f64>,
    pub fallbacks: Vec<Value>,
    pub context_window_fallbacks: Vec<Value>,
    pub redis_host: Option<String>,
    pub redis_port: Option<u16>,
    pub redis_password: Option<String>,
    pub redis_url: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct GeneralSettings {
    pub master_key: Option<String>,
    pub database_url: Option<String>,
    /// CORS origins allowed to call the API from a browser.
    pub allowed_origins: Vec<String>,
    /// Extra `Host` names accepted by the MCP endpoint (LAN names).
    pub allowed_hosts: Vec<String>,
    pub max_request_size_mb: Option<f64>,
    pub max_response_size_mb: Option<f64>,
    pub store_model_in_db: Option<bool>,
    /// LiteLLM's switch to stop writing per-request spend rows (keys, budgets and limits
    /// still apply; budgets then see no new spend).
    pub disable_spend_logs: Option<bool>,
    /// Probe every deployment in the background (a one-token chat request); failures
    /// feed cooldowns and `/health`.
    pub background_health_checks: Option<bool>,
    /// Seconds between background health checks (LiteLLM's default: 300).
    pub health_check_interval: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One upstream MCP server under `mcp_servers:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct McpServerConfig {
    /// `stdio`, `http` (also `streamable_http`, `streamable-http`), or `sse`.
    /// Absent: `stdio` when `command` is set, else `http`.
    pub transport: Option<String>,
    pub url: Option<String>,
    pub command: Option<String>,
    pub args: Vec<String>,
    pub env: IndexMap<String, String>,
    pub cwd: Option<String>,
    pub headers: IndexMap<String, String>,
    pub description: Option<String>,
    /// Keys allowed to use this server; absent means every key.
    pub api_keys: Option<Vec<String>>,
    /// `never` (default) or `always`.
    pub require_approval: Option<String>,
    pub allowed_tools: Option<Vec<String>>,
    pub disallowed_tools: Option<Vec<String>>,
    /// Seconds a single tool call may take.
    pub timeout: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `mcp_settings:` — the MCP endpoint's limits and modes (Gatehouse's own section).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct McpSettings {
    /// Live MCP sessions in all (default 1024): the ceiling.
    pub max_sessions: Option<usize>,
    /// Live MCP sessions per key (default 64).
    pub max_sessions_per_key: Option<usize>,
    /// Seconds without a request after which a session without an open stream ends
    /// (default 1800).
    pub session_idle_seconds: Option<f64>,
    /// Seconds without a request or event after which a session with an open GET stream
    /// ends, closing the stream (default 3600).
    pub stream_idle_seconds: Option<f64>,
    /// `full` (default: every tool's schema) or `lazy` (three tools: search, describe,
    /// call) for every MCP endpoint; a key's `metadata.mcp_catalog` or `?catalog=` on the
    /// URL choose per key or per connection.
    pub catalog: Option<String>,
    /// Secret that seals handshake-era session ids so any replica can resume them
    /// (default: derived from the master key).
    pub session_secret: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One toolset under `toolsets:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ToolsetConfig {
    pub description: Option<String>,
    /// The servers it draws from, each with the tools it takes (absent: all of them).
    pub tools: Vec<ToolsetEntry>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `{server, tools}` in a toolset.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ToolsetEntry {
    /// An MCP server name or alias.
    pub server: String,
    /// Tool names (unprefixed) on that server; absent means every tool it offers.
    pub tools: Option<Vec<String>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A key declared in config; upserted into the key store at every start-up.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct VirtualKeyConfig {
    pub api_key: String,
    pub key_alias: Option<String>,
    pub models: Vec<String>,
    pub mcp_servers: Option<Vec<String>>,
    pub max_budget: Option<f64>,
    pub budget_duration: Option<String>,
    pub rpm_limit: Option<u64>,
    pub tpm_limit: Option<u64>,
    pub max_parallel_requests: Option<u64>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub metadata: Option<Value>,
    pub blocked: Option<bool>,
    pub expires: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
