//! The key admin API in LiteLLM's paths and JSON shapes, so its tooling works:
//! `/key/generate`, `/key/info`, `/key/update`, `/key/delete`, `/key/block`,
//! `/key/unblock`, `/key/regenerate`, `/key/list`, and `/spend/logs`. Master key only — except `/key/info`, which a key may
//! ask about itself.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Path, Query, State};
use chrono::{DateTime, Utc};
use gatehouse_store::{KeyFilter, KeyRecord, KeySource, KeyUpdate, LogFilter, StoreError};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::{Caller, hash_key};
use crate::error::ApiError;
use crate::request::{parse_object, read_body};
use crate::state::{AppState, Persistence};

/// Admin bodies are small; a fixed limit keeps them from being a memory lever.
const ADMIN_BODY_LIMIT: usize = 1024 * 1024;

fn persistence(state: &AppState) -> Result<&Persistence, ApiError> {
    state
        .persistence
        .as_deref()
        .ok_or_else(|| ApiError::NotImplemented("no key store is configured".into()))
}

fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    if caller.is_admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "only the master key may manage keys".into(),
        ))
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound("key not found".into()),
        StoreError::AlreadyExists => {
            ApiError::BadRequest("a key with this value already exists".into())
        }
        StoreError::Invalid { field, reason } => ApiError::BadRequest(format!("{field}: {reason}")),
        other => ApiError::Internal(format!("key store: {other}")),
    }
}

/// A key given as the secret (`sk-...`) or as its SHA-256 hex, as LiteLLM accepts both.
fn key_hash_of(value: &str) -> String {
    let v = value.trim();
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        v.to_ascii_lowercase()
    } else {
        hash_key(v)
    }
}

/// A key's public view: never the secret; `token` is its hash (LiteLLM's field).
fn key_view(k: &KeyRecord) -> Value {
    json!({
        "token": k.token_hash,
        "key_name": k.key_prefix_display,
        "key_alias": k.key_alias,
        "models": k.models,
        "mcp_servers": k.mcp_servers,
        "spend": k.spend,
        "max_budget": k.max_budget,
        "budget_duration": k.budget_duration,
        "budget_reset_at": k.budget_reset_at,
        "rpm_limit": k.rpm_limit,
        "tpm_limit": k.tpm_limit,
        "max_parallel_requests": k.max_parallel_requests,
        "expires": k.expires_at,
        "metadata": k.metadata,
        "user_id": k.user_id,
        "team_id": k.team_id,
        "blocked": k.blocked,
        "source": k.source.as_str(),
        "created_at": k.created_at,
        "updated_at": k.updated_at,
    })
}

async fn body_object(body: Body) -> Result<Map<String, Value>, ApiError> {
    let bytes = read_body(body, ADMIN_BODY_LIMIT, 1.0).await?;
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    parse_object(&bytes)
}

fn opt_string(v: &Value, field: &'static str) -> Result<Option<String>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ApiError::InvalidParam {
            message: format!("{field} must be a string"),
            param: field,
        }),
    }
}

fn opt_u64(v: &Value, field: &'static str) -> Result<Option<u64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        v => v.as_u64().map(Some).ok_or_else(|| ApiError::InvalidParam {
            message: format!("{field} must be a non-negative integer"),
            param: field,
        }),
    }
}

fn opt_f64(v: &Value, field: &'static str) -> Result<Option<f64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        v => v
            .as_f64()
            .filter(|f| *f >= 0.0)
            .map(Some)
            .ok_or_else(|| ApiError::InvalidParam {
                message: format!("{field} must be a non-negative number"),
                param: field,
            }),
    }
}

fn strings(v: &Value, field: &'static str) -> Result<Vec<String>, ApiError> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => a
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::InvalidParam {
                message: format!("{field} must be a list of strings"),
                param: field,
            }),
        _ => Err(ApiError::InvalidParam {
            message: format!("{field} must be a list of strings"),
            param: field,
        }),
    }
}

