//! YAML source → `serde_json::Value`, remembering where every key came from.
//!
//! We walk marked-yaml's node tree (which keeps spans) instead of deserializing YAML
//! directly so that (a) environment substitution sees every string scalar with its config
//! path, (b) each dotted path gets a line number for later error messages, and (c) we
//! decide scalar types ourselves, after substitution — `port: ${PORT}` must become a
//! number once `PORT` is known.

use std::collections::HashMap;

use marked_yaml::{LoadError, LoaderOptions, Node};
use serde_json::{Map, Value};

use crate::env::{EnvLookup, substitute};
use crate::error::ConfigError;
use crate::lines::{LineIndex, child_index, child_key};
use crate::scalar::plain_scalar;

/// What a scalar looked like in the source, after substitution. The decoder uses it to
/// retry a value with its other plausible type (`"4000"` for a number field, `1.10`
/// kept as text for a string field).
#[derive(Debug, Clone)]
pub(crate) struct ScalarInfo {
    pub text: String,
}

/// The parsed document plus everything learnt while walking it.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub value: Value,
    pub lines: LineIndex,
    pub scalars: HashMap<String, ScalarInfo>,
    /// Substitution failures; the walk carries on so every missing variable is reported.
    pub errors: Vec<ConfigError>,
}

/// Parses `src` and substitutes the environment. A YAML syntax error is returned alone:
/// nothing after it can be trusted.
pub(crate) fn parse(src: &str, env: EnvLookup<'_>) -> Result<Tree, ConfigError> {
    let options = || {
        LoaderOptions::default()
            .error_on_duplicate_keys(true)
            // Keeps quoted scalars apart from plain ones: `"8080"` stays a string.
            .prevent_coercion(true)
    };
    let (node, expanded) = match marked_yaml::parse_yaml_with_options(0, src, options()) {
        Err(LoadError::UnexpectedAnchor(_)) => {
            let text = crate::anchors::expand(src).map_err(|message| ConfigError {
                path: String::new(),
                line: None,
                message: format!("YAML anchors: {message}"),
            })?;
            let node =
                marked_yaml::parse_yaml_with_options(0, &text, options()).map_err(syntax_error)?;
            (node, true)
        }
        parsed => (parsed.map_err(syntax_error)?, false),
    };
    let mut tree = Tree::default();
    tree.value = walk(&node, "", env, &mut tree);
    if expanded {
        // Lines of the expanded text are not the file's lines: report paths only.
        tree.lines = LineIndex::default();
        for e in &mut tree.errors {
            e.line = None;
        }
    }
    tree.lines.insert(String::new(), 1);
    Ok(tree)
}

fn walk(node: &Node, path: &str, env: EnvLookup<'_>, tree: &mut Tree) -> Value {
    match node {
        Node::Mapping(map) => {
            let mut out = Map::new();
            for (key, child) in map.iter() {
                let child_path = child_key(path, key.as_str());
                if let Some(line) = key.span().start().map(|m| m.line()) {
                    tree.lines.insert(child_path.clone(), line);
                }
                let value = walk(child, &child_path, env, tree);
                // `key:` with no value means "not set" for every field we have; dropping
                // it lets defaults apply instead of failing on `null`.
                if !value.is_null() {
                    out.insert(key.as_str().to_string(), value);
                }
            }
            Value::Object(out)
        }
        Node::Sequence(seq) => {
            let mut out = Vec::with_capacity(seq.len());
            for (i, child) in seq.iter().enumerate() {
                let child_path = child_index(path, i);
                if let Some(line) = child.span().start().map(|m| m.line()) {
                    tree.lines.insert(child_path.clone(), line);
                }
                out.push(walk(child, &child_path, env, tree));
            }
            Value::Array(out)
        }
        Node::Scalar(scalar) => {
            let plain = scalar.may_coerce();
            let text = match substitute(scalar.as_str(), env) {
                Ok(s) => s.text,
                Err(e) => {
                    let line = scalar
                        .span()
                        .start()
                        .map(|m| m.line())
                        .or_else(|| tree.lines.line(path));
                    tree.errors.push(ConfigError {
                        path: path.to_string(),
                        line,
                        message: e.to_string(),
                    });
                    // A placeholder string keeps the shape so the rest of the file is
                    // still checked; errors at this path are not reported twice.
                    tree.scalars.insert(
                        path.to_string(),
                        ScalarInfo {
                            text: String::new(),
                        },
                    );
                    return Value::String(String::new());
                }
            };
            let value = if plain {
                plain_scalar(&text)
            } else {
                Value::String(text.clone())
            };
            tree.scalars.insert(path.to_string(), ScalarInfo { text });
            value
        }
    }
}

fn syntax_error(e: LoadError) -> ConfigError {
    let (line, message) = match &e {
        LoadError::ScanError(m, scan) => (
            m.line(),
            format!(
                "YAML syntax error at column {}: {}",
                m.column(),
                scan.info()
            ),
        ),
        LoadError::DuplicateKey(inner) => {
            let first = inner.prev_key.span().start().map(|m| m.line());
            let line = inner.key.span().start().map(|m| m.line()).unwrap_or(0);
            let msg = match first {
                Some(f) => format!(
                    "duplicate key \"{}\" (first defined on line {f})",
                    inner.key.as_str()
                ),
                None => format!("duplicate key \"{}\"", inner.key.as_str()),
            };
            (line, msg)
        }
        LoadError::UnexpectedAnchor(m) => (
            m.line(),
            "YAML anchors and aliases (&name, *name) are not supported; repeat the values"
                .to_string(),
        ),
        LoadError::UnexpectedTag(m) => (m.line(), "YAML tags (!tag) are not supported".to_string()),
        LoadError::MappingKeyMustBeScalar(m) => {
            (m.line(), "mapping keys must be plain strings".to_string())
        }
        LoadError::TopLevelMustBeMapping(m) | LoadError::TopLevelMustBeSequence(m) => (
            m.line(),
            "the top level of the config must be a mapping (model_list:, litellm_settings:, ...)"
                .to_string(),
        ),
    };
    ConfigError {
        path: String::new(),
        line: (line > 0).then_some(line),
        message,
    }
}
