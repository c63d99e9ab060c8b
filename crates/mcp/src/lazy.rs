//! The lazy catalog: three small tools — search tools by words, describe one tool, call a
//! tool by name — in place of every tool's schema, for clients (and models) facing a
//! catalog of 100+ tools that would otherwise fill the context.
//!
//! Pure logic over aggregated tool objects, no I/O: the MCP endpoint serves it
//! (`/mcp?catalog=lazy`, `mcp_settings.catalog: lazy`), and the chat tool loop can use the
//! same API: offer [`meta_tools`], answer [`LazyCall::Search`] / [`LazyCall::Describe`]
//! from a [`LazyCatalog`] of the request's tools, and run [`LazyCall::Call`] as an ordinary
//! tool call.

use serde_json::{Map, Value, json};

pub const SEARCH_TOOL: &str = "search_tools";
pub const DESCRIBE_TOOL: &str = "describe_tool";
pub const CALL_TOOL: &str = "call_tool";

/// Results a search returns unless asked for fewer; and at most.
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 50;
/// Description shown per search hit, in characters (the full text is in `describe_tool`).
const SNIPPET_CHARS: usize = 160;
/// Query words considered; the rest are ignored (bounded work per search).
const MAX_QUERY_WORDS: usize = 16;

/// The three tools a lazy endpoint lists instead of the catalog.
pub fn meta_tools() -> Vec<Value> {
    vec![
        json!({
            "name": SEARCH_TOOL,
            "description": "Search the available tools by keywords. Returns matching tool names with a short description. Then call describe_tool for a tool's input schema and call_tool to run it.",
            "inputSchema": {"type": "object", "properties": {
                "query": {"type": "string", "description": "Words describing what the tool should do"},
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "description": "Most results to return (default 10)"}
            }, "required": ["query"]},
            "annotations": {"readOnlyHint": true},
        }),
        json!({
            "name": DESCRIBE_TOOL,
            "description": "Get one tool's full definition: description and input schema.",
            "inputSchema": {"type": "object", "properties": {
                "name": {"type": "string", "description": "A tool name from search_tools"}
            }, "required": ["name"]},
            "annotations": {"readOnlyHint": true},
        }),
        json!({
            "name": CALL_TOOL,
            "description": "Run a tool by name with arguments matching its input schema (see describe_tool).",
            "inputSchema": {"type": "object", "properties": {
                "name": {"type": "string", "description": "The tool to run"},
                "arguments": {"type": "object", "description": "The tool's arguments"}
            }, "required": ["name"]},
        }),
    ]
}

/// A call of one of the three tools, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum LazyCall {
    Search { query: String, limit: usize },
    Describe { name: String },
    Call { name: String, arguments: Value },
}

/// `Ok(None)` when `tool` is not one of the three; `Err` names a bad argument.
pub fn parse_call(tool: &str, arguments: &Value) -> Result<Option<LazyCall>, String> {
    let text = |k: &str| {
        arguments
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| format!("{tool} needs a string `{k}`"))
    };
    Ok(Some(match tool {
        SEARCH_TOOL => LazyCall::Search {
            query: text("query")?,
            limit: arguments
                .get("limit")
                .and_then(Value::as_u64)
                .map_or(DEFAULT_LIMIT, |l| usize::try_from(l).unwrap_or(MAX_LIMIT))
                .clamp(1, MAX_LIMIT),
        },
        DESCRIBE_TOOL => LazyCall::Describe {
            name: text("name")?,
        },
        CALL_TOOL => LazyCall::Call {
            name: text("name")?,
            arguments: match arguments.get("arguments") {
                None | Some(Value::Null) => json!({}),
                Some(v @ Value::Object(_)) => v.clone(),
                Some(_) => return Err(format!("{tool}: `arguments` must be an object")),
            },
        },
        _ => return Ok(None),
    }))
}

#[derive(Debug)]
struct Entry {
    tool: Value,
    name: String,
    name_words: Vec<String>,
    text_words: Vec<String>,
}

/// The tools a lazy endpoint searches, by the names clients call them.
#[derive(Debug)]
pub struct LazyCatalog {
    entries: Vec<Entry>,
}

/// Words too common to say which tool is meant.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "is", "it", "of", "on", "or",
    "the", "to", "with",
];

fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

fn str_field<'a>(tool: &'a Value, key: &str) -> &'a str {
    tool.get(key).and_then(Value::as_str).unwrap_or("")
}

