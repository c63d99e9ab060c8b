//! Aggregated tool names: `<server>-<tool>`, valid for every LLM provider.
//!
//! Providers accept tool names matching `^[a-zA-Z0-9_-]{1,64}$`, so invalid characters
//! become `_` and long names are cut with a short stable hash of the original tool name
//! (the same tool always gets the same name). Because that mapping is lossy, a
//! [`NameTable`] per server keeps the reverse map that recovers the exact original name.

use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The longest name providers accept.
pub const MAX_LEN: usize = 64;
/// Separates the server prefix from the tool name. Server names cannot contain it.
pub const SEPARATOR: char = '-';

fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Replaces every character providers reject with `_`.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if valid_char(c) { c } else { '_' })
        .collect()
}

/// Whether `s` is already a valid provider tool name.
pub fn is_valid(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_LEN && s.chars().all(valid_char)
}

fn short_hash(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    hex::encode(&digest[..4])
}

/// `<prefix>-<tool>`, sanitized and cut to [`MAX_LEN`] with a hash suffix when needed.
pub fn prefixed(prefix: &str, tool: &str) -> String {
    let full = format!("{}{SEPARATOR}{}", sanitize(prefix), sanitize(tool));
    if full.len() <= MAX_LEN && !full.is_empty() {
        return full;
    }
    with_hash(&full, tool)
}

/// Cuts `name` (ASCII after sanitizing) and appends `_<8 hex>` derived from `original`.
fn with_hash(name: &str, original: &str) -> String {
    let suffix = format!("_{}", short_hash(original));
    let keep = MAX_LEN.saturating_sub(suffix.len()).min(name.len());
    format!("{}{suffix}", &name[..keep])
}

/// Forward and reverse map of one server's tool names under one prefix.
#[derive(Debug, Clone, Default)]
pub struct NameTable {
    forward: HashMap<String, String>,
    reverse: HashMap<String, String>,
    /// Original tool names that collided with another tool's aggregated name.
    pub collisions: Vec<String>,
}

impl NameTable {
    /// Builds the table; a tool whose aggregated name is already taken by an earlier tool
    /// gets a hash suffix instead of silently shadowing it.
    pub fn build<'a>(prefix: &str, tools: impl IntoIterator<Item = &'a str>) -> NameTable {
        let mut t = NameTable::default();
        for tool in tools {
            let mut name = prefixed(prefix, tool);
            if t.reverse.contains_key(&name) {
                t.collisions.push(tool.to_string());
                name = with_hash(
                    &format!("{}{SEPARATOR}{}", sanitize(prefix), sanitize(tool)),
                    tool,
                );
                if t.reverse.contains_key(&name) {
                    // Same original name listed twice: keep the first.
                    continue;
                }
            }
            t.forward.insert(tool.to_string(), name.clone());
            t.reverse.insert(name, tool.to_string());
        }
        t
    }

    /// The aggregated name of an original tool name.
    pub fn name_of(&self, tool: &str) -> Option<&str> {
        self.forward.get(tool).map(String::as_str)
    }

    /// The original tool name behind an aggregated name.
    pub fn original(&self, aggregated: &str) -> Option<&str> {
        self.reverse.get(aggregated).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass_through() {
        assert_eq!(prefixed("fs", "read_file"), "fs-read_file");
        assert_eq!(prefixed("everything", "get-sum"), "everything-get-sum");
    }

    #[test]
    fn invalid_chars_and_long_names() {
        assert_eq!(prefixed("srv", "a.b/c d"), "srv-a_b_c_d");
        let long = "x".repeat(100);
        let n = prefixed("srv", &long);
        assert_eq!(n.len(), MAX_LEN);
        assert!(is_valid(&n));
        assert_eq!(n, prefixed("srv", &long), "stable");
        assert_ne!(n, prefixed("srv", &"x".repeat(101)));
    }

    #[test]
    fn table_recovers_originals_and_detects_collisions() {
        let t = NameTable::build("srv", ["a.b", "a_b", "get-sum"]);
        assert_eq!(t.collisions, vec!["a_b".to_string()]);
        let a = t.name_of("a.b").unwrap().to_string();
        let b = t.name_of("a_b").unwrap().to_string();
        assert_ne!(a, b);
        assert_eq!(t.original(&a), Some("a.b"));
        assert_eq!(t.original(&b), Some("a_b"));
        assert_eq!(t.original("srv-get-sum"), Some("get-sum"));
        assert!(is_valid(&b));
    }
}
