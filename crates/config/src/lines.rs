//! Dotted config paths and the line each one was written on.

use std::collections::HashMap;

/// Path of a mapping entry: `parent.key` (or `key` at the top).
pub(crate) fn child_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Path of a sequence item: `parent[index]`.
pub(crate) fn child_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Drops the last segment: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``.
pub(crate) fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    match path.rfind(['.', '[']) {
        Some(i) => Some(&path[..i]),
        None => Some(""),
    }
}

/// True when `inner` is `outer` or lies below it (`a.b` covers `a.b.c` and `a.b[0]`).
pub(crate) fn covers(outer: &str, inner: &str) -> bool {
    outer.is_empty()
        || inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// Map from dotted config path (`model_list[2].litellm_params.model`) to its 1-based
/// source line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineIndex {
    map: HashMap<String, usize>,
}

impl LineIndex {
    pub(crate) fn insert(&mut self, path: String, line: usize) {
        self.map.insert(path, line);
    }

    /// The line of `path`, or of its closest ancestor written in the file (a missing
    /// key is reported on the line of the mapping that lacks it).
    pub fn line(&self, path: &str) -> Option<usize> {
        let mut p = Some(path);
        while let Some(cur) = p {
            if let Some(l) = self.map.get(cur) {
                return Some(*l);
            }
            p = parent_path(cur);
        }
        None
    }

    /// The line of exactly `path`, without falling back to an ancestor.
    pub fn exact(&self, path: &str) -> Option<usize> {
        self.map.get(path).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            child_index(&child_key("", "model_list"), 2),
            "model_list[2]"
        );
        assert_eq!(
            parent_path("model_list[2].litellm_params"),
            Some("model_list[2]")
        );
        assert_eq!(parent_path("model_list[2]"), Some("model_list"));
        assert_eq!(parent_path("model_list"), Some(""));
        assert!(covers("mcp_servers.a", "mcp_servers.a.url"));
        assert!(covers("model_list", "model_list[0]"));
        assert!(!covers("mcp_servers.a", "mcp_servers.ab"));
    }

    #[test]
    fn missing_paths_fall_back_to_ancestors() {
        let mut idx = LineIndex::default();
        idx.insert("mcp_servers.db".into(), 7);
        assert_eq!(idx.line("mcp_servers.db.command"), Some(7));
        assert_eq!(idx.exact("mcp_servers.db.command"), None);
        assert_eq!(idx.line("general_settings"), None);
    }
}
