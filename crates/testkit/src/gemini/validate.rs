//! Request checks Gemini applies to `generateContent` / `streamGenerateContent`. Gemini's
//! JSON parser rejects unknown field names, which is what catches mappers that leak
//! OpenAI or JSON Schema fields; the message follows Google's wording.

use serde_json::{Map, Value};

use super::errors::ApiError;
use crate::plan::{LastTurn, count_tokens};

pub(crate) struct GenerateRequest<'a> {
    pub tools: Vec<&'a str>,
    pub input_tokens: u64,
    contents: &'a [Value],
}

const TOP_LEVEL: &[&str] = &[
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "safetySettings",
    "safety_settings",
    "generationConfig",
    "generation_config",
    "cachedContent",
    "cached_content",
    "labels",
];

const PART_DATA: &[&str] = &[
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
];

const PART_FLAGS: &[&str] = &[
    "thought",
    "thoughtSignature",
    "videoMetadata",
    "partMetadata",
];

const GENERATION_CONFIG: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "mediaResolution",
];

/// Fields of Gemini's `Schema` message.
const SCHEMA: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

const SCHEMA_TYPES: &[&str] = &[
    "string", "number", "integer", "boolean", "array", "object", "null",
];

const SAFETY_CATEGORIES: &[&str] = &[
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_CIVIC_INTEGRITY",
];

const SAFETY_THRESHOLDS: &[&str] = &[
    "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
    "BLOCK_LOW_AND_ABOVE",
    "BLOCK_MEDIUM_AND_ABOVE",
    "BLOCK_ONLY_HIGH",
    "BLOCK_NONE",
    "OFF",
];

fn unknown(name: &str, at: &str) -> ApiError {
    let at = if at.is_empty() {
        String::new()
    } else {
        format!(" at '{at}'")
    };
    ApiError::invalid(format!(
        "Invalid JSON payload received. Unknown name \"{name}\"{at}: Cannot find field."
    ))
}

fn only_known(obj: &Map<String, Value>, known: &[&str], at: &str) -> Result<(), ApiError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(unknown(k, at)),
        None => Ok(()),
    }
}

fn parts(content: &Value) -> &[Value] {
    content
        .get("parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn role(content: &Value) -> &str {
    content
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or("user")
}

fn count(content: &Value, field: &str) -> usize {
    parts(content)
        .iter()
        .filter(|p| p.get(field).is_some())
        .count()
}

/// Function names: start with a letter or underscore; letters, digits, `_ . : -`; ≤ 64.
fn valid_function_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && name.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
}

fn check_schema(schema: &Value, at: &str) -> Result<(), ApiError> {
    let Some(obj) = schema.as_object() else {
        return Err(ApiError::invalid(format!(
            "Invalid value at '{at}': expected a Schema object"
        )));
    };
    only_known(obj, SCHEMA, at)?;
    if let Some(t) = obj.get("type") {
        let ok = t
            .as_str()
            .is_some_and(|t| SCHEMA_TYPES.contains(&t.to_ascii_lowercase().as_str()));
        if !ok {
            return Err(ApiError::invalid(format!(
                "Invalid value at '{at}.type' ({t}), expected a Type enum name"
            )));
        }
        let is_object = t.as_str().is_some_and(|t| t.eq_ignore_ascii_case("object"));
        let empty = obj
            .get("properties")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        if is_object && empty && at.ends_with("parameters") {
            return Err(ApiError::invalid(format!(
                "* GenerateContentRequest.{at}.properties: should be non-empty for OBJECT type"
            )));
        }
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array)
        && !values.iter().all(Value::is_string)
    {
        return Err(ApiError::invalid(format!(
            "Invalid value at '{at}.enum': enum values must be strings"
        )));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            check_schema(sub, &format!("{at}.properties[{name}]"))?;
        }
    }
    if let Some(items) = obj.get("items") {
        check_schema(items, &format!("{at}.items"))?;
    }
    for (i, sub) in obj
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        check_schema(sub, &format!("{at}.any_of[{i}]"))?;
    }
    Ok(())
}

