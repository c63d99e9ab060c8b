//! Responses input items -> chat messages.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::items::ENCRYPTED_PREFIX;
use super::names::flat_name;
use super::request::{ResponsesContext, invalid, message};
use crate::MapError;
use crate::openai::{
    ChatMessage, ContentPart, FunctionCall, ImageUrl, MessageContent, Role, ToolCall,
};

/// Reasoning carried from a `reasoning` item to the assistant message that follows it.
#[derive(Default)]
struct PendingReasoning {
    text: String,
    blocks: Vec<Value>,
}

pub(super) struct InputMapper<'a> {
    /// (namespace, name) -> flat name for this request's namespace tools.
    flat: HashMap<(&'a str, &'a str), &'a str>,
    messages: Vec<ChatMessage>,
    reasoning: Option<PendingReasoning>,
    dropped: Vec<String>,
    /// Whether the last message is an assistant turn that later items may extend.
    assistant_open: bool,
}

impl<'a> InputMapper<'a> {
    pub(super) fn new(ctx: &'a ResponsesContext) -> Self {
        let flat = ctx
            .namespaced
            .iter()
            .map(|(flat, ns)| ((ns.namespace.as_str(), ns.name.as_str()), flat.as_str()))
            .collect();
        InputMapper {
            flat,
            messages: Vec::new(),
            reasoning: None,
            dropped: Vec::new(),
            assistant_open: false,
        }
    }

    pub(super) fn finish(self) -> (Vec<ChatMessage>, Vec<String>) {
        (self.messages, self.dropped)
    }

    pub(super) fn push_user_text(&mut self, text: &str) {
        self.push_message(message(
            Role::User,
            Some(MessageContent::Text(text.to_owned())),
        ));
    }

    fn push_message(&mut self, msg: ChatMessage) {
        self.assistant_open = msg.role == Role::Assistant;
        // Reasoning only ever precedes the assistant output it belongs to.
        if msg.role != Role::Assistant {
            self.reasoning = None;
        }
        self.messages.push(msg);
    }

    pub(super) fn push_item(&mut self, item: &Value) -> Result<(), MapError> {
        let kind = item.get("type").and_then(Value::as_str);
        match kind {
            // `EasyInputMessage` has no `type`.
            None | Some("message") => self.push_message_item(item),
            Some("function_call") => {
                let name = item
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("function_call item without a `name`"))?;
                let flat = match item.get("namespace").and_then(Value::as_str) {
                    Some(ns) => self
                        .flat
                        .get(&(ns, name))
                        .map_or_else(|| flat_name(ns, name), |f| (*f).to_owned()),
                    None => name.to_owned(),
                };
                let arguments = item
                    .get("arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("{}")
                    .to_owned();
                self.push_call(call_id(item)?, flat, arguments);
                Ok(())
            }
            Some("custom_tool_call") => {
                let name = item
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("custom_tool_call item without a `name`"))?;
                let input = item.get("input").and_then(Value::as_str).unwrap_or("");
                let arguments = json!({ "input": input }).to_string();
                self.push_call(call_id(item)?, name.to_owned(), arguments);
                Ok(())
            }
            Some("function_call_output" | "custom_tool_call_output") => {
                let content = tool_output(item.get("output"))?;
                let mut msg = message(Role::Tool, Some(content));
                msg.tool_call_id = Some(call_id(item)?);
                self.push_message(msg);
                Ok(())
            }
            Some("reasoning") => {
                self.push_reasoning(item);
                Ok(())
            }
            Some("item_reference") => Err(MapError::Unsupported(
                "item_reference input items (stored items are not available for this model)"
                    .to_owned(),
            )),
            // Calls and results of hosted tools (web search, MCP run by OpenAI, ...)
            // have no chat form; the model still sees the text it wrote about them.
            Some(other) => {
                self.dropped.push(other.to_owned());
                Ok(())
            }
        }
    }

    fn push_message_item(&mut self, item: &Value) -> Result<(), MapError> {
        let role = match item.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            // Chat providers other than OpenAI reject `developer`; `system` means the same.
            Some("system" | "developer") => Role::System,
            Some(other) => {
                return Err(MapError::InvalidRequest(format!(
                    "message role {other:?} is not user, assistant, system or developer"
                )));
            }
            None => return Err(invalid("message item without a `role`")),
        };
        let parts = content_parts(item.get("content"))?;
        let all_text = parts.iter().all(|p| p.kind == "text");
        let content = if role != Role::User && all_text {
            // Assistant and system content as one string: what every provider accepts.
            let text: String = parts.iter().filter_map(|p| p.text.as_deref()).collect();
            MessageContent::Text(text)
        } else if all_text && parts.len() == 1 {
            MessageContent::Text(parts[0].text.clone().unwrap_or_default())
        } else if role == Role::User {
            MessageContent::Parts(parts)
        } else {
            return Err(MapError::Unsupported(
                "non-text content in assistant or system messages".to_owned(),
            ));
        };
        let mut msg = message(role, Some(content));
        if role == Role::Assistant {
            self.attach_reasoning(&mut msg);
        }
        self.push_message(msg);
        Ok(())
    }

    fn push_call(&mut self, id: String, name: String, arguments: String) {
        let call = ToolCall {
            id,
            kind: "function".to_owned(),
            function: FunctionCall { name, arguments },
            rest: Map::new(),
        };
        // Responses lists the text and each parallel call as separate items; chat wants
        // them in one assistant message.
        if self.assistant_open
            && self.reasoning.is_none()
            && let Some(last) = self.messages.last_mut()
        {
            last.tool_calls.get_or_insert_with(Vec::new).push(call);
            return;
        }
        let mut msg = message(Role::Assistant, None);
        msg.tool_calls = Some(vec![call]);
        self.attach_reasoning(&mut msg);
        self.push_message(msg);
    }

    fn push_reasoning(&mut self, item: &Value) {
        let pending = self.reasoning.get_or_insert_with(PendingReasoning::default);
        let texts = ["summary", "content"]
            .iter()
            .filter_map(|key| item.get(*key).and_then(Value::as_array))
            .flatten()
            .filter_map(|part| part.get("text").and_then(Value::as_str));
        for text in texts {
            if !pending.text.is_empty() {
                pending.text.push('\n');
            }
            pending.text.push_str(text);
        }
        let ours = item
            .get("encrypted_content")
            .and_then(Value::as_str)
            .and_then(|s| s.strip_prefix(ENCRYPTED_PREFIX))
            .and_then(|json| serde_json::from_str::<Vec<Value>>(json).ok());
        match ours {
            Some(blocks) => pending.blocks.extend(blocks),
            None if item.get("encrypted_content").is_some_and(|v| !v.is_null()) => {
                self.dropped.push("reasoning.encrypted_content".to_owned());
            }
            None => {}
        }
    }

    fn attach_reasoning(&mut self, msg: &mut ChatMessage) {
        if let Some(reasoning) = self.reasoning.take() {
            msg.reasoning_content = (!reasoning.text.is_empty()).then_some(reasoning.text);
            msg.thinking_blocks = (!reasoning.blocks.is_empty()).then_some(reasoning.blocks);
        }
    }
}

