//! The embedded model price table (`data/model_prices.json`, see `data/README.md`) and its
//! lookup rules. Parsed once, on first use, so a process that never prices a request
//! never pays for it.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::Price;

const DATA: &str = include_str!("../../data/model_prices.json");

/// Column order the loader expects; `trim_prices.py` writes the same list into the file.
const FIELDS: [&str; 9] = [
    "input_cost_per_token",
    "output_cost_per_token",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "litellm_provider",
    "max_tokens",
    "max_input_tokens",
    "max_output_tokens",
    "mode",
];

type Row = (
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<String>,
    Option<u64>,
    Option<u64>,
    Option<u64>,
    Option<String>,
);

#[derive(Deserialize)]
struct File {
    fields: Vec<String>,
    models: HashMap<String, Row>,
}

struct Entry {
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_write: Option<f64>,
    provider: Option<Box<str>>,
    max_tokens: Option<u64>,
    max_input_tokens: Option<u64>,
    max_output_tokens: Option<u64>,
    mode: Option<Box<str>>,
}

impl Entry {
    fn price(&'static self) -> Price {
        Price {
            input_cost_per_token: self.input,
            output_cost_per_token: self.output,
            cache_read_input_token_cost: self.cache_read,
            cache_creation_input_token_cost: self.cache_write,
            litellm_provider: self.provider.as_deref(),
            max_tokens: self.max_tokens,
            max_input_tokens: self.max_input_tokens,
            max_output_tokens: self.max_output_tokens,
            mode: self.mode.as_deref(),
        }
    }

    fn same_costs(&self, other: &Entry) -> bool {
        self.input == other.input
            && self.output == other.output
            && self.cache_read == other.cache_read
            && self.cache_write == other.cache_write
    }
}

pub(super) struct Table {
    models: HashMap<Box<str>, Entry>,
    /// Undated name → the dated names that share it (`claude-x` → `claude-x-20250101`).
    dated: HashMap<Box<str>, Vec<Box<str>>>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| match Table::parse(DATA) {
    Ok(table) => table,
    Err(error) => {
        // The file is checked by tests; should it ever be broken, costs read as unknown.
        tracing::error!(%error, "embedded model price table is unreadable");
        Table::empty()
    }
});

pub(super) fn table() -> &'static Table {
    &TABLE
}

#[derive(Debug, thiserror::Error)]
pub(super) enum TableError {
    #[error("malformed price table: {0}")]
    Json(#[from] serde_json::Error),
    #[error("price table columns {found:?} differ from the expected {FIELDS:?}")]
    Columns { found: Vec<String> },
}

impl Table {
    fn empty() -> Self {
        Table {
            models: HashMap::new(),
            dated: HashMap::new(),
        }
    }

    pub(super) fn parse(data: &str) -> Result<Self, TableError> {
        let file: File = serde_json::from_str(data)?;
        if file.fields.iter().map(String::as_str).ne(FIELDS) {
            return Err(TableError::Columns { found: file.fields });
        }
        let mut models = HashMap::with_capacity(file.models.len());
        let mut dated: HashMap<Box<str>, Vec<Box<str>>> = HashMap::new();
        for (name, row) in file.models {
            let (
                input,
                output,
                cache_read,
                cache_write,
                provider,
                max_tokens,
                max_in,
                max_out,
                mode,
            ) = row;
            if let Some(base) = strip_date(&name) {
                dated
                    .entry(base.into())
                    .or_default()
                    .push(name.as_str().into());
            }
            models.insert(
                name.into_boxed_str(),
                Entry {
                    input: input.unwrap_or(0.0),
                    output: output.unwrap_or(0.0),
                    cache_read,
                    cache_write,
                    provider: provider.map(String::into_boxed_str),
                    max_tokens,
                    max_input_tokens: max_in,
                    max_output_tokens: max_out,
                    mode: mode.map(String::into_boxed_str),
                },
            );
        }
        for names in dated.values_mut() {
            names.sort();
        }
        Ok(Table { models, dated })
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.models.len()
    }

    /// `provider/model`, then `model`; then the same without a date suffix; then the one
    /// dated variant of an undated name (or several that all cost the same).
    pub(super) fn lookup(&'static self, provider: &str, model: &str) -> Option<Price> {
        let exact = |name: &str| -> Option<&'static Entry> {
            if !provider.is_empty() {
                let qualified = format!("{provider}/{name}");
                if let Some(entry) = self.models.get(qualified.as_str()) {
                    return Some(entry);
                }
            }
            self.models.get(name)
        };
        if let Some(entry) = exact(model) {
            return Some(entry.price());
        }
        if let Some(entry) = strip_date(model).and_then(exact) {
            return Some(entry.price());
        }
        self.only_dated(provider, model).map(Entry::price)
    }

    fn only_dated(&'static self, provider: &str, model: &str) -> Option<&'static Entry> {
        let qualified = format!("{provider}/{model}");
        let names = (!provider.is_empty())
            .then(|| self.dated.get(qualified.as_str()))
            .flatten()
            .or_else(|| self.dated.get(model))?;
        let mut entries = names.iter().filter_map(|n| self.models.get(n));
        let first = entries.next()?;
        entries.all(|e| e.same_costs(first)).then_some(first)
    }
}

/// The name without a trailing release date: `-20240307`, `-2024-08-06` or `@20240307`.
fn strip_date(name: &str) -> Option<&str> {
    let bytes = name.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let n = bytes.len();
    if n > 9
        && matches!(bytes[n - 9], b'-' | b'@')
        && digits(&bytes[n - 8..])
        && bytes[n - 8] == b'2'
    {
        return Some(&name[..n - 9]);
    }
    if n > 11
        && bytes[n - 11] == b'-'
        && bytes[n - 3] == b'-'
        && bytes[n - 6] == b'-'
        && digits(&bytes[n - 10..n - 6])
        && digits(&bytes[n - 5..n - 3])
        && digits(&bytes[n - 2..])
    {
        return Some(&name[..n - 11]);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_suffixes_are_recognised() {
        assert_eq!(
            strip_date("claude-3-haiku-20240307"),
            Some("claude-3-haiku")
        );
        assert_eq!(strip_date("gpt-4o-2024-08-06"), Some("gpt-4o"));
        assert_eq!(
            strip_date("claude-3-haiku@20240307"),
            Some("claude-3-haiku")
        );
        assert_eq!(strip_date("gpt-4o"), None);
        assert_eq!(strip_date("mistral-large-2407"), None);
        assert_eq!(strip_date("-20240307"), None);
    }

    #[test]
    fn a_column_change_is_an_error_not_wrong_prices() {
        let data = r#"{"fields":["output_cost_per_token","input_cost_per_token"],"models":{}}"#;
        assert!(matches!(
            Table::parse(data),
            Err(TableError::Columns { .. })
        ));
    }
}
