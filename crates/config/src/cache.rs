//! `litellm_settings.cache` and `cache_params`, read as LiteLLM reads them: which backend
//! (`local` or `redis`), how long answers live, which APIs are cached and whether caching
//! is on by default. What LiteLLM has and we do not (s3, disk, semantic caches, cluster
//! nodes, ...) is warned about by name, never silently ignored.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::lines::child_key;
use crate::schema::Config;

/// The response cache as configured; `None` from [`settings`] when caching is off.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheSettings {
    pub backend: CacheBackend,
    /// Prefix of every key (`<namespace>:<hash>`), per request overridable.
    pub namespace: Option<String>,
    /// How long an answer stays when the request does not say (`ttl`).
    pub ttl: Duration,
    pub call_types: Vec<CallType>,
    /// `mode: default_off`: only requests that opt in are cached.
    pub default_off: bool,
    /// The in-process cache's bounds (`max_size_in_memory` entries, `max_memory_bytes`).
    pub max_entries: usize,
    pub max_bytes: usize,
    /// Answers larger than this are not stored (`max_item_bytes`).
    pub max_item_bytes: usize,
    /// Whether the body's `user` is part of the key (`key_includes_user`).
    pub key_includes_user: bool,
    /// MCP tools whose calls do not make an answer uncacheable: `server/tool` or `server/*`.
    pub cacheable_tools: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheBackend {
    Local,
    /// Explicit connection settings; all empty means the gateway's Redis (`REDIS_URL`,
    /// `router_settings.redis_*`).
    Redis {
        host: Option<String>,
        port: Option<u16>,
        password: Option<String>,
        url: Option<String>,
    },
}

/// The inbound APIs a cache can serve (`supported_call_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallType {
    ChatCompletions,
    Embeddings,
    Responses,
    Messages,
}

impl CallType {
    pub const ALL: [CallType; 4] = [
        CallType::ChatCompletions,
        CallType::Embeddings,
        CallType::Responses,
        CallType::Messages,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallType::ChatCompletions => "chat_completions",
            CallType::Embeddings => "embeddings",
            CallType::Responses => "responses",
            CallType::Messages => "messages",
        }
    }

    /// LiteLLM's call type names (sync and async spellings) and ours.
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "completion" | "acompletion" | "chat_completions" => CallType::ChatCompletions,
            "embedding" | "aembedding" | "embeddings" => CallType::Embeddings,
            "responses" | "aresponses" => CallType::Responses,
            "anthropic_messages" | "messages" => CallType::Messages,
            _ => return None,
        })
    }
}

const DEFAULT_TTL: Duration = Duration::from_secs(600);
const DEFAULT_ENTRIES: usize = 1000;
const DEFAULT_BYTES: usize = 64 << 20;
const DEFAULT_ITEM_BYTES: usize = 1 << 20;

/// LiteLLM `cache_params` keys we know and do not implement.
const UNSUPPORTED: &[&str] = &[
    "redis_startup_nodes",
    "service_name",
    "sentinel_nodes",
    "similarity_threshold",
    "redis_semantic_cache_embedding_model",
    "redis_semantic_cache_index_name",
    "qdrant_semantic_cache_embedding_model",
    "qdrant_collection_name",
    "qdrant_quantization_config",
    "s3_bucket_name",
    "s3_region_name",
    "s3_api_version",
    "s3_path",
    "s3_endpoint_url",
    "s3_aws_access_key_id",
    "s3_aws_secret_access_key",
    "s3_aws_session_token",
    "s3_config",
    "disk_cache_dir",
    "gcs_bucket_name",
    "gcs_path_service_account",
    "azure_account_url",
    "azure_blob_container",
    "max_connections",
    "redis_flush_size",
];

/// A warning about the cache settings: the dotted config path and what is wrong.
pub type CacheWarning = (String, String);

