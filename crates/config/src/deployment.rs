//! A `model_list` entry with its provider resolved.

use crate::provider::{Provider, resolve};
use crate::schema::{Config, LitellmParams, ModelInfo};

/// One deployment, ready for the router: which provider, which upstream model id.
#[derive(Debug, Clone)]
pub struct ResolvedDeployment {
    /// The public model (group) name clients send.
    pub model_name: String,
    /// Position in `model_list`, for messages and stable ids.
    pub index: usize,
    /// The resolved provider (prefix, `custom_llm_provider` or inferred from the name).
    pub provider: &'static Provider,
    /// The model id sent upstream (provider prefix stripped).
    pub upstream_model: String,
    /// The entry's `litellm_params`, after substitution (provider parameters in `extra`).
    pub params: LitellmParams,
    /// The entry's `model_info`.
    pub model_info: ModelInfo,
}

impl ResolvedDeployment {
    /// `api_base` from the config, else the provider's default.
    pub fn api_base(&self) -> Option<&str> {
        self.params
            .api_base
            .as_deref()
            .or(self.provider.default_api_base)
    }
}

/// Resolves every entry whose provider is known; validation reports the others.
pub(crate) fn resolve_all(config: &Config) -> Vec<ResolvedDeployment> {
    config
        .model_list
        .iter()
        .enumerate()
        .filter_map(|(index, m)| {
            let p = &m.litellm_params;
            let (provider, upstream_model) =
                resolve(&p.model, p.custom_llm_provider.as_deref()).ok()?;
            Some(ResolvedDeployment {
                model_name: m.model_name.clone(),
                index,
                provider,
                upstream_model,
                params: p.clone(),
                model_info: m.model_info.clone(),
            })
        })
        .collect()
}