fn check_part(part: &Value, at: &str) -> Result<(), ApiError> {
    let Some(obj) = part.as_object() else {
        return Err(ApiError::invalid(format!(
            "Invalid value at '{at}': expected a Part"
        )));
    };
    let mut known: Vec<&str> = PART_DATA.to_vec();
    known.extend_from_slice(PART_FLAGS);
    only_known(obj, &known, at)?;
    let data = obj
        .keys()
        .filter(|k| PART_DATA.contains(&k.as_str()))
        .count();
    if data != 1 {
        return Err(ApiError::invalid(format!(
            "* GenerateContentRequest.{at}.data: required oneof field 'data' must have one initialized field"
        )));
    }
    if let Some(call) = obj.get("functionCall") {
        let name = call.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::invalid(format!(
                "* GenerateContentRequest.{at}.function_call.name: Name cannot be empty."
            )));
        }
        if let Some(args) = call.get("args")
            && !args.is_object()
        {
            return Err(ApiError::invalid(format!(
                "Invalid value at '{at}.function_call.args' (type.googleapis.com/google.protobuf.Struct)"
            )));
        }
    }
    if let Some(resp) = obj.get("functionResponse") {
        let name = resp.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::invalid(format!(
                "* GenerateContentRequest.{at}.function_response.name: Name cannot be empty."
            )));
        }
        if !resp.get("response").is_some_and(Value::is_object) {
            return Err(ApiError::invalid(format!(
                "Invalid value at '{at}.function_response.response' (type.googleapis.com/google.protobuf.Struct)"
            )));
        }
    }
    if let Some(blob) = obj.get("inlineData")
        && (blob.get("mimeType").and_then(Value::as_str).is_none()
            || blob.get("data").and_then(Value::as_str).is_none())
    {
        return Err(ApiError::invalid(format!(
            "* GenerateContentRequest.{at}.inline_data: mimeType and data are required"
        )));
    }
    Ok(())
}

fn text_of(content: &Value) -> String {
    parts(content)
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("")
}

