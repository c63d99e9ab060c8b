//! A form generated from a tool's JSON Schema (`inputSchema`), and the arguments read
//! back from what was posted. Fields are named `arg.<property>`; values are typed by the
//! schema (numbers, booleans, JSON for objects and arrays). A `json` field, when filled,
//! is taken as the whole arguments object instead.

use std::fmt::Write;

use serde_json::{Map, Value};

use super::FormFields;
use super::html::esc;

/// Properties shown at most: a hostile schema must not make a megabyte form.
const MAX_FIELDS: usize = 64;

fn properties(schema: &Value) -> Vec<(&String, &Value)> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().take(MAX_FIELDS).collect())
        .unwrap_or_default()
}

fn required(schema: &Value) -> Vec<&str> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn kind(prop: &Value) -> &str {
    match prop.get("type") {
        Some(Value::String(t)) => t,
        // ["string", "null"] and the like: the first non-null type.
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string"),
        _ if prop.get("enum").is_some() => "string",
        _ => "json",
    }
}

pub fn render(schema: &Value) -> String {
    let req = required(schema);
    let mut out = String::new();
    for (name, prop) in properties(schema) {
        let field = format!("arg.{name}");
        let star = if req.contains(&name.as_str()) {
            " *"
        } else {
            ""
        };
        let help = prop
            .get("description")
            .and_then(Value::as_str)
            .map(|d| format!("<small>{}</small>", esc(d)))
            .unwrap_or_default();
        let default = prop.get("default");
        let input = match (kind(prop), prop.get("enum").and_then(Value::as_array)) {
            (_, Some(options)) => {
                let mut s = format!(
                    "<select name=\"{}\"><option value=\"\"></option>",
                    esc(&field)
                );
                for o in options.iter().take(MAX_FIELDS) {
                    let v = o
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| o.to_string());
                    let _ = write!(s, "<option>{}</option>", esc(&v));
                }
                s.push_str("</select>");
                s
            }
            ("boolean", None) => format!(
                "<select name=\"{}\"><option value=\"\"></option><option>true</option><option>false</option></select>",
                esc(&field)
            ),
            (t @ ("integer" | "number"), None) => format!(
                "<input type=\"number\" step=\"{}\" name=\"{}\" value=\"{}\">",
                if t == "integer" { "1" } else { "any" },
                esc(&field),
                default.map(|d| esc(&d.to_string())).unwrap_or_default()
            ),
            ("string", None) => format!(
                "<input name=\"{}\" value=\"{}\">",
                esc(&field),
                default.and_then(Value::as_str).map(esc).unwrap_or_default()
            ),
            _ => format!(
                "<textarea name=\"{}\" rows=\"3\" placeholder=\"JSON\"></textarea>",
                esc(&field)
            ),
        };
        let _ = write!(
            out,
            "<label><span>{}{star} <code>{}</code></span>{input}{help}</label>",
            esc(name),
            esc(kind(prop))
        );
    }
    let _ = write!(
        out,
        "<details><summary>Arguments as JSON instead</summary>\
         <textarea name=\"json\" rows=\"4\" placeholder=\"{{}}\"></textarea></details>"
    );
    out
}

/// The arguments object for a posted form, or what is wrong with it.
pub fn arguments(schema: &Value, form: &FormFields) -> Result<Value, String> {
    if let Some(raw) = super::field(form, "json").filter(|j| !j.trim().is_empty()) {
        let v: Value = serde_json::from_str(raw).map_err(|e| format!("arguments JSON: {e}"))?;
        return if v.is_object() {
            Ok(v)
        } else {
            Err("arguments JSON must be an object".into())
        };
    }
    let req = required(schema);
    let mut args = Map::new();
    for (name, prop) in properties(schema) {
        let raw = super::field(form, &format!("arg.{name}")).unwrap_or_default();
        if raw.is_empty() {
            if req.contains(&name.as_str()) {
                return Err(format!("{name} is required"));
            }
            continue;
        }
        let value = match kind(prop) {
            "integer" => raw
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .map_err(|_| format!("{name}: an integer"))?,
            "number" => raw
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| format!("{name}: a number"))?,
            "boolean" => Value::Bool(raw == "true"),
            "string" => Value::String(raw.to_string()),
            _ => serde_json::from_str(raw).map_err(|e| format!("{name}: JSON: {e}"))?,
        };
        args.insert(name.clone(), value);
    }
    Ok(Value::Object(args))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn form(pairs: &[(&str, &str)]) -> FormFields {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn typed_fields_round_trip() {
        let schema = json!({"type": "object", "required": ["a"], "properties": {
            "a": {"type": "number"}, "b": {"type": "integer"}, "msg": {"type": "string"},
            "flag": {"type": "boolean"}, "tags": {"type": "array"},
            "mode": {"enum": ["x", "y"]}, "<evil>": {"type": "string", "description": "<b>"}}});
        let html = render(&schema);
        assert!(html.contains("name=\"arg.a\""));
        assert!(html.contains("&lt;evil&gt;") && !html.contains("<evil>"));
        assert!(html.contains("<option>x</option>"));
        let args = arguments(
            &schema,
            &form(&[
                ("arg.a", "1.5"),
                ("arg.b", "2"),
                ("arg.msg", "hi"),
                ("arg.flag", "true"),
                ("arg.tags", "[1]"),
                ("arg.mode", "y"),
            ]),
        )
        .unwrap();
        assert_eq!(
            args,
            json!({"a": 1.5, "b": 2, "msg": "hi", "flag": true, "tags": [1], "mode": "y"})
        );
        assert_eq!(arguments(&schema, &form(&[])).unwrap_err(), "a is required");
        assert!(arguments(&schema, &form(&[("arg.a", "x")])).is_err());
        assert_eq!(
            arguments(&schema, &form(&[("json", "{\"a\": 3}")])).unwrap(),
            json!({"a": 3})
        );
        assert!(arguments(&schema, &form(&[("json", "[1]")])).is_err());
    }
}