/// The cache the config asks for, and what in it is not supported (config load turns
/// these into warnings with line numbers). Caching is on when `litellm_settings.cache`
/// is true.
pub fn settings(config: &Config) -> (Option<CacheSettings>, Vec<CacheWarning>) {
    let ls = &config.litellm_settings;
    let mut w = Warnings { out: Vec::new() };
    let empty = Map::new();
    let params = match &ls.cache_params {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => {
            w.push("cache_params", "must be a mapping; the cache is off".into());
            return (None, w.out);
        }
    };
    if ls.cache != Some(true) {
        if !params.is_empty() {
            w.push(
                "cache_params",
                "ignored: litellm_settings.cache is not true".into(),
            );
        }
        return (None, w.out);
    }
    let str_of = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
    let backend = match str_of("type").as_deref().unwrap_or("local") {
        "local" | "in-memory" | "memory" => CacheBackend::Local,
        "redis" => CacheBackend::Redis {
            host: str_of("host"),
            port: params
                .get("port")
                .and_then(|p| p.as_u64().or_else(|| p.as_str()?.parse().ok()))
                .and_then(|p| u16::try_from(p).ok()),
            password: str_of("password"),
            url: str_of("url").or_else(|| str_of("redis_url")),
        },
        other => {
            w.push(
                "cache_params.type",
                format!(
                    "cache type '{other}' is not supported (local and redis are); the cache is off"
                ),
            );
            return (None, w.out);
        }
    };
    let secs = |key: &str, w: &mut Warnings| -> Option<Duration> {
        let v = params.get(key)?;
        match v.as_f64() {
            Some(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s.min(1e9))),
            _ => {
                w.push(
                    &format!("cache_params.{key}"),
                    "must be a positive number of seconds; using the default".into(),
                );
                None
            }
        }
    };
    let backend_ttl_key = match backend {
        CacheBackend::Local => "default_in_memory_ttl",
        CacheBackend::Redis { .. } => "default_in_redis_ttl",
    };
    let ttl = secs("ttl", &mut w)
        .or_else(|| secs(backend_ttl_key, &mut w))
        .unwrap_or(DEFAULT_TTL);
    let size = |key: &str, default: usize, w: &mut Warnings| -> usize {
        match params.get(key) {
            None => default,
            Some(v) => match v.as_u64().filter(|n| *n > 0) {
                Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
                None => {
                    w.push(
                        &format!("cache_params.{key}"),
                        "must be a positive whole number; using the default".into(),
                    );
                    default
                }
            },
        }
    };
    let max_entries = size("max_size_in_memory", DEFAULT_ENTRIES, &mut w);
    let max_bytes = size("max_memory_bytes", DEFAULT_BYTES, &mut w);
    let max_item_bytes = size("max_item_bytes", DEFAULT_ITEM_BYTES, &mut w);
    let call_types = match params.get("supported_call_types") {
        None => CallType::ALL.to_vec(),
        Some(Value::Array(names)) => {
            let mut out = Vec::new();
            for name in names {
                let name = name.as_str().unwrap_or_default();
                match CallType::parse(name) {
                    Some(t) if !out.contains(&t) => out.push(t),
                    Some(_) => {}
                    None => w.push(
                        "cache_params.supported_call_types",
                        format!("call type '{name}' is not cached by Gatehouse (chat completions, embeddings, responses and anthropic_messages are)"),
                    ),
                }
            }
            out
        }
        Some(_) => {
            w.push(
                "cache_params.supported_call_types",
                "must be a list; caching every supported call type".into(),
            );
            CallType::ALL.to_vec()
        }
    };
    let default_off = match str_of("mode").as_deref() {
        None | Some("default_on") => false,
        Some("default_off") => true,
        Some(other) => {
            w.push(
                "cache_params.mode",
                format!("mode '{other}' is unknown (default_on, default_off); using default_on"),
            );
            false
        }
    };
    let cacheable_tools = match params.get("cacheable_tools") {
        Some(Value::Array(v)) => v
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
        Some(_) => {
            w.push(
                "cache_params.cacheable_tools",
                "must be a list of server/tool names; no tool is cacheable".into(),
            );
            Vec::new()
        }
    };
    let known = [
        "type",
        "host",
        "port",
        "password",
        "url",
        "redis_url",
        "namespace",
        "ttl",
        "default_in_memory_ttl",
        "default_in_redis_ttl",
        "supported_call_types",
        "mode",
        "max_size_in_memory",
        "max_memory_bytes",
        "max_item_bytes",
        "key_includes_user",
        "cacheable_tools",
    ];
    for key in params.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        let message = if UNSUPPORTED.contains(&key.as_str()) {
            "not supported yet, ignored"
        } else {
            "unknown cache parameter, ignored"
        };
        w.push(&child_key("cache_params", key), message.into());
    }
    let settings = CacheSettings {
        backend,
        namespace: str_of("namespace").filter(|n| !n.is_empty()),
        ttl,
        call_types,
        default_off,
        max_entries,
        max_bytes,
        max_item_bytes,
        key_includes_user: params
            .get("key_includes_user")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        cacheable_tools,
    };
    (Some(settings), w.out)
}

impl CacheSettings {
    /// Whether a call of `server`'s `tool` leaves the answer cacheable.
    pub fn tool_cacheable(&self, server: &str, tool: &str) -> bool {
        self.cacheable_tools.iter().any(|entry| {
            entry
                .split_once('/')
                .is_some_and(|(s, t)| s == server && (t == "*" || t == tool))
        })
    }
}

struct Warnings {
    out: Vec<CacheWarning>,
}

impl Warnings {
    fn push(&mut self, path: &str, message: String) {
        self.out
            .push((child_key("litellm_settings", path), message));
    }
}
