//! Which vendor API a `litellm_params.model` string talks to.

use serde::{Deserialize, Serialize};

/// The wire dialect an upstream speaks. Many LiteLLM provider prefixes share one dialect
/// (vLLM, Groq, DeepSeek, ... are all OpenAI-compatible), so the prefix is kept as `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    OpenAi,
    Anthropic,
    Gemini,
    Azure,
    Bedrock,
}

/// A resolved provider: LiteLLM's prefix, its dialect and default base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// LiteLLM's provider name, e.g. `openai`, `hosted_vllm`, `anthropic`.
    pub name: &'static str,
    pub dialect: Dialect,
    /// Base URL used when the config gives no `api_base`.
    pub default_api_base: Option<&'static str>,
    /// Environment variable holding the key when the config gives no `api_key`.
    pub key_env: Option<&'static str>,
}

macro_rules! providers {
    ($( $name:literal => $dialect:ident, $base:expr, $env:expr; )*) => {
        /// Every provider prefix Gatehouse understands.
        pub const PROVIDERS: &[Provider] = &[
            $( Provider { name: $name, dialect: Dialect::$dialect, default_api_base: $base, key_env: $env }, )*
        ];
    };
}

providers! {
    "openai" => OpenAi, Some("https://api.openai.com/v1"), Some("OPENAI_API_KEY");
    "text-completion-openai" => OpenAi, Some("https://api.openai.com/v1"), Some("OPENAI_API_KEY");
    "openai_like" => OpenAi, None, None;
    "custom_openai" => OpenAi, None, None;
    "hosted_vllm" => OpenAi, None, None;
    "vllm" => OpenAi, None, None;
    "llamacpp" => OpenAi, Some("http://127.0.0.1:8080/v1"), None;
    "lm_studio" => OpenAi, Some("http://127.0.0.1:1234/v1"), Some("LM_STUDIO_API_KEY");
    "ollama" => OpenAi, Some("http://127.0.0.1:11434/v1"), None;
    "ollama_chat" => OpenAi, Some("http://127.0.0.1:11434/v1"), None;
    "openrouter" => OpenAi, Some("https://openrouter.ai/api/v1"), Some("OPENROUTER_API_KEY");
    "groq" => OpenAi, Some("https://api.groq.com/openai/v1"), Some("GROQ_API_KEY");
    "deepseek" => OpenAi, Some("https://api.deepseek.com/v1"), Some("DEEPSEEK_API_KEY");
    "mistral" => OpenAi, Some("https://api.mistral.ai/v1"), Some("MISTRAL_API_KEY");
    "together_ai" => OpenAi, Some("https://api.together.xyz/v1"), Some("TOGETHERAI_API_KEY");
    "fireworks_ai" => OpenAi, Some("https://api.fireworks.ai/inference/v1"), Some("FIREWORKS_AI_API_KEY");
    "perplexity" => OpenAi, Some("https://api.perplexity.ai"), Some("PERPLEXITYAI_API_KEY");
    "xai" => OpenAi, Some("https://api.x.ai/v1"), Some("XAI_API_KEY");
    "cerebras" => OpenAi, Some("https://api.cerebras.ai/v1"), Some("CEREBRAS_API_KEY");
    "nvidia_nim" => OpenAi, Some("https://integrate.api.nvidia.com/v1"), Some("NVIDIA_NIM_API_KEY");
    "deepinfra" => OpenAi, Some("https://api.deepinfra.com/v1/openai"), Some("DEEPINFRA_API_KEY");
    "anthropic" => Anthropic, Some("https://api.anthropic.com"), Some("ANTHROPIC_API_KEY");
    "gemini" => Gemini, Some("https://generativelanguage.googleapis.com"), Some("GEMINI_API_KEY");
    "azure" => Azure, None, Some("AZURE_API_KEY");
    "bedrock" => Bedrock, Some("https://bedrock-runtime.{region}.amazonaws.com"), Some("AWS_BEARER_TOKEN_BEDROCK");
}

