//! Environment substitution in string scalars.
//!
//! Two syntaxes, because operators bring both:
//! - LiteLLM's whole-value form `os.environ/NAME` (the value *is* the variable);
//! - shell-style `${NAME}` and `${NAME:-default}` anywhere inside a string, with `$${`
//!   writing a literal `${`. As in the shell, `:-` also applies when the variable is set
//!   but empty.
//!
//! A missing variable is an error, never an empty string: an empty API key fails much
//! later and much less clearly.

/// The lookup used for substitution; tests pass a map, the binary passes the process env.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

const LITELLM_PREFIX: &str = "os.environ/";

/// Why a string could not be substituted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// One variable is referenced but not set.
    #[error("environment variable {0} is not set")]
    Missing(String),
    /// Several variables in one value are not set.
    #[error("environment variables {} are not set", .0.join(", "))]
    MissingMany(Vec<String>),
    /// `${` without a closing `}`.
    #[error("unterminated \"${{\" (write \"$${{\" for a literal \"${{\")")]
    Unterminated,
    /// The name is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("invalid environment variable name {0:?}")]
    BadName(String),
}

/// Result of substituting one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substituted {
    /// The expanded text.
    pub text: String,
    /// True when any variable (or `$${` escape) was expanded.
    pub changed: bool,
}

/// Expands environment references in `s`.
pub fn substitute(s: &str, env: EnvLookup<'_>) -> Result<Substituted, EnvError> {
    if let Some(name) = s.strip_prefix(LITELLM_PREFIX) {
        let name = name.trim();
        if !valid_name(name) {
            return Err(EnvError::BadName(name.to_string()));
        }
        return match env(name) {
            Some(text) => Ok(Substituted {
                text,
                changed: true,
            }),
            None => Err(EnvError::Missing(name.to_string())),
        };
    }
    if !s.contains('$') {
        return Ok(Substituted {
            text: s.to_string(),
            changed: false,
        });
    }

    let mut out = String::with_capacity(s.len());
    let mut missing: Vec<String> = Vec::new();
    let mut changed = false;
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            changed = true;
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or(EnvError::Unterminated)?;
            let inner = &tail[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            if !valid_name(name) {
                return Err(EnvError::BadName(name.to_string()));
            }
            match (env(name), default) {
                (Some(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    if !missing.iter().any(|m| m == name) {
                        missing.push(name.to_string());
                    }
                }
            }
            changed = true;
            rest = &tail[end + 1..];
        } else {
            // A lone `$` (e.g. in a password) is literal.
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    match missing.len() {
        0 => Ok(Substituted { text: out, changed }),
        1 => Err(EnvError::Missing(missing.remove(0))),
        _ => Err(EnvError::MissingMany(missing)),
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("db.lan".into()),
            "EMPTY" => Some(String::new()),
            "KEY" => Some("sk-123".into()),
            _ => None,
        }
    }

    fn sub(s: &str) -> Result<String, EnvError> {
        substitute(s, &env).map(|s| s.text)
    }

    #[test]
    fn litellm_whole_value_form() {
        assert_eq!(sub("os.environ/KEY").unwrap(), "sk-123");
        assert_eq!(
            sub("os.environ/NOPE").unwrap_err(),
            EnvError::Missing("NOPE".into())
        );
        // Only a whole value is a reference; elsewhere it is plain text.
        assert_eq!(sub("see os.environ/KEY").unwrap(), "see os.environ/KEY");
    }

    #[test]
    fn shell_form_with_defaults_and_escapes() {
        assert_eq!(
            sub("http://${HOST}:5432/x").unwrap(),
            "http://db.lan:5432/x"
        );
        assert_eq!(sub("${PORT:-4000}").unwrap(), "4000");
        assert_eq!(sub("${EMPTY:-fallback}").unwrap(), "fallback");
        assert_eq!(sub("${EMPTY}").unwrap(), "");
        assert_eq!(sub("${X:-}").unwrap(), "");
        assert_eq!(sub("$${HOST} costs $5").unwrap(), "${HOST} costs $5");
        assert_eq!(sub("pa$$word").unwrap(), "pa$$word");
    }

    #[test]
    fn shell_form_errors() {
        assert_eq!(
            sub("${NOPE}").unwrap_err().to_string(),
            "environment variable NOPE is not set"
        );
        assert_eq!(
            sub("${A}/${B}/${A}").unwrap_err().to_string(),
            "environment variables A, B are not set"
        );
        assert_eq!(sub("${HOST").unwrap_err(), EnvError::Unterminated);
        assert!(matches!(sub("${1X}").unwrap_err(), EnvError::BadName(_)));
    }
}
