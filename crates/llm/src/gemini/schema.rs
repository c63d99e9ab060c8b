//! JSON Schema (as OpenAI tools carry it) -> the OpenAPI 3.0 subset Gemini accepts in
//! `functionDeclarations[].parameters` and `responseSchema`.
//!
//! Gemini rejects a request with any field outside its `Schema` message (`$schema`,
//! `additionalProperties`, `const`, `oneOf`, `$ref`, ...), so we keep only its fields and
//! rewrite the JSON Schema idioms that have an equivalent:
//! - `$ref` to `#/$defs/X` or `#/definitions/X` is inlined (bounded depth: Gemini has no
//!   references, and a recursive schema is cut to a plain object);
//! - `type: ["string", "null"]` becomes `type: "string"` + `nullable: true`;
//! - `anyOf`/`oneOf` with a `{"type":"null"}` member become `nullable` on the rest;
//!   `oneOf` is otherwise treated as `anyOf` (the closest Gemini has);
//! - `const: v` becomes a one-value `enum`; enum values are sent as strings (Gemini's
//!   `enum` is a string list) and kept only on string-typed schemas;
//! - `allOf` with one member is merged into its parent (others are dropped).

use serde_json::{Map, Value, json};

/// Fields of Gemini's `Schema` message that we keep as they are.
const KEPT: &[&str] = &[
    "format",
    "title",
    "description",
    "nullable",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "minimum",
    "maximum",
    "propertyOrdering",
];

/// How deep `$ref`s are inlined before a recursive schema is cut.
const MAX_REF_DEPTH: usize = 3;

/// Reduces `schema` to what Gemini accepts (see the module docs).
pub fn reduce_schema(schema: &Value) -> Value {
    let defs = definitions(schema);
    reduce(schema, &defs, 0)
}

fn definitions(root: &Value) -> Map<String, Value> {
    let mut defs = Map::new();
    for key in ["definitions", "$defs"] {
        if let Some(map) = root.get(key).and_then(Value::as_object) {
            for (name, schema) in map {
                defs.insert(format!("#/{key}/{name}"), schema.clone());
            }
        }
    }
    defs
}

fn reduce(schema: &Value, defs: &Map<String, Value>, depth: usize) -> Value {
    let Some(obj) = schema.as_object() else {
        // `true` / `{}`-like schemas: anything goes; Gemini needs a type, object is the
        // loosest it has.
        return json!({"type": "object"});
    };
    if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
        return match defs.get(target) {
            Some(resolved) if depth < MAX_REF_DEPTH => {
                let mut out = reduce(resolved, defs, depth + 1);
                copy_description(obj, &mut out);
                out
            }
            _ => json!({"type": "object"}),
        };
    }
    let mut out = Map::new();
    let mut nullable = false;

    match obj.get("type") {
        Some(Value::String(t)) if t == "null" => nullable = true,
        Some(Value::String(t)) => {
            out.insert("type".into(), json!(t));
        }
        Some(Value::Array(types)) => {
            let named: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            nullable = named.contains(&"null");
            let non_null: Vec<&str> = named.into_iter().filter(|t| *t != "null").collect();
            match non_null.as_slice() {
                [one] => {
                    out.insert("type".into(), json!(one));
                }
                [] => {}
                many => {
                    let variants: Vec<Value> = many.iter().map(|t| json!({"type": t})).collect();
                    out.insert("anyOf".into(), Value::Array(variants));
                }
            }
        }
        _ => {}
    }

    for key in KEPT {
        if let Some(v) = obj.get(*key) {
            out.insert((*key).to_owned(), v.clone());
        }
    }

    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        let reduced: Map<String, Value> = props
            .iter()
            .map(|(k, v)| (k.clone(), reduce(v, defs, depth)))
            .collect();
        out.insert("properties".into(), Value::Object(reduced));
        out.entry("type").or_insert_with(|| json!("object"));
    }
    if let Some(required) = obj.get("required").and_then(Value::as_array) {
        // Gemini rejects required names that are not declared properties.
        let declared = out.get("properties").and_then(Value::as_object);
        let kept: Vec<Value> = required
            .iter()
            .filter(|r| {
                r.as_str()
                    .is_some_and(|name| declared.is_some_and(|p| p.contains_key(name)))
            })
            .cloned()
            .collect();
        if !kept.is_empty() {
            out.insert("required".into(), Value::Array(kept));
        }
    }
    if let Some(items) = obj.get("items") {
        // Tuple-form `items: [..]` has no equivalent; its first schema is the best guess.
        let item = match items {
            Value::Array(list) => list.first().cloned().unwrap_or(json!({})),
            other => other.clone(),
        };
        out.insert("items".into(), reduce(&item, defs, depth));
        out.entry("type").or_insert_with(|| json!("array"));
    }

    let enum_values = obj
        .get("enum")
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| obj.get("const").map(|c| vec![c.clone()]));
    if let Some(values) = enum_values {
        if values.iter().any(Value::is_null) {
            nullable = true;
        }
        let strings: Vec<Value> = values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| match v {
                Value::String(s) => json!(s),
                other => json!(other.to_string()),
            })
            .collect();
        let typed = out.get("type").and_then(Value::as_str);
        if !strings.is_empty() && matches!(typed, None | Some("string")) {
            out.insert("type".into(), json!("string"));
            out.insert("format".into(), json!("enum"));
            out.insert("enum".into(), Value::Array(strings));
        }
    }

    let union = obj
        .get("anyOf")
        .or_else(|| obj.get("oneOf"))
        .and_then(Value::as_array);
    if let Some(variants) = union {
        let (nulls, rest): (Vec<&Value>, Vec<&Value>) = variants
            .iter()
            .partition(|v| v.get("type").and_then(Value::as_str) == Some("null"));
        nullable |= !nulls.is_empty();
        match rest.as_slice() {
            [] => {}
            [only] => merge_missing(&mut out, reduce(only, defs, depth)),
            many => {
                let reduced: Vec<Value> = many.iter().map(|v| reduce(v, defs, depth)).collect();
                out.insert("anyOf".into(), Value::Array(reduced));
            }
        }
    }
    if let Some([only]) = obj
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        merge_missing(&mut out, reduce(only, defs, depth));
    }

    if nullable {
        out.insert("nullable".into(), json!(true));
    }
    if out.get("type").is_none() && out.get("anyOf").is_none() {
        out.insert("type".into(), json!("object"));
    }
    Value::Object(out)
}

/// Fields of `from` not yet set on `out`.
fn merge_missing(out: &mut Map<String, Value>, from: Value) {
    if let Value::Object(from) = from {
        for (k, v) in from {
            out.entry(k).or_insert(v);
        }
    }
}

/// A `$ref` site's own description wins over the referenced schema's.
fn copy_description(site: &Map<String, Value>, out: &mut Value) {
    if let (Some(desc), Some(obj)) = (site.get("description"), out.as_object_mut()) {
        obj.insert("description".into(), desc.clone());
    }
}