impl Provider {
    /// Looks a provider up by its LiteLLM prefix.
    pub fn by_name(name: &str) -> Option<&'static Provider> {
        PROVIDERS.iter().find(|p| p.name == name)
    }

    /// Infers the provider of a bare model name such as `gpt-4o` or `claude-3-haiku-20240307`.
    pub fn infer_from_model(model: &str) -> Option<&'static Provider> {
        let m = model.to_ascii_lowercase();
        let name = if m.starts_with("claude") {
            "anthropic"
        } else if m.starts_with("gemini") {
            "gemini"
        } else if m.starts_with("gpt-")
            || m.starts_with("chatgpt")
            || m.starts_with("text-embedding")
            || m.starts_with("o1")
            || m.starts_with("o3")
            || m.starts_with("o4")
            || m.starts_with("dall-e")
            || m.starts_with("whisper")
            || m.starts_with("tts-")
        {
            "openai"
        } else {
            return None;
        };
        Self::by_name(name)
    }

    /// The closest known provider name, for "did you mean" hints.
    pub fn suggest(name: &str) -> Option<&'static str> {
        PROVIDERS
            .iter()
            .map(|p| (p.name, strsim::damerau_levenshtein(name, p.name)))
            .filter(|(_, d)| *d <= 3)
            .min_by_key(|(_, d)| *d)
            .map(|(n, _)| n)
    }
}

/// Splits `litellm_params.model` into its provider and the model id sent upstream.
/// `custom_llm_provider` wins over a prefix, as in LiteLLM.
pub fn resolve(
    model: &str,
    custom_llm_provider: Option<&str>,
) -> Result<(&'static Provider, String), ResolveError> {
    if let Some(custom) = custom_llm_provider {
        let p = Provider::by_name(custom).ok_or_else(|| ResolveError::UnknownProvider {
            name: custom.to_string(),
            suggestion: Provider::suggest(custom),
        })?;
        let upstream = model
            .strip_prefix(custom)
            .and_then(|m| m.strip_prefix('/'))
            .unwrap_or(model);
        return Ok((p, upstream.to_string()));
    }
    if let Some((prefix, rest)) = model.split_once('/') {
        if let Some(p) = Provider::by_name(prefix) {
            return Ok((p, rest.to_string()));
        }
        // `meta-llama/Llama-3` under no known prefix is a model id, not a provider:
        // only complain when the prefix looks like a misspelt provider.
        if let Some(suggestion) = Provider::suggest(prefix) {
            return Err(ResolveError::UnknownProvider {
                name: prefix.to_string(),
                suggestion: Some(suggestion),
            });
        }
    }
    Provider::infer_from_model(model)
        .map(|p| (p, model.to_string()))
        .ok_or_else(|| ResolveError::CannotInfer {
            model: model.to_string(),
        })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("unknown provider \"{name}\"{}", suggestion.map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default())]
    UnknownProvider {
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error(
        "cannot tell the provider of \"{model}\": write it as \"provider/model\" (e.g. \"openai/{model}\") or set custom_llm_provider"
    )]
    CannotInfer { model: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_inference() {
        let (p, m) = resolve("hosted_vllm/meta-llama/Llama-3-8B", None).unwrap();
        assert_eq!(
            (p.name, m.as_str()),
            ("hosted_vllm", "meta-llama/Llama-3-8B")
        );
        let (p, _) = resolve("claude-3-haiku-20240307", None).unwrap();
        assert_eq!(p.dialect, Dialect::Anthropic);
        let (p, _) = resolve("gpt-4o", None).unwrap();
        assert_eq!(p.name, "openai");
        let (p, m) = resolve("llama3", Some("ollama")).unwrap();
        assert_eq!((p.name, m.as_str()), ("ollama", "llama3"));
    }

    #[test]
    fn misspelt_provider_gets_a_suggestion() {
        let err = resolve("antropic/claude-3", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown provider \"antropic\" (did you mean \"anthropic\"?)"
        );
    }
}
