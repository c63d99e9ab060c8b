//! `serde_json::Value` → typed `Config`, collecting every type error with its path.
//!
//! serde stops at the first error, so we loop: when a value does not fit its field we
//! first try its other plausible type (YAML typed `1.10` as a number but the field wants
//! text; an env var gave `"4000"` to a number field), and when that fails too we record
//! the error, cut the value out and go again. The loop ends when the document
//! deserializes or there is nothing left to cut.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use serde_path_to_error::Segment;

use crate::error::ConfigError;
use crate::lines::{child_index, child_key, parent_path};
use crate::scalar::loose_scalar;
use crate::schema::Config;
use crate::tree::Tree;

/// Upper bound on retries; each round removes or retypes one value, so real configs
/// finish long before this.
const MAX_ROUNDS: usize = 256;

/// Deserializes `tree.value`, appending type errors to `errors`. Returns the config built
/// from what was valid, or `None` when nothing usable is left.
pub(crate) fn decode(tree: &Tree, errors: &mut Vec<ConfigError>) -> Option<Config> {
    let mut value = tree.value.clone();
    let mut retyped: HashMap<String, String> = HashMap::new();
    let mut reported: HashSet<String> = HashSet::new();
    for _ in 0..MAX_ROUNDS {
        let err = match serde_path_to_error::deserialize::<_, Config>(&value) {
            Ok(config) => return Some(config),
            Err(e) => e,
        };
        let Some(path) = render(err.path()) else {
            errors.push(ConfigError {
                path: String::new(),
                line: None,
                message: err.inner().to_string(),
            });
            return None;
        };
        let message = err.inner().to_string();
        let source_text = tree.scalars.get(&path).map(|s| s.text.as_str());
        if !retyped.contains_key(&path)
            && let Some(v) = lookup_mut(&mut value, &path)
            && let Some(other) = other_type(v, source_text)
        {
            *v = other;
            retyped.insert(path, message);
            continue;
        }
        // Report the first complaint about a value, not the one about our retyped guess.
        let message = retyped.get(&path).cloned().unwrap_or(message);
        let mut cut = path.clone();
        if reported.insert(path.clone()) {
            // A key whose variable was missing already has its error.
            if errors.iter().any(|e| e.path == path) {
                if !remove(&mut value, &path) {
                    return None;
                }
                continue;
            }
            errors.push(ConfigError {
                line: tree.lines.line(&path),
                path,
                message,
            });
        } else {
            // Already reported and still failing (e.g. a required field we removed):
            // cut the parent instead.
            match parent_path(&path) {
                Some(p) => cut = p.to_string(),
                None => return None,
            }
        }
        if cut.is_empty() || !remove(&mut value, &cut) {
            return None;
        }
    }
    None
}

/// The value's other plausible type, if any.
fn other_type(v: &Value, source_text: Option<&str>) -> Option<Value> {
    match v {
        Value::Number(_) | Value::Bool(_) => source_text.map(|t| Value::String(t.to_string())),
        Value::String(s) => loose_scalar(s),
        _ => None,
    }
}

/// Renders a serde path in our dotted syntax; `None` when serde could not tell.
fn render(path: &serde_path_to_error::Path) -> Option<String> {
    let mut out = String::new();
    for seg in path.iter() {
        out = match seg {
            Segment::Seq { index } => child_index(&out, *index),
            Segment::Map { key } => child_key(&out, key),
            Segment::Enum { variant } => child_key(&out, variant),
            Segment::Unknown => return None,
        };
    }
    Some(out)
}

/// Splits a rendered path back into steps. Keys containing `.` or `[` are ambiguous;
/// such a lookup simply fails and the caller cuts higher up.
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            if let Ok(i) = r[..end].parse() {
                out.push(Step::Index(i));
            }
            rest = &r[end + 1..];
        }
    }
    out
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn lookup_mut<'v>(root: &'v mut Value, path: &str) -> Option<&'v mut Value> {
    let mut cur = root;
    for step in steps(path) {
        cur = match step {
            Step::Key(k) => cur.as_object_mut()?.get_mut(k)?,
            Step::Index(i) => cur.as_array_mut()?.get_mut(i)?,
        };
    }
    Some(cur)
}

/// Removes the value at `path`: a mapping entry disappears (so defaults apply); a list
/// item becomes `null` so later indices — and their line numbers — stay right.
fn remove(root: &mut Value, path: &str) -> bool {
    let Some(parent) = parent_path(path) else {
        return false;
    };
    let last = steps(path).pop();
    let Some(container) = lookup_mut(root, parent) else {
        return false;
    };
    match (container, last) {
        (Value::Object(map), Some(Step::Key(k))) => map.shift_remove(k).is_some(),
        (Value::Array(items), Some(Step::Index(i))) => match items.get_mut(i) {
            Some(slot) if !slot.is_null() => {
                *slot = Value::Null;
                true
            }
            _ => false,
        },
        _ => false,
    }
}