pub(crate) fn validate(body: &Value) -> Result<GenerateRequest<'_>, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid(
            "Invalid JSON payload received. Expected an object.",
        ));
    };
    only_known(obj, TOP_LEVEL, "")?;
    let contents = match obj.get("contents") {
        Some(Value::Array(c)) if !c.is_empty() => c.as_slice(),
        _ => {
            return Err(ApiError::invalid(
                "* GenerateContentRequest.contents: contents is not specified\n",
            ));
        }
    };
    let mut input_tokens = 0;
    for (i, content) in contents.iter().enumerate() {
        let at = format!("contents[{i}]");
        if let Some(obj) = content.as_object() {
            only_known(obj, &["role", "parts"], &at)?;
        }
        let r = role(content);
        if !matches!(r, "user" | "model" | "function") {
            return Err(ApiError::invalid(format!(
                "Please use a valid role: user, model. ({at}.role: {r})"
            )));
        }
        if parts(content).is_empty() {
            return Err(ApiError::invalid(format!(
                "* GenerateContentRequest.{at}.parts: contents.parts must not be empty.\n"
            )));
        }
        for (j, part) in parts(content).iter().enumerate() {
            check_part(part, &format!("{at}.parts[{j}]"))?;
        }
        input_tokens += count_tokens(&text_of(content));
        // A function response turn must answer the call turn right before it, one
        // response per call.
        let responses = count(content, "functionResponse");
        if responses > 0 {
            let calls = i
                .checked_sub(1)
                .and_then(|p| contents.get(p))
                .filter(|prev| role(prev) == "model")
                .map_or(0, |prev| count(prev, "functionCall"));
            if calls == 0 {
                return Err(ApiError::invalid(
                    "Please ensure that function response turn comes immediately after a function call turn.",
                ));
            }
            if calls != responses {
                return Err(ApiError::invalid(
                    "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.",
                ));
            }
        }
    }
    if let Some(system) = obj
        .get("systemInstruction")
        .or_else(|| obj.get("system_instruction"))
    {
        for (j, part) in parts(system).iter().enumerate() {
            check_part(part, &format!("system_instruction.parts[{j}]"))?;
        }
        input_tokens += count_tokens(&text_of(system));
    }
    let mut names = Vec::new();
    for (i, tool) in obj
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let at = format!("tools[{i}]");
        let Some(tool) = tool.as_object() else {
            return Err(ApiError::invalid(format!("Invalid value at '{at}'")));
        };
        only_known(
            tool,
            &[
                "functionDeclarations",
                "googleSearch",
                "googleSearchRetrieval",
                "codeExecution",
                "urlContext",
            ],
            &at,
        )?;
        for (j, decl) in tool
            .get("functionDeclarations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let at = format!("{at}.function_declarations[{j}]");
            if let Some(d) = decl.as_object() {
                only_known(
                    d,
                    &[
                        "name",
                        "description",
                        "parameters",
                        "parametersJsonSchema",
                        "response",
                        "behavior",
                    ],
                    &at,
                )?;
            }
            let name = decl.get("name").and_then(Value::as_str).unwrap_or_default();
            if !valid_function_name(name) {
                return Err(ApiError::invalid(format!(
                    "* GenerateContentRequest.{at}.name: Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a maximum length of 64.\n"
                )));
            }
            if let Some(params) = decl.get("parameters") {
                check_schema(params, &format!("{at}.parameters"))?;
            }
            names.push(name);
        }
    }
    if let Some(config) = obj
        .get("generationConfig")
        .or_else(|| obj.get("generation_config"))
    {
        let Some(config) = config.as_object() else {
            return Err(ApiError::invalid("Invalid value at 'generation_config'"));
        };
        only_known(config, GENERATION_CONFIG, "generation_config")?;
        if let Some(t) = config.get("temperature").and_then(Value::as_f64)
            && !(0.0..=2.0).contains(&t)
        {
            return Err(ApiError::invalid(format!(
                "* GenerateContentRequest.generation_config.temperature: temperature must be in [0.0, 2.0], got {t}"
            )));
        }
        if let Some(schema) = config.get("responseSchema") {
            check_schema(schema, "generation_config.response_schema")?;
        }
    }
    if let Some(mode) = body
        .pointer("/toolConfig/functionCallingConfig/mode")
        .and_then(Value::as_str)
        && !matches!(
            mode,
            "AUTO" | "ANY" | "NONE" | "VALIDATED" | "MODE_UNSPECIFIED"
        )
    {
        return Err(ApiError::invalid(format!(
            "Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"{mode}\""
        )));
    }
    for (i, setting) in obj
        .get("safetySettings")
        .or_else(|| obj.get("safety_settings"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = |name: &str| {
            setting
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        if !SAFETY_CATEGORIES.contains(&field("category"))
            || !SAFETY_THRESHOLDS.contains(&field("threshold"))
        {
            return Err(ApiError::invalid(format!(
                "Invalid value at 'safety_settings[{i}]': unknown category or threshold"
            )));
        }
    }
    Ok(GenerateRequest {
        tools: names,
        input_tokens: input_tokens.max(1),
        contents,
    })
}

impl GenerateRequest<'_> {
    pub fn last_turn(&self) -> LastTurn {
        let Some(last) = self.contents.last() else {
            return LastTurn::UserText(String::new());
        };
        let results: Vec<String> = parts(last)
            .iter()
            .filter_map(|p| p.get("functionResponse"))
            .map(|r| match r.pointer("/response/content") {
                Some(Value::String(s)) => s.clone(),
                _ => r.get("response").map(Value::to_string).unwrap_or_default(),
            })
            .collect();
        if !results.is_empty() {
            return LastTurn::ToolResults(results);
        }
        LastTurn::UserText(text_of(last))
    }
}
