//! Request cost from the embedded model price table (LiteLLM's price data, trimmed).
//!
//! [`price`] finds a model's per-token prices; [`resolve`] applies a deployment's
//! `model_info.input_cost_per_token` / `output_cost_per_token` on top (they win, and they
//! price models the table does not know); [`cost`] turns usage into US dollars — the value
//! of the `x-litellm-response-cost` header.

mod table;

/// Per-token prices (USD) and limits of one model, as listed in the price table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_cost_per_token: f64,
    pub output_cost_per_token: f64,
    /// Price of a prompt token read from the provider's cache; input price when absent.
    pub cache_read_input_token_cost: Option<f64>,
    /// Price of a prompt token written to the provider's cache; input price when absent.
    pub cache_creation_input_token_cost: Option<f64>,
    pub litellm_provider: Option<&'static str>,
    pub max_tokens: Option<u64>,
    pub max_input_tokens: Option<u64>,
    pub max_output_tokens: Option<u64>,
    /// `chat`, `embedding`, `completion`, `responses`, ...
    pub mode: Option<&'static str>,
}

impl Price {
    /// A price made only of configured per-token costs (a model the table does not list).
    pub fn from_costs(input_cost_per_token: f64, output_cost_per_token: f64) -> Self {
        Price {
            input_cost_per_token,
            output_cost_per_token,
            cache_read_input_token_cost: None,
            cache_creation_input_token_cost: None,
            litellm_provider: None,
            max_tokens: None,
            max_input_tokens: None,
            max_output_tokens: None,
            mode: None,
        }
    }

    /// This price with configured costs replacing the table's where given.
    pub fn with_overrides(mut self, overrides: &CostOverrides) -> Self {
        if let Some(input) = overrides.input_cost_per_token {
            self.input_cost_per_token = input;
        }
        if let Some(output) = overrides.output_cost_per_token {
            self.output_cost_per_token = output;
        }
        self
    }
}

/// Costs configured on a deployment (`model_info.input_cost_per_token` and
/// `model_info.output_cost_per_token`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CostOverrides {
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
}

impl CostOverrides {
    fn is_empty(&self) -> bool {
        self.input_cost_per_token.is_none() && self.output_cost_per_token.is_none()
    }
}

/// Token counts of one response: the one usage type of the workspace lives with the pure
/// translation (`gatehouse_llm::usage`), so every vendor's mapping and every route count
/// the same way; pricing reads it here.
pub use gatehouse_llm::usage::Usage;

/// The table's price for `upstream_model` at `provider` (a LiteLLM provider name such as
/// `openai`, `anthropic`, `gemini`, `vertex_ai`). Tries `provider/model`, then `model`,
/// then either without a trailing date (`-20240307`, `-2024-08-06`, `@20240307`), then the
/// dated entries of an undated name when they all cost the same.
pub fn price(provider: &str, upstream_model: &str) -> Option<Price> {
    table::table().lookup(provider, upstream_model)
}

/// The price to charge: the table's, with configured costs taking precedence. A model the
/// table does not know is priced from the configured costs alone (a missing side costs 0);
/// `None` when neither knows it.
pub fn resolve(provider: &str, upstream_model: &str, overrides: &CostOverrides) -> Option<Price> {
    match price(provider, upstream_model) {
        Some(found) => Some(found.with_overrides(overrides)),
        None if overrides.is_empty() => None,
        None => Some(Price::from_costs(
            overrides.input_cost_per_token.unwrap_or(0.0),
            overrides.output_cost_per_token.unwrap_or(0.0),
        )),
    }
}

