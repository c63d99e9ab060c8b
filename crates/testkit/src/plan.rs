//! What a chat request will answer, independent of the API it is rendered in.

use std::time::Duration;

use crate::reply::Reply;

/// One tool call the assistant makes.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub name: String,
    /// Arguments exactly as scripted / written in the directive (OpenAI sends them verbatim).
    pub arguments: String,
}

impl Call {
    /// Arguments as a JSON value (Anthropic `input` must be an object).
    pub fn input(&self) -> serde_json::Value {
        match serde_json::from_str::<serde_json::Value>(&self.arguments) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => serde_json::Value::Object(serde_json::Map::new()),
        }
    }
}

/// A successful assistant turn.
#[derive(Debug, Clone, Default)]
pub(crate) struct Answer {
    pub thinking: Option<(String, String)>,
    pub text: Option<String>,
    pub calls: Vec<Call>,
}

impl Answer {
    pub fn text(text: String) -> Self {
        Self {
            text: Some(text),
            ..Self::default()
        }
    }
}

/// How the request ends.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    Answer(Answer),
    RawError {
        status: u16,
        body: serde_json::Value,
    },
    Status {
        status: u16,
        retry_after_secs: Option<u64>,
    },
    Drop {
        answer: Answer,
        after_chunks: usize,
        /// The body ends cleanly instead of the connection being aborted.
        graceful: bool,
    },
    ErrorMidStream {
        answer: Answer,
        after_chunks: usize,
    },
}

/// The part of a conversation the default behaviour looks at.
pub(crate) enum LastTurn {
    /// The conversation ends with tool results (their texts, in order).
    ToolResults(Vec<String>),
    /// The conversation ends with user text.
    UserText(String),
}

/// Deterministic answer when nothing is scripted.
pub(crate) fn default_answer(last: LastTurn, offered_tools: &[&str]) -> Answer {
    match last {
        LastTurn::ToolResults(results) => {
            Answer::text(format!("Tool said: {}", results.join("\n")))
        }
        LastTurn::UserText(text) => {
            let calls = directives(&text, offered_tools);
            if calls.is_empty() {
                Answer::text(format!("Echo: {text}"))
            } else {
                Answer {
                    calls,
                    ..Answer::default()
                }
            }
        }
    }
}

/// `CALL <tool_name> <json-args>` lines naming an offered tool with valid JSON arguments.
fn directives(text: &str, offered_tools: &[&str]) -> Vec<Call> {
    if offered_tools.is_empty() || !text.contains("CALL ") {
        return Vec::new();
    }
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("CALL ")?.trim_start();
            let (name, args) = match rest.split_once(char::is_whitespace) {
                Some((name, args)) => (name, args.trim()),
                None => (rest, ""),
            };
            if !offered_tools.contains(&name) {
                return None;
            }
            let arguments = if args.is_empty() { "{}" } else { args };
            serde_json::from_str::<serde_json::Value>(arguments).ok()?;
            Some(Call {
                name: name.to_owned(),
                arguments: arguments.to_owned(),
            })
        })
        .collect()
}

fn calls(pairs: Vec<(String, String)>) -> Vec<Call> {
    pairs
        .into_iter()
        .map(|(name, arguments)| Call { name, arguments })
        .collect()
}

/// Turn a scripted reply into a plan plus the extra delay it asks for.
pub(crate) fn from_reply(reply: Reply) -> (Duration, Plan) {
    let mut delay = Duration::ZERO;
    let mut reply = reply;
    while let Reply::Delayed(d, inner) = reply {
        delay += d;
        reply = *inner;
    }
    let plan = match reply {
        Reply::Text(text) => Plan::Answer(Answer::text(text)),
        Reply::ToolCalls(pairs) => Plan::Answer(Answer {
            calls: calls(pairs),
            ..Answer::default()
        }),
        Reply::TextAndToolCalls { text, calls: pairs } => Plan::Answer(Answer {
            text: Some(text),
            calls: calls(pairs),
            thinking: None,
        }),
        Reply::Thinking {
            thinking,
            signature,
            text,
        } => Plan::Answer(Answer {
            thinking: Some((thinking, signature)),
            text: Some(text),
            calls: Vec::new(),
        }),
        Reply::Error { status, body_json } => Plan::RawError {
            status,
            body: body_json,
        },
        Reply::Status {
            status,
            retry_after_secs,
        } => Plan::Status {
            status,
            retry_after_secs,
        },
        Reply::DropMidStream { text, after_chunks } => Plan::Drop {
            answer: Answer::text(text),
            after_chunks,
            graceful: false,
        },
        Reply::EndMidStream { text, after_chunks } => Plan::Drop {
            answer: Answer::text(text),
            after_chunks,
            graceful: true,
        },
        Reply::ErrorMidStream { text, after_chunks } => Plan::ErrorMidStream {
            answer: Answer::text(text),
            after_chunks,
        },
        // Unwrapped by the loop above.
        Reply::Delayed(_, _) => Plan::Answer(Answer::default()),
    };
    (delay, plan)
}

/// Split text into stream pieces: one word with its trailing whitespace each.
pub(crate) fn pieces(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            out.push(&text[start..i]);
            start = i;
            in_space = false;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// Whitespace-token estimate used for usage figures.
pub(crate) fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// Output tokens of an answer (each call counts its name and its argument words, min 1).
pub(crate) fn answer_tokens(answer: &Answer) -> u64 {
    let mut n = 0;
    if let Some((thinking, _)) = &answer.thinking {
        n += count_tokens(thinking);
    }
    if let Some(text) = &answer.text {
        n += count_tokens(text);
    }
    for call in &answer.calls {
        n += 1 + count_tokens(&call.arguments).max(1);
    }
    n.max(1)
}

/// Split a JSON argument string into a few fragments, like vendors stream them.
pub(crate) fn json_fragments(args: &str) -> Vec<&str> {
    const FRAG: usize = 8;
    let mut out = Vec::new();
    let mut start = 0;
    while start < args.len() {
        let mut end = (start + FRAG).min(args.len());
        while !args.is_char_boundary(end) {
            end += 1;
        }
        out.push(&args[start..end]);
        start = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_keep_all_text() {
        let text = "Echo: hello  big\nworld ";
        let p = pieces(text);
        assert_eq!(p.concat(), text);
        assert_eq!(p, vec!["Echo: ", "hello  ", "big\n", "world "]);
    }

    #[test]
    fn directive_needs_offered_tool_and_json() {
        let a = default_answer(
            LastTurn::UserText("hi\nCALL add {\"a\":1}\nCALL nope {}\nCALL add oops".into()),
            &["add"],
        );
        assert_eq!(a.calls.len(), 1);
        assert_eq!(a.calls[0].arguments, "{\"a\":1}");
        let b = default_answer(LastTurn::UserText("CALL add {}".into()), &[]);
        assert_eq!(b.text.as_deref(), Some("Echo: CALL add {}"));
    }

    #[test]
    fn fragments_rejoin() {
        let s = "{\"city\":\"Zürich\",\"n\":12345}";
        assert_eq!(json_fragments(s).concat(), s);
    }
}