/// `duration` ("30d", "1h") from now, or an explicit `expires` instant.
fn expiry(
    body: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<Option<Option<DateTime<Utc>>>, ApiError> {
    if let Some(d) = body.get("duration") {
        return match opt_string(d, "duration")? {
            None => Ok(Some(None)),
            Some(spec) => gatehouse_store::add_budget_duration(now, &spec)
                .map(|t| Some(Some(t)))
                .map_err(|e| ApiError::InvalidParam {
                    message: format!("duration: {e}"),
                    param: "duration",
                }),
        };
    }
    if let Some(e) = body.get("expires") {
        return match opt_string(e, "expires")? {
            None => Ok(Some(None)),
            Some(s) => gatehouse_store::parse_instant("expires", &s)
                .map(|t| Some(Some(t)))
                .map_err(|e| ApiError::InvalidParam {
                    message: e.to_string(),
                    param: "expires",
                }),
        };
    }
    Ok(None)
}

/// The MCP servers in a body: ours (`mcp_servers`) or LiteLLM's `object_permission`.
fn mcp_servers_of(body: &Map<String, Value>) -> Option<&Value> {
    body.get("mcp_servers").or_else(|| {
        body.get("object_permission")
            .and_then(|o| o.get("mcp_servers"))
    })
}

/// Reads the fields of a generate/update body; only fields present change.
fn key_update(
    state: &AppState,
    body: &Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<KeyUpdate, ApiError> {
    let mut u = KeyUpdate::default();
    if let Some(v) = body.get("key_alias") {
        u.key_alias = Some(opt_string(v, "key_alias")?);
    }
    if let Some(v) = body.get("models") {
        u.models = Some(strings(v, "models")?);
    }
    if let Some(v) = mcp_servers_of(body) {
        let servers = match v {
            Value::Null => None,
            v => Some(strings(v, "mcp_servers")?),
        };
        for s in servers.iter().flatten() {
            if state.hub.resolve(s).is_none() {
                return Err(ApiError::InvalidParam {
                    message: format!(
                        "unknown MCP server '{s}'; configured: {}",
                        state.hub.server_names().join(", ")
                    ),
                    param: "mcp_servers",
                });
            }
        }
        u.mcp_servers =
            Some(servers.map(|s| s.iter().filter_map(|n| state.hub.resolve(n)).collect()));
    }
    if let Some(v) = body.get("max_budget") {
        u.max_budget = Some(opt_f64(v, "max_budget")?);
    }
    if let Some(v) = body.get("budget_duration") {
        let d = opt_string(v, "budget_duration")?;
        if let Some(spec) = &d {
            gatehouse_store::add_budget_duration(now, spec).map_err(|e| {
                ApiError::InvalidParam {
                    message: format!("budget_duration: {e}"),
                    param: "budget_duration",
                }
            })?;
        }
        u.budget_duration = Some(d);
    }
    if let Some(v) = body.get("spend") {
        u.spend = opt_f64(v, "spend")?;
    }
    if let Some(v) = body.get("rpm_limit") {
        u.rpm_limit = Some(opt_u64(v, "rpm_limit")?);
    }
    if let Some(v) = body.get("tpm_limit") {
        u.tpm_limit = Some(opt_u64(v, "tpm_limit")?);
    }
    if let Some(v) = body.get("max_parallel_requests") {
        u.max_parallel_requests = Some(opt_u64(v, "max_parallel_requests")?);
    }
    u.expires_at = expiry(body, now)?;
    if let Some(v) = body.get("metadata") {
        u.metadata = Some(if v.is_null() { json!({}) } else { v.clone() });
    }
    if let Some(v) = body.get("user_id") {
        u.user_id = Some(opt_string(v, "user_id")?);
    }
    if let Some(v) = body.get("team_id") {
        u.team_id = Some(opt_string(v, "team_id")?);
    }
    if let Some(v) = body.get("blocked") {
        u.blocked = Some(v.as_bool().ok_or_else(|| ApiError::InvalidParam {
            message: "blocked must be a boolean".into(),
            param: "blocked",
        })?);
    }
    Ok(u)
}

fn apply(record: &mut KeyRecord, u: KeyUpdate) {
    if let Some(v) = u.key_alias {
        record.key_alias = v;
    }
    if let Some(v) = u.models {
        record.models = v;
    }
    if let Some(v) = u.mcp_servers {
        record.mcp_servers = v;
    }
    if let Some(v) = u.max_budget {
        record.max_budget = v;
    }
    if let Some(v) = u.budget_duration {
        record.budget_duration = v;
    }
    if let Some(v) = u.spend {
        record.spend = v;
    }
    if let Some(v) = u.rpm_limit {
        record.rpm_limit = v;
    }
    if let Some(v) = u.tpm_limit {
        record.tpm_limit = v;
    }
    if let Some(v) = u.max_parallel_requests {
        record.max_parallel_requests = v;
    }
    if let Some(v) = u.expires_at {
        record.expires_at = v;
    }
    if let Some(v) = u.metadata {
        record.metadata = v;
    }
    if let Some(v) = u.user_id {
        record.user_id = v;
    }
    if let Some(v) = u.team_id {
        record.team_id = v;
    }
    if let Some(v) = u.blocked {
        record.blocked = v;
    }
}

pub async fn generate(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let p = persistence(&state)?;
    let body = body_object(body).await?;
    let now = Utc::now();
    let key = match body.get("key") {
        Some(Value::String(k)) if k.len() >= 8 => k.clone(),
        Some(Value::String(_)) => {
            return Err(ApiError::InvalidParam {
                message: "a custom key must be at least 8 characters".into(),
                param: "key",
            });
        }
        _ => gatehouse_store::generate_key(),
    };
    let mut record = KeyRecord::new(&key, KeySource::Api, now);
    let update = key_update(&state, &body, now)?;
    apply(&mut record, update);
    if let Some(spec) = record.budget_duration.clone() {
        record.budget_reset_at = gatehouse_store::add_budget_duration(now, &spec).ok();
    }
    let record = p.keys.insert(record).await.map_err(store_error)?;
    let mut out = key_view(&record);
    // Shown once: the only time the secret leaves the gateway.
    gatehouse_llm::json::set(&mut out, "key", json!(key));
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct InfoQuery {
    key: Option<String>,
}

pub async fn info(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<InfoQuery>,
) -> Result<Json<Value>, ApiError> {
    let p = persistence(&state)?;
    let hash = match (&q.key, &caller.key) {
        (Some(k), _) => key_hash_of(k),
        (None, Some(own)) => own.token_hash.clone(),
        (None, None) => {
            return Err(ApiError::InvalidParam {
                message: "pass ?key=<key or its hash>".into(),
                param: "key",
            });
        }
    };
    let own = caller.key.as_ref().is_some_and(|k| k.token_hash == hash);
    if !caller.is_admin && !own {
        return Err(ApiError::Forbidden(
            "a key may only ask about itself".into(),
        ));
    }
    let record = p
        .keys
        .lookup(&hash)
        .ok_or_else(|| ApiError::NotFound("key not found".into()))?;
    Ok(Json(json!({"key": hash, "info": key_view(&record)})))
}

pub async fn update(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let p = persistence(&state)?;
    let body = body_object(body).await?;
    let key = required_key(&body)?;
    let update = key_update(&state, &body, Utc::now())?;
    let record = p
        .keys
        .update(&key_hash_of(key), &update)
        .await
        .map_err(store_error)?;
    Ok(Json(key_view(&record)))
}

fn required_key(body: &Map<String, Value>) -> Result<&str, ApiError> {
    body.get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::InvalidParam {
            message: "key is required".into(),
            param: "key",
        })
}

/// LiteLLM's `/key/block`: `{"key": "<key or its hash>"}`, answers the key. A blocked
/// key declared in `virtual_keys` stays blocked across restarts (the store records it).
pub async fn block(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    set_blocked(&state, &caller, body, true).await
}

/// LiteLLM's `/key/unblock`, the inverse of [`block`].
pub async fn unblock(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    set_blocked(&state, &caller, body, false).await
}

async fn set_blocked(
    state: &AppState,
    caller: &Caller,
    body: Body,
    blocked: bool,
) -> Result<Json<Value>, ApiError> {
    require_admin(caller)?;
    let p = persistence(state)?;
    let body = body_object(body).await?;
    let update = KeyUpdate {
        blocked: Some(blocked),
        ..KeyUpdate::default()
    };
    let record = p
        .keys
        .update(&key_hash_of(required_key(&body)?), &update)
        .await
        .map_err(store_error)?;
    Ok(Json(key_view(&record)))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let p = persistence(&state)?;
    let body = body_object(body).await?;
    let mut hashes: Vec<String> = strings(body.get("keys").unwrap_or(&Value::Null), "keys")?
        .iter()
        .map(|k| key_hash_of(k))
        .collect();
    for alias in strings(
        body.get("key_aliases").unwrap_or(&Value::Null),
        "key_aliases",
    )? {
        let page = p
            .store
            .list(
                1,
                1000,
                &KeyFilter {
                    key_alias: Some(alias.clone()),
                    ..KeyFilter::default()
                },
            )
            .await
            .map_err(store_error)?;
        if page.keys.is_empty() {
            return Err(ApiError::NotFound(format!("no key with alias '{alias}'")));
        }
        hashes.extend(page.keys.into_iter().map(|k| k.token_hash));
    }
    if hashes.is_empty() {
        return Err(ApiError::InvalidParam {
            message: "pass keys or key_aliases".into(),
            param: "keys",
        });
    }
    let mut deleted = Vec::new();
    for hash in hashes {
        if p.keys.delete(&hash).await.map_err(store_error)? {
            deleted.push(hash);
        } else {
            return Err(ApiError::NotFound(format!(
                "key {}… not found",
                &hash[..12]
            )));
        }
    }
    Ok(Json(json!({"deleted_keys": deleted})))
}

async fn regenerate_hash(state: &AppState, hash: &str) -> Result<Json<Value>, ApiError> {
    let p = persistence(state)?;
    let (key, record) = p.keys.regenerate(hash).await.map_err(store_error)?;
    let mut out = key_view(&record);
    gatehouse_llm::json::set(&mut out, "key", json!(key));
    Ok(Json(out))
}

pub async fn regenerate(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let body = body_object(body).await?;
    let key = body
        .get("key")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::InvalidParam {
            message: "key is required".into(),
            param: "key",
        })?;
    regenerate_hash(&state, &key_hash_of(key)).await
}

/// LiteLLM's `POST /key/{key}/regenerate`.
pub async fn regenerate_path(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    regenerate_hash(&state, &key_hash_of(&key)).await
}

#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<u32>,
    size: Option<u32>,
    user_id: Option<String>,
    team_id: Option<String>,
    key_alias: Option<String>,
    return_full_object: Option<bool>,
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let p = persistence(&state)?;
    let page = q.page.unwrap_or(1).max(1);
    let size = q.size.unwrap_or(10).clamp(1, 1000);
    let filter = KeyFilter {
        user_id: q.user_id,
        team_id: q.team_id,
        key_alias: q.key_alias,
        source: None,
    };
    let result = p
        .store
        .list(page, size, &filter)
        .await
        .map_err(store_error)?;
    let keys: Vec<Value> = if q.return_full_object.unwrap_or(false) {
        result.keys.iter().map(key_view).collect()
    } else {
        result.keys.iter().map(|k| json!(k.token_hash)).collect()
    };
    let total_pages = result.total.div_ceil(u64::from(size));
    Ok(Json(json!({
        "keys": keys,
        "total_count": result.total,
        "current_page": page,
        "total_pages": total_pages,
    })))
}