/// Cost in US dollars: uncached prompt tokens at the input price, cache reads and writes
/// at their own prices (input price when the table has none), completion at the output price.
pub fn cost(price: &Price, usage: &Usage) -> f64 {
    let cached_read = usage.cached_read.min(usage.prompt);
    let cache_write = usage.cache_write.min(usage.prompt - cached_read);
    let uncached = usage.prompt - cached_read - cache_write;
    let input = price.input_cost_per_token;
    uncached as f64 * input
        + cached_read as f64 * price.cache_read_input_token_cost.unwrap_or(input)
        + cache_write as f64 * price.cache_creation_input_token_cost.unwrap_or(input)
        + usage.completion as f64 * price.output_cost_per_token
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1.0)
    }

    #[test]
    fn the_embedded_table_loads() {
        assert!(table::table().len() > 3_000, "{}", table::table().len());
    }

    #[test]
    fn gpt_4o_prices_match_the_table() {
        let p = price("openai", "gpt-4o").unwrap();
        assert_eq!(p.input_cost_per_token, 2.5e-6);
        assert_eq!(p.output_cost_per_token, 1e-5);
        assert_eq!(p.cache_read_input_token_cost, Some(1.25e-6));
        assert_eq!(p.litellm_provider, Some("openai"));
        assert_eq!(p.max_input_tokens, Some(128_000));
        assert_eq!(p.max_output_tokens, Some(16_384));
        assert_eq!(p.mode, Some("chat"));
    }

    #[test]
    fn provider_qualified_entries_win_over_bare_names() {
        // Gemini's own API lists the model as `gemini/gemini-2.5-pro`.
        let p = price("gemini", "gemini-2.5-pro").unwrap();
        assert_eq!(p.litellm_provider, Some("gemini"));
        assert_eq!(p.input_cost_per_token, 1.25e-6);
        assert_eq!(p.output_cost_per_token, 1e-5);
        // Vertex's Claude models are listed as `vertex_ai/claude-3-haiku@20240307`.
        let p = price("vertex_ai", "claude-3-haiku@20240307").unwrap();
        assert_eq!(p.input_cost_per_token, 2.5e-7);
        assert_eq!(p.output_cost_per_token, 1.25e-6);
    }

    #[test]
    fn anthropic_cache_prices_are_carried() {
        let p = price("anthropic", "claude-sonnet-4-5-20250929").unwrap();
        assert_eq!(p.input_cost_per_token, 3e-6);
        assert_eq!(p.output_cost_per_token, 1.5e-5);
        assert_eq!(p.cache_read_input_token_cost, Some(3e-7));
        assert_eq!(p.cache_creation_input_token_cost, Some(3.75e-6));
        assert_eq!(p.max_input_tokens, Some(200_000));
    }

    #[test]
    fn date_suffixes_are_tolerated_when_unambiguous() {
        // An unlisted snapshot date falls back to the undated entry.
        let undated = price("openai", "gpt-4o").unwrap();
        assert_eq!(price("openai", "gpt-4o-2099-01-01"), Some(undated));
        // An undated name whose only dated entry is known resolves to it.
        let dated = price("openai", "gpt-4o-mini-audio-preview-2024-12-17").unwrap();
        assert_eq!(price("openai", "gpt-4o-mini-audio-preview"), Some(dated));
        // Dated entries that all cost the same are as good as one.
        let azure = price("azure", "gpt-4o-realtime-preview-2024-10-01").unwrap();
        assert_eq!(
            price("azure", "gpt-4o-realtime-preview").map(|p| p.input_cost_per_token),
            Some(azure.input_cost_per_token)
        );
        // Two snapshots with different prices: no guess.
        assert!(price("openai", "ft:gpt-4o-2024-08-06").is_some());
        assert!(price("openai", "ft:gpt-4o-2024-11-20").is_some());
        assert_eq!(price("openai", "ft:gpt-4o"), None);
        assert_eq!(price("openai", "no-such-model-20240101"), None);
        assert_eq!(price("openai", "no-such-model"), None);
    }

    #[test]
    fn configured_costs_override_and_fill_in() {
        let overrides = CostOverrides {
            input_cost_per_token: Some(1e-6),
            output_cost_per_token: None,
        };
        let p = resolve("openai", "gpt-4o", &overrides).unwrap();
        assert_eq!(p.input_cost_per_token, 1e-6);
        assert_eq!(p.output_cost_per_token, 1e-5);
        let p = resolve("custom", "in-house-llm", &overrides).unwrap();
        assert_eq!(
            (p.input_cost_per_token, p.output_cost_per_token),
            (1e-6, 0.0)
        );
        assert_eq!(
            resolve("custom", "in-house-llm", &CostOverrides::default()),
            None
        );
    }

    #[test]
    fn cost_charges_cached_tokens_at_their_own_prices() {
        let p = price("anthropic", "claude-sonnet-4-5-20250929").unwrap();
        // 1000 input (uncached), 2000 cache read, 500 cache write, 100 output.
        let usage = Usage::anthropic(1_000, 100, 2_000, 500);
        assert_eq!(usage.prompt, 3_500);
        let expected = 1_000.0 * 3e-6 + 2_000.0 * 3e-7 + 500.0 * 3.75e-6 + 100.0 * 1.5e-5;
        assert!(close(cost(&p, &usage), expected), "{}", cost(&p, &usage));

        let gpt = price("openai", "gpt-4o").unwrap();
        let usage = Usage {
            prompt: 1_000,
            completion: 200,
            cached_read: 400,
            cache_write: 0,
        };
        let expected = 600.0 * 2.5e-6 + 400.0 * 1.25e-6 + 200.0 * 1e-5;
        assert!(close(cost(&gpt, &usage), expected));
    }

    #[test]
    fn inconsistent_usage_never_goes_negative() {
        let p = Price::from_costs(1e-6, 2e-6);
        let usage = Usage {
            prompt: 10,
            completion: 0,
            cached_read: 50,
            cache_write: 50,
        };
        assert!(close(cost(&p, &usage), 10.0 * 1e-6));
    }
}
