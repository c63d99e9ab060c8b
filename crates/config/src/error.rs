//! What the loader reports: errors (the config is rejected) and warnings (it is accepted
//! but something in it is ignored). Both carry the dotted config path and the source line
//! so an operator can jump straight to the offending key.

use std::fmt;

/// One problem that makes the configuration unusable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `model_list[2].litellm_params.model`.
    /// Empty for problems with the file as a whole (unreadable, YAML syntax).
    pub path: String,
    /// 1-based line in the source file, when known.
    pub line: Option<usize>,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(f, &self.path, self.line, &self.message)
    }
}

/// Every problem found in one configuration source. Loading never stops at the first
/// problem: an operator fixing a config wants the whole list in one go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    /// Where the config came from (a file path, or a label such as `<embedded default>`).
    pub origin: String,
    /// The problems, in source-line order.
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub(crate) fn single(origin: &str, path: &str, line: Option<usize>, message: String) -> Self {
        Self {
            origin: origin.to_string(),
            errors: vec![ConfigError {
                path: path.to_string(),
                line,
                message,
            }],
        }
    }
}

/// One error per line, compiler style: `config.yaml:14: model_list[2].litellm_params.model: unknown provider ...`.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&self.origin)?;
            if let Some(line) = e.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
            if !e.path.is_empty() {
                write!(f, "{}: ", e.path)?;
            }
            f.write_str(&e.message)?;
        }
        Ok(())
    }
}

/// Something the config asks for that Gatehouse accepts but does not act on (yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Dotted path of the key, e.g. `litellm_settings.success_callback`.
    pub path: String,
    /// 1-based line in the source file, when known.
    pub line: Option<usize>,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

/// `litellm_settings.success_callback (line 12): not supported yet, ignored`.
impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(f, &self.path, self.line, &self.message)
    }
}

fn write_located(
    f: &mut fmt::Formatter<'_>,
    path: &str,
    line: Option<usize>,
    message: &str,
) -> fmt::Result {
    match (path.is_empty(), line) {
        (true, Some(l)) => write!(f, "line {l}: {message}"),
        (true, None) => f.write_str(message),
        (false, Some(l)) => write!(f, "{path} (line {l}): {message}"),
        (false, None) => write!(f, "{path}: {message}"),
    }
}