#[derive(Deserialize)]
pub struct SpendQuery {
    api_key: Option<String>,
    start_date: Option<String>,
    end_date: Option<String>,
    limit: Option<u32>,
}

pub async fn spend_logs(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<SpendQuery>,
) -> Result<Json<Value>, ApiError> {
    require_admin(&caller)?;
    let p = persistence(&state)?;
    let when =
        |field: &'static str, v: Option<String>| -> Result<Option<DateTime<Utc>>, ApiError> {
            v.map(|s| {
                gatehouse_store::parse_instant(field, &s).map_err(|e| ApiError::InvalidParam {
                    message: e.to_string(),
                    param: field,
                })
            })
            .transpose()
        };
    let filter = LogFilter {
        key_hash: q.api_key.as_deref().map(key_hash_of),
        from: when("start_date", q.start_date)?,
        to: when("end_date", q.end_date)?,
        limit: q.limit.unwrap_or(100).clamp(1, 10_000),
    };
    let rows = p.store.spend_logs(&filter).await.map_err(store_error)?;
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "request_id": r.request_id,
                "api_key": r.key_hash,
                "model": r.model,
                "model_id": r.deployment,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "total_tokens": r.prompt_tokens + r.completion_tokens,
                "spend": r.cost,
                "request_duration_ms": r.latency_ms,
                "status": r.status,
                "mcp_calls": r.mcp_calls,
                // LiteLLM's spend logs spell it as a string.
                "cache_hit": if r.cache_hit { "True" } else { "False" },
                "startTime": r.created_at,
            })
        })
        .collect();
    Ok(Json(Value::Array(rows)))
}