impl LazyCatalog {
    /// From MCP `Tool` objects (as listed, aggregated names).
    pub fn new(tools: Vec<Value>) -> Self {
        let entries = tools
            .into_iter()
            .map(|tool| {
                let name = str_field(&tool, "name").to_owned();
                let text = format!(
                    "{} {}",
                    str_field(&tool, "title"),
                    str_field(&tool, "description")
                );
                Entry {
                    name_words: words(&name),
                    text_words: words(&text),
                    name,
                    tool,
                }
            })
            .collect();
        Self { entries }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The best `limit` matches for `query`: a word in the tool's name counts three, a
    /// prefix of a name word two, a word of its title or description one. Ties go by name;
    /// tools matching nothing are left out unless the query has no words at all.
    pub fn search(&self, query: &str, limit: usize) -> Vec<Value> {
        let q: Vec<String> = words(query).into_iter().take(MAX_QUERY_WORDS).collect();
        let mut scored: Vec<(usize, &Entry)> = self
            .entries
            .iter()
            .map(|e| {
                let score: usize = q
                    .iter()
                    .map(|w| {
                        if e.name_words.iter().any(|n| n == w) {
                            3
                        } else if e.name_words.iter().any(|n| n.starts_with(w.as_str())) {
                            2
                        } else {
                            usize::from(e.text_words.iter().any(|t| t == w))
                        }
                    })
                    .sum();
                (score, e)
            })
            .filter(|(s, _)| *s > 0 || q.is_empty())
            .collect();
        scored.sort_by(|(a, x), (b, y)| b.cmp(a).then_with(|| x.name.cmp(&y.name)));
        scored
            .into_iter()
            .take(limit.clamp(1, MAX_LIMIT))
            .map(|(_, e)| {
                let d = str_field(&e.tool, "description");
                let mut snippet: String = d.chars().take(SNIPPET_CHARS).collect();
                if d.chars().count() > SNIPPET_CHARS {
                    snippet.push('…');
                }
                json!({"name": e.name, "description": snippet})
            })
            .collect()
    }

    /// A tool's full definition.
    pub fn describe(&self, name: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| &e.tool)
    }
}

/// A `CallToolResult` carrying `value` as JSON text (once: not also as
/// `structuredContent`, which clients often put in the context too).
pub fn json_result(value: &Value) -> Value {
    let mut m = Map::new();
    m.insert(
        "content".into(),
        json!([{"type": "text", "text": value.to_string()}]),
    );
    m.insert("isError".into(), false.into());
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> LazyCatalog {
        LazyCatalog::new(vec![
            json!({"name": "files-read_file", "description": "Read the complete contents of a file", "inputSchema": {"type": "object"}}),
            json!({"name": "files-write_file", "description": "Create or overwrite a file", "inputSchema": {"type": "object"}}),
            json!({"name": "time-get_current_time", "description": "Get the current time in a timezone", "inputSchema": {"type": "object"}}),
        ])
    }

    #[test]
    fn search_ranks_name_words_over_description_words() {
        let c = catalog();
        let hits = c.search("read a file", 10);
        assert_eq!(hits[0]["name"], "files-read_file");
        assert_eq!(hits.len(), 2, "the time tool matches nothing: {hits:?}");
        let hits = c.search("current time", 1);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0]["name"], "time-get_current_time");
        assert_eq!(c.search("", 10).len(), 3, "no words: everything, by name");
        assert!(c.search("zebra", 10).is_empty());
    }

    #[test]
    fn describe_and_parse() {
        let c = catalog();
        assert_eq!(
            c.describe("files-write_file").unwrap()["inputSchema"]["type"],
            "object"
        );
        assert!(c.describe("nope").is_none());
        assert_eq!(
            parse_call(CALL_TOOL, &json!({"name": "x"})).unwrap(),
            Some(LazyCall::Call {
                name: "x".into(),
                arguments: json!({})
            })
        );
        assert!(parse_call(CALL_TOOL, &json!({"name": "x", "arguments": [1]})).is_err());
        assert!(parse_call(SEARCH_TOOL, &json!({})).is_err());
        assert_eq!(
            parse_call(SEARCH_TOOL, &json!({"query": "q", "limit": 1000})).unwrap(),
            Some(LazyCall::Search {
                query: "q".into(),
                limit: MAX_LIMIT
            })
        );
        assert_eq!(parse_call("other", &json!({})).unwrap(), None);
    }
}