fn call_id(item: &Value) -> Result<String, MapError> {
    item.get("call_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| invalid("tool call item without a `call_id`"))
}

/// Message content (a string or a list of content parts) -> chat parts.
fn content_parts(content: Option<&Value>) -> Result<Vec<ContentPart>, MapError> {
    match content {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![text_part(text)]),
        Some(Value::Array(parts)) => parts.iter().map(content_part).collect(),
        Some(_) => Err(invalid("message content must be a string or an array")),
    }
}

fn text_part(text: &str) -> ContentPart {
    ContentPart {
        kind: "text".to_owned(),
        text: Some(text.to_owned()),
        image_url: None,
        cache_control: None,
        rest: Map::new(),
    }
}

fn content_part(part: &Value) -> Result<ContentPart, MapError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "input_text" | "output_text" | "text" | "summary_text" => Ok(text_part(
            part.get("text").and_then(Value::as_str).unwrap_or(""),
        )),
        "refusal" => Ok(text_part(
            part.get("refusal").and_then(Value::as_str).unwrap_or(""),
        )),
        "input_image" => {
            let url = part
                .get("image_url")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    MapError::Unsupported(
                        "input_image without image_url (file ids need OpenAI storage)".to_owned(),
                    )
                })?;
            Ok(ContentPart {
                kind: "image_url".to_owned(),
                text: None,
                image_url: Some(ImageUrl {
                    url: url.to_owned(),
                    detail: part
                        .get("detail")
                        .and_then(Value::as_str)
                        .filter(|d| *d != "auto")
                        .map(str::to_owned),
                    rest: Map::new(),
                }),
                cache_control: None,
                rest: Map::new(),
            })
        }
        "input_file" => {
            // Chat's `file` part carries the same fields.
            let mut file = Map::new();
            for key in ["file_data", "file_id", "filename"] {
                if let Some(v) = part.get(key).filter(|v| !v.is_null()) {
                    file.insert(key.to_owned(), v.clone());
                }
            }
            let mut rest = Map::new();
            rest.insert("file".to_owned(), Value::Object(file));
            Ok(ContentPart {
                kind: "file".to_owned(),
                text: None,
                image_url: None,
                cache_control: None,
                rest,
            })
        }
        other => Err(MapError::Unsupported(format!(
            "Responses content part type {other:?}"
        ))),
    }
}

/// A tool output: a string, or a list of `input_text`/`input_image`/`input_file` parts.
/// Text-only lists become one string (lines joined), which every chat provider accepts
/// on tool messages; lists with images stay as parts.
fn tool_output(output: Option<&Value>) -> Result<MessageContent, MapError> {
    match output {
        None | Some(Value::Null) => Ok(MessageContent::Text(String::new())),
        Some(Value::String(text)) => Ok(MessageContent::Text(text.clone())),
        Some(Value::Array(items)) => {
            let parts = items
                .iter()
                .map(content_part)
                .collect::<Result<Vec<_>, _>>()?;
            if parts.iter().all(|p| p.kind == "text") {
                let texts: Vec<&str> = parts.iter().filter_map(|p| p.text.as_deref()).collect();
                Ok(MessageContent::Text(texts.join("\n")))
            } else {
                Ok(MessageContent::Parts(parts))
            }
        }
        // Anything else (an object) is passed as its JSON text.
        Some(other) => Ok(MessageContent::Text(other.to_string())),
    }
}
