//! YAML 1.2 core-schema typing of plain (unquoted) scalars, applied after substitution.
//! We do it ourselves because the typing must happen on the substituted text.

use serde_json::{Number, Value};

/// Types a plain scalar: null, bool, integer, float, else string.
pub(crate) fn plain_scalar(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => number(text).unwrap_or_else(|| Value::String(text.to_string())),
    }
}

/// A number or bool spelled as text, for the decoder's second try on a quoted value
/// (`port: "4000"`). Never null: an empty string stays a string.
pub(crate) fn loose_scalar(text: &str) -> Option<Value> {
    match plain_scalar(text.trim()) {
        v @ (Value::Bool(_) | Value::Number(_)) => Some(v),
        _ => None,
    }
}

fn number(text: &str) -> Option<Value> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty()
        || !digits
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'.')
    {
        return None;
    }
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::Number(i.into()));
        }
        if let Ok(u) = text.parse::<u64>() {
            return Some(Value::Number(u.into()));
        }
    }
    // Only decimal floats: Rust would also accept `inf`, `NaN`, which YAML spells differently
    // and JSON cannot hold.
    if digits
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && digits.bytes().any(|b| b.is_ascii_digit())
    {
        return text
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn typing() {
        assert_eq!(plain_scalar(""), Value::Null);
        assert_eq!(plain_scalar("~"), Value::Null);
        assert_eq!(plain_scalar("True"), json!(true));
        assert_eq!(plain_scalar("4000"), json!(4000));
        assert_eq!(plain_scalar("-3"), json!(-3));
        assert_eq!(plain_scalar("0.5"), json!(0.5));
        assert_eq!(plain_scalar("1e3"), json!(1000.0));
        assert_eq!(plain_scalar("2024-02-01"), json!("2024-02-01"));
        assert_eq!(plain_scalar("inf"), json!("inf"));
        assert_eq!(plain_scalar("gpt-4o"), json!("gpt-4o"));
        assert_eq!(plain_scalar("yes"), json!("yes"));
        assert_eq!(loose_scalar("4000"), Some(json!(4000)));
        assert_eq!(loose_scalar(""), None);
        assert_eq!(loose_scalar("abc"), None);
    }
}
