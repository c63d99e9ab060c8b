//! Turning `virtual_keys:` entries from config.yaml into key records.

use chrono::{DateTime, Utc};
use gatehouse_config::schema::VirtualKeyConfig;
use serde_json::Value;

use crate::time::{add_budget_duration, parse_instant};
use crate::{KeyRecord, KeySource, StoreError};

/// The record a config entry describes. Errors name the entry by alias or position,
/// never by the key itself.
pub(crate) fn record_from_config(
    index: usize,
    vk: &VirtualKeyConfig,
    now: DateTime<Utc>,
) -> Result<KeyRecord, StoreError> {
    let label = match &vk.key_alias {
        Some(a) => format!("virtual_keys[{index}] ({a})"),
        None => format!("virtual_keys[{index}]"),
    };
    if vk.api_key.trim().is_empty() {
        return Err(StoreError::invalid(format!("{label}.api_key"), "is empty"));
    }
    let mut rec = KeyRecord::new(&vk.api_key, KeySource::Config, now);
    rec.key_alias = vk.key_alias.clone();
    rec.models = vk.models.clone();
    rec.mcp_servers = vk.mcp_servers.clone();
    rec.max_budget = vk.max_budget;
    rec.budget_duration = vk.budget_duration.clone();
    if let Some(d) = &vk.budget_duration {
        rec.budget_reset_at =
            Some(add_budget_duration(now, d).map_err(|e| {
                StoreError::invalid(format!("{label}.budget_duration"), e.to_string())
            })?);
    }
    rec.rpm_limit = vk.rpm_limit;
    rec.tpm_limit = vk.tpm_limit;
    rec.max_parallel_requests = vk.max_parallel_requests;
    rec.user_id = vk.user_id.clone();
    rec.team_id = vk.team_id.clone();
    rec.metadata = vk
        .metadata
        .clone()
        .unwrap_or_else(|| Value::Object(Default::default()));
    rec.blocked = vk.blocked.unwrap_or(false);
    if let Some(e) = &vk.expires {
        rec.expires_at = Some(parse_instant(&format!("{label}.expires"), e)?);
    }
    Ok(rec)
}
