//! The config served when none is given: a wildcard route for every provider the
//! environment already points at, so `gatehouse` with no arguments serves what the user
//! has (an OpenAI key, a local Ollama, ...) instead of a model nobody runs.
//!
//! Credentials are never copied into the generated YAML: routes name no `api_key` (each
//! provider reads its usual variable) and base URLs are `${VAR}` references, so the
//! loaded config redacts and summarises like a written one. The two servers that are
//! used only when they answer (Ollama, `GATEHOUSE_DEFAULT_UPSTREAM`) are probed by the
//! binary; this module only says where to probe and turns the answers into routes.

use crate::env::EnvLookup;
use crate::error::ConfigErrors;
use crate::load::{Loaded, load_str};

/// The origin label of a discovered config in messages.
pub const DISCOVERED_ORIGIN: &str = "<discovered from the environment>";

/// The origin label of `--model`.
pub const MODEL_FLAG_ORIGIN: &str = "<--model>";

/// Where Ollama listens unless `OLLAMA_HOST` says otherwise.
const OLLAMA_DEFAULT: &str = "http://127.0.0.1:11434";

/// At most this many model ids are taken from `GATEHOUSE_DEFAULT_UPSTREAM`'s listing.
pub const MAX_UPSTREAM_MODELS: usize = 200;

/// Providers found from a key variable alone: (route prefix, key variables — any one is
/// enough, the variable of a base URL override).
const KEYED: &[(&str, &[&str], &str)] = &[
    ("openai", &["OPENAI_API_KEY"], "OPENAI_API_BASE"),
    ("anthropic", &["ANTHROPIC_API_KEY"], "ANTHROPIC_API_BASE"),
    ("gemini", &["GEMINI_API_KEY"], "GEMINI_API_BASE"),
];

/// The servers to probe before discovering: each is served only when it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTargets {
    /// Ollama's OpenAI-compatible base (`…/v1`), from `OLLAMA_HOST` or the default.
    pub ollama: String,
    /// `GATEHOUSE_DEFAULT_UPSTREAM` without a trailing `/`, when set.
    pub upstream: Option<String>,
}

/// What the probes found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeAnswers {
    /// Ollama answered its model listing.
    pub ollama: bool,
    /// The default upstream answered; the model ids it lists (filtered, see
    /// [`usable_model_id`]).
    pub upstream_models: Option<Vec<String>>,
}

/// A discovered config and one line per route source, for the start-up log.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub loaded: Loaded,
    /// e.g. `openai/* (OPENAI_API_KEY)`; empty when nothing was found.
    pub found: Vec<String>,
    /// Things found but not served, with why (e.g. an upstream that lists no model).
    pub notes: Vec<String>,
}

/// Said once at start-up when the environment names no provider.
pub const NOTHING_FOUND: &str = "no LLM provider found in the environment, so no model is served. \
To add one: set OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY or AWS credentials \
(AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY) and restart; or start Ollama on 127.0.0.1:11434 \
(or set OLLAMA_HOST); or set GATEHOUSE_DEFAULT_UPSTREAM=http://host:port/v1 for an \
OpenAI-compatible server; or run `gatehouse --model openai/gpt-4o`; or write a config.yaml \
and run `gatehouse --config config.yaml` (see docs/configuration.md)";

fn var(env: EnvLookup<'_>, name: &str) -> Option<String> {
    env(name).filter(|v| !v.trim().is_empty())
}

/// Where to probe. Fails only on a `GATEHOUSE_DEFAULT_UPSTREAM` or `OLLAMA_HOST` that
/// is not a usable http(s) address, so a typo is reported instead of silently ignored.
pub fn probe_targets(env: EnvLookup<'_>) -> Result<ProbeTargets, ConfigErrors> {
    let ollama = match var(env, "OLLAMA_HOST") {
        None => OLLAMA_DEFAULT.to_owned(),
        Some(host) => ollama_base(&host).ok_or_else(|| {
            ConfigErrors::single(
                DISCOVERED_ORIGIN,
                "OLLAMA_HOST",
                None,
                format!(
                    "{:?} is not a host[:port] or http(s) URL",
                    crate::redact::url(&host)
                ),
            )
        })?,
    };
    let upstream = match var(env, "GATEHOUSE_DEFAULT_UPSTREAM") {
        None => None,
        Some(url) => Some(plain_http_url(&url).ok_or_else(|| {
            ConfigErrors::single(
                DISCOVERED_ORIGIN,
                "GATEHOUSE_DEFAULT_UPSTREAM",
                None,
                format!(
                    "{:?} is not an http(s) URL such as http://127.0.0.1:8000/v1",
                    crate::redact::url(&url)
                ),
            )
        })?),
    };
    Ok(ProbeTargets {
        ollama: format!("{ollama}/v1"),
        upstream,
    })
}

