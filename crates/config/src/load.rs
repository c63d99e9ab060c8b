//! Loading a config: read → parse with lines → substitute env → type → validate → warn.

use std::path::{Path, PathBuf};

use crate::decode::decode;
use crate::deployment::{ResolvedDeployment, resolve_all};
use crate::env::EnvLookup;
use crate::error::{ConfigError, ConfigErrors, ConfigWarning};
use crate::lines::{LineIndex, covers};
use crate::schema::Config;
use crate::tree::parse;
use crate::validate::validate;
use crate::warn::{migrate_legacy, unsupported_keys};

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The typed config, after substitution and the `litellm_settings` → `general_settings`
    /// copy of `master_key` / `database_url`.
    pub config: Config,
    /// Where it came from (file path as given, or a label).
    pub origin: String,
    /// Directory of the config file, for resolving relative paths (e.g. a stdio
    /// server's `cwd`). `None` for configs loaded from a string.
    pub source_dir: Option<PathBuf>,
    /// Ignored and legacy keys, in file order. Print them at start-up.
    pub warnings: Vec<ConfigWarning>,
    /// Line of every config path, for messages about the config made after loading.
    pub lines: LineIndex,
    /// Every `model_list` entry with its provider resolved, in file order.
    pub deployments: Vec<ResolvedDeployment>,
    /// SHA-256 (hex) of the source text as read: `/health` shows it, so an operator can
    /// tell which version of the file a replica serves, and a reload can tell whether the
    /// file changed.
    pub sha256: String,
}

impl Loaded {
    /// Every `model_list` entry with its provider resolved, in file order.
    pub fn deployments(&self) -> &[ResolvedDeployment] {
        &self.deployments
    }

    /// The source line of a config path such as `mcp_servers.db_main.url` (or of its
    /// nearest written ancestor).
    pub fn line_of(&self, path: &str) -> Option<usize> {
        self.lines.line(path)
    }
}

/// Loads a config file, substituting from the process environment.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigErrors> {
    let origin = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors::single(
            &origin,
            "",
            None,
            format!("cannot read the config file: {e}"),
        )
    })?;
    let env = |name: &str| std::env::var(name).ok();
    let mut loaded = load_str(&src, &origin, &env)?;
    loaded.source_dir = Some(match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    });
    Ok(loaded)
}

/// Loads a config from text. `origin` names it in messages; `env` looks variables up
/// (pass `&|n| std::env::var(n).ok()` for the process environment).
pub fn load_str(
    src: &str,
    origin: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigErrors> {
    let env: EnvLookup<'_> = env;
    let tree = parse(src, env).map_err(|e| ConfigErrors {
        origin: origin.to_string(),
        errors: vec![e],
    })?;
    let mut errors: Vec<ConfigError> = tree.errors.clone();
    let config = decode(&tree, &mut errors);
    if let Some(config) = &config {
        // A value that already failed (missing variable, wrong type) would only produce
        // a second, confusing complaint about the same key.
        let earlier: Vec<String> = errors.iter().map(|e| e.path.clone()).collect();
        errors.extend(validate(config, &tree.lines).into_iter().filter(|v| {
            !earlier
                .iter()
                .any(|p| !p.is_empty() && (covers(p, &v.path) || covers(&v.path, p)))
        }));
    }
    let Some(mut config) = config.filter(|_| errors.is_empty()) else {
        errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        return Err(ConfigErrors {
            origin: origin.to_string(),
            errors,
        });
    };

    let mut warnings = unsupported_keys(&config, &tree.value, &tree.lines);
    warnings.extend(migrate_legacy(&mut config, &tree.lines));
    let callbacks = crate::callbacks::warnings(&config);
    for (path, message) in crate::cache::settings(&config)
        .1
        .into_iter()
        .chain(callbacks)
    {
        warnings.push(ConfigWarning {
            line: tree.lines.line(&path),
            path,
            message,
        });
    }
    warnings.sort_by_key(|w| w.line.unwrap_or(usize::MAX));
    let deployments = resolve_all(&config);
    Ok(Loaded {
        config,
        origin: origin.to_string(),
        source_dir: None,
        warnings,
        lines: tree.lines,
        deployments,
        sha256: sha256_hex(src),
    })
}

/// SHA-256 of a config's text, hex: what [`Loaded::sha256`] holds.
pub fn sha256_hex(src: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(src.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> Result<Loaded, ConfigErrors> {
        load_str(src, "t.yaml", &|_: &str| None)
    }

    #[test]
    fn plain_numbers_fill_text_fields_verbatim() {
        let src = "\
model_list:
  - model_name: 123
    litellm_params:
      model: openai/gpt-4o
      api_version: 1.10
";
        let loaded = load(src).unwrap();
        let d = &loaded.deployments()[0];
        assert_eq!(d.model_name, "123");
        // The source text, not the float 1.1.
        assert_eq!(d.params.api_version.as_deref(), Some("1.10"));
    }

    #[test]
    fn several_type_errors_across_sections() {
        let src = "\
model_list:
  - model_name: a
    litellm_params:
      model: openai/gpt-4o
      rpm: lots
  - litellm_params:
      model: openai/gpt-4o
router_settings:
  redis_port: 99999
general_settings:
  allowed_origins: http://x
";
        let err = load(src).unwrap_err();
        let got: Vec<(&str, Option<usize>)> = err
            .errors
            .iter()
            .map(|e| (e.path.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            [
                ("model_list[0].litellm_params.rpm", Some(5)),
                ("model_list[1]", Some(6)),
                ("router_settings.redis_port", Some(9)),
                ("general_settings.allowed_origins", Some(11)),
            ],
            "{err}"
        );
        assert!(
            err.errors[1].message.contains("missing field `model_name`"),
            "{err}"
        );
    }

    #[test]
    fn legacy_keys_copied_once() {
        let loaded = load("litellm_settings:\n  database_url: postgres://h/db\n").unwrap();
        assert_eq!(
            loaded.config.general_settings.database_url.as_deref(),
            Some("postgres://h/db")
        );
        assert_eq!(loaded.line_of("litellm_settings.database_url"), Some(2));
    }

    #[test]
    fn empty_file_is_an_empty_config() {
        let loaded = load("").unwrap();
        assert!(loaded.config.model_list.is_empty());
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn custom_llm_provider_error_points_at_its_key() {
        let src = "\
model_list:
  - model_name: a
    litellm_params:
      model: llama3
      custom_llm_provider: olama
";
        let err = load(src).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml:5: model_list[0].litellm_params.custom_llm_provider: unknown provider \"olama\" (did you mean \"ollama\"?)"
        );
    }

    #[test]
    fn virtual_key_equal_to_master_key_is_rejected() {
        let src = "\
litellm_settings:
  master_key: sk-same
virtual_keys:
  - api_key: sk-same
";
        let err = load(src).unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.yaml:4: virtual_keys[0].api_key: a virtual key must not equal the master key"
        );
    }

    #[test]
    fn summary_hides_credentials_in_stdio_args() {
        let src = "\
mcp_servers:
  pg:
    command: npx
    args: [\"-y\", \"@modelcontextprotocol/server-postgres\", \"postgresql://u:secret@db:5432/x\"]
    env:
      PGPASSWORD: secret
";
        let s = load(src).unwrap().summary();
        assert!(
            s.contains(
                "pg [stdio] npx -y @modelcontextprotocol/server-postgres postgresql://***@db:5432/x"
            ),
            "{s}"
        );
        assert!(!s.contains("secret"), "{s}");
    }
}
