//! Aggregated names: how tools, prompts and resource URIs of several servers share one
//! namespace, and how each is mapped back to its server exactly.
//!
//! - Tools and prompts: `<prefix>-<name>` by [`crate::naming::prefixed`] (sanitized, cut
//!   to 64 characters with a hash). Mapping back never guesses: the endpoint recomputes the aggregated name of every
//!   catalog entry of the candidate servers and picks the exact match.
//! - Resource URIs and URI templates: `<prefix>+<original-uri>`, e.g.
//!   `everything+test://static/resource/1`. The original URI stays readable, `+` is legal
//!   in a URI scheme, and the split is unambiguous because the prefix must be one of the
//!   session's servers (the first `+` after a known prefix ends it; the original URI is
//!   untouched even if it contains `+` itself).

/// `<prefix>+<uri>`.
pub fn prefixed_uri(prefix: &str, uri: &str) -> String {
    format!("{prefix}+{uri}")
}

/// Splits `<prefix>+<uri>` against the known prefixes; the longest matching prefix wins so
/// that `a` and `a+b` as server labels cannot shadow each other.
pub fn split_uri<'a, 'p>(
    prefixes: impl IntoIterator<Item = &'p str>,
    uri: &'a str,
) -> Option<(&'p str, &'a str)> {
    prefixes
        .into_iter()
        .filter(|p| uri.len() > p.len() && uri.starts_with(*p) && uri.as_bytes()[p.len()] == b'+')
        .max_by_key(|p| p.len())
        .map(|p| (p, &uri[p.len() + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip_even_with_plus_inside() {
        let p = prefixed_uri("git", "git+ssh://host/repo");
        assert_eq!(p, "git+git+ssh://host/repo");
        assert_eq!(
            split_uri(["git", "fs"], &p),
            Some(("git", "git+ssh://host/repo"))
        );
        assert_eq!(split_uri(["fs"], &p), None);
        assert_eq!(split_uri(["a", "a+b"], "a+b+x://y"), Some(("a+b", "x://y")));
    }
}