/// `OLLAMA_HOST` as Ollama reads it: `host`, `host:port`, or a URL; a bind-all address
/// is reached on loopback.
fn ollama_base(host: &str) -> Option<String> {
    let host = host.trim().trim_end_matches('/');
    let (scheme, rest) = match host.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("http", host),
    };
    let rest = rest
        .strip_prefix("0.0.0.0")
        .map_or_else(|| rest.to_owned(), |port| format!("127.0.0.1{port}"));
    let with_port = if rest
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        || rest.contains('/')
    {
        rest
    } else {
        format!("{rest}:11434")
    };
    plain_http_url(&format!("{scheme}://{with_port}"))
}

/// An http(s) URL with a host and nothing that YAML or `${}` substitution could read as
/// syntax; without its trailing `/`.
fn plain_http_url(url: &str) -> Option<String> {
    let url = url.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    let safe = url.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, ':' | '/' | '.' | '-' | '_' | '[' | ']' | '%' | '~')
    });
    (safe && !host.is_empty()).then(|| url.to_owned())
}

/// A model id from an upstream's listing that can become a route name: plain characters
/// only (no `*`, which would make a wildcard; no `$`, which substitution would read), not
/// LiteLLM's `os.environ/` form, and of a sane length. An upstream is not trusted to name
/// routes that read the gateway's environment.
pub fn usable_model_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && !id.starts_with("os.environ/")
        && id.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/' | '@' | '+')
        })
}

/// A YAML double-quoted scalar (JSON's escapes are YAML's).
fn quoted(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn route(yaml: &mut String, name: &str, model: &str, api_base: Option<&str>) {
    yaml.push_str(&format!(
        "  - model_name: {}\n    litellm_params:\n      model: {}\n",
        quoted(name),
        quoted(model)
    ));
    if let Some(base) = api_base {
        yaml.push_str(&format!("      api_base: {}\n", quoted(base)));
    }
}

/// The config for the environment and the probes' answers.
pub fn discover(
    env: EnvLookup<'_>,
    targets: &ProbeTargets,
    answers: &ProbeAnswers,
) -> Result<Discovered, ConfigErrors> {
    let mut yaml = String::from("model_list:\n");
    let mut found = Vec::new();
    let mut notes = Vec::new();
    for (prefix, keys, base_var) in KEYED {
        let Some(key) = keys.iter().find(|k| var(env, k).is_some()) else {
            continue;
        };
        let base = var(env, base_var).map(|_| format!("${{{base_var}}}"));
        route(
            &mut yaml,
            &format!("{prefix}/*"),
            &format!("{prefix}/*"),
            base.as_deref(),
        );
        found.push(match base {
            Some(_) => format!("{prefix}/* ({key}, {base_var})"),
            None => format!("{prefix}/* ({key})"),
        });
    }
    let sigv4 =
        var(env, "AWS_ACCESS_KEY_ID").is_some() && var(env, "AWS_SECRET_ACCESS_KEY").is_some();
    let bearer = var(env, "AWS_BEARER_TOKEN_BEDROCK").is_some();
    if sigv4 || bearer {
        let endpoint = "AWS_ENDPOINT_URL_BEDROCK_RUNTIME";
        let base = var(env, endpoint).map(|_| format!("${{{endpoint}}}"));
        route(&mut yaml, "bedrock/*", "bedrock/*", base.as_deref());
        let creds = if sigv4 {
            "AWS_ACCESS_KEY_ID"
        } else {
            "AWS_BEARER_TOKEN_BEDROCK"
        };
        found.push(format!("bedrock/* ({creds})"));
    } else if var(env, "AWS_ACCESS_KEY_ID").is_some() {
        notes.push(
            "AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY: bedrock/* not served"
                .to_owned(),
        );
    }
    if answers.ollama {
        route(&mut yaml, "ollama/*", "ollama/*", Some(&targets.ollama));
        found.push(format!("ollama/* (Ollama at {})", targets.ollama));
    }
    if let (Some(base), Some(models)) = (&targets.upstream, &answers.upstream_models) {
        let usable: Vec<&String> = models
            .iter()
            .filter(|m| usable_model_id(m))
            .take(MAX_UPSTREAM_MODELS)
            .collect();
        if usable.is_empty() {
            notes.push(format!(
                "GATEHOUSE_DEFAULT_UPSTREAM {base} answered but lists no usable model id"
            ));
        }
        for id in &usable {
            // `openai_like`: an OpenAI-compatible server must never be sent OPENAI_API_KEY.
            route(&mut yaml, id, &format!("openai_like/{id}"), Some(base));
        }
        if !usable.is_empty() {
            found.push(format!(
                "{} model(s) of GATEHOUSE_DEFAULT_UPSTREAM {base}",
                usable.len()
            ));
        }
    } else if let Some(base) = &targets.upstream {
        notes.push(format!(
            "GATEHOUSE_DEFAULT_UPSTREAM {base} did not answer GET {base}/models at start-up: not served"
        ));
    }
    if found.is_empty() {
        yaml = String::from("model_list: []\n");
    }
    let loaded = load_str(&yaml, DISCOVERED_ORIGIN, env)?;
    Ok(Discovered {
        loaded,
        found,
        notes,
    })
}

/// `gatehouse --model provider/name [--api_base URL]`, as LiteLLM's CLI has it: one
/// model served under its own name.
pub fn single_model(
    model: &str,
    api_base: Option<&str>,
    env: EnvLookup<'_>,
) -> Result<Loaded, ConfigErrors> {
    // `$` would be read as a `${}` reference; nothing else in a quoted scalar is syntax.
    if model.contains('$') || api_base.is_some_and(|b| b.contains('$')) {
        return Err(ConfigErrors::single(
            MODEL_FLAG_ORIGIN,
            "model",
            None,
            "\"$\" is not allowed in --model or --api_base".to_owned(),
        ));
    }
    let mut yaml = String::from("model_list:\n");
    route(&mut yaml, model, model, api_base);
    load_str(&yaml, MODEL_FLAG_ORIGIN, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |n| {
            vars.iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn names(d: &Discovered) -> Vec<&str> {
        d.loaded
            .deployments()
            .iter()
            .map(|d| d.model_name.as_str())
            .collect()
    }

    #[test]
    fn keys_become_wildcard_routes_without_copying_the_key() {
        let vars = [
            ("OPENAI_API_KEY", "sk-openai-secret"),
            ("OPENAI_API_BASE", "http://127.0.0.1:9/v1"),
            ("ANTHROPIC_API_KEY", "sk-ant-secret"),
            ("GEMINI_API_KEY", ""),
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ];
        let env = env_of(&vars);
        let targets = probe_targets(&env).unwrap();
        let d = discover(&env, &targets, &ProbeAnswers::default()).unwrap();
        assert_eq!(names(&d), ["openai/*", "anthropic/*", "bedrock/*"]);
        let deps = d.loaded.deployments();
        assert_eq!(deps[0].api_base(), Some("http://127.0.0.1:9/v1"));
        assert_eq!(deps[1].api_base(), Some("https://api.anthropic.com"));
        assert!(deps.iter().all(|d| d.params.api_key.is_none()));
        let summary = d.loaded.summary();
        assert!(!summary.contains("secret"), "{summary}");
        assert_eq!(d.found[0], "openai/* (OPENAI_API_KEY, OPENAI_API_BASE)");
    }

    #[test]
    fn probed_servers_are_served_only_when_they_answer() {
        let vars = [
            ("OLLAMA_HOST", "0.0.0.0:11500"),
            ("GATEHOUSE_DEFAULT_UPSTREAM", "http://10.0.0.5:9000/v1/"),
        ];
        let env = env_of(&vars);
        let targets = probe_targets(&env).unwrap();
        assert_eq!(targets.ollama, "http://127.0.0.1:11500/v1");
        assert_eq!(targets.upstream.as_deref(), Some("http://10.0.0.5:9000/v1"));

        let silent = discover(&env, &targets, &ProbeAnswers::default()).unwrap();
        assert!(silent.found.is_empty());
        assert!(silent.loaded.deployments().is_empty());
        assert!(
            silent.notes[0].contains("did not answer"),
            "{:?}",
            silent.notes
        );

        let answers = ProbeAnswers {
            ollama: true,
            upstream_models: Some(vec![
                "llama-3-8b".into(),
                "os.environ/AWS_SECRET_ACCESS_KEY".into(),
                "${HOME}".into(),
                "any*".into(),
                "qwen/Qwen2.5-7B".into(),
            ]),
        };
        let d = discover(&env, &targets, &answers).unwrap();
        assert_eq!(names(&d), ["ollama/*", "llama-3-8b", "qwen/Qwen2.5-7B"]);
        let deps = d.loaded.deployments();
        assert_eq!(deps[0].api_base(), Some("http://127.0.0.1:11500/v1"));
        assert_eq!(deps[2].api_base(), Some("http://10.0.0.5:9000/v1"));
        assert_eq!(deps[2].provider.name, "openai_like");
    }

    #[test]
    fn bad_addresses_are_reported_not_ignored() {
        let vars = [("GATEHOUSE_DEFAULT_UPSTREAM", "localhost:8000")];
        let err = probe_targets(&env_of(&vars)).unwrap_err().to_string();
        assert!(err.contains("GATEHOUSE_DEFAULT_UPSTREAM"), "{err}");
        let vars = [("OLLAMA_HOST", "http://x y")];
        assert!(probe_targets(&env_of(&vars)).is_err());
        assert_eq!(
            ollama_base("example.com").unwrap(),
            "http://example.com:11434"
        );
        assert_eq!(
            ollama_base("https://o.lan:443/").unwrap(),
            "https://o.lan:443"
        );
    }

    #[test]
    fn model_flag_serves_one_model_under_its_name() {
        let loaded = single_model("openai/gpt-4o", None, &|_: &str| None).unwrap();
        let d = loaded.deployments();
        assert_eq!((d.len(), d[0].model_name.as_str()), (1, "openai/gpt-4o"));
        assert_eq!(d[0].provider.name, "openai");
        let err = single_model("antropic/claude", None, &|_: &str| None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean \"anthropic\""), "{err}");
        assert!(single_model("openai/${HOME}", None, &|_: &str| Some("x".into())).is_err());
    }
}
