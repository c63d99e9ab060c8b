//! Stateful chat chunks -> Responses SSE events.
//!
//! One [`ResponsesStreamWriter`] per client stream. State it keeps, and why:
//! - the output items in `output_index` order (reasoning, message, tool calls), each with
//!   its accumulated text/arguments: `*.done` events and the final `response.completed`
//!   repeat the full content;
//! - which item is open: Responses streams one item at a time (added, deltas, done), so a
//!   new kind of content closes the previous item;
//! - chat tool-call index -> output index: chat numbers tool calls only, Responses
//!   numbers every item; each parallel call is its own item;
//! - the sequence number every event carries, the finish reason and the usage.
//!
//! Providers stream parallel tool calls one after the other; a delta for a call whose
//! item was already closed is still added to the final `response.completed` output.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::items::{
    ResponseState, call_item, item_id, message_item, output_text_part, reasoning_item,
    response_object, status_for, summary_part,
};
use super::request::ResponsesContext;
use super::response::error_object;
use crate::ErrorKind;
use crate::openai::{ChatCompletionChunk, ToolCallDelta, Usage};
use crate::sse;

#[derive(Debug)]
enum Item {
    Reasoning {
        id: String,
        text: String,
        blocks: Vec<Value>,
        part_open: bool,
    },
    Message {
        id: String,
        text: String,
        status: &'static str,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        status: &'static str,
    },
}

/// Per-stream writer; see the module docs for the state it keeps.
#[derive(Debug)]
pub struct ResponsesStreamWriter {
    ctx: ResponsesContext,
    id: String,
    created: u64,
    seq: u64,
    items: Vec<Item>,
    open: Option<usize>,
    calls: HashMap<u32, usize>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    started: bool,
    ended: bool,
}

impl ResponsesStreamWriter {
    /// `response_id` (`resp_...`) and `created` (Unix seconds) are the caller's.
    pub fn new(ctx: ResponsesContext, response_id: impl Into<String>, created: u64) -> Self {
        ResponsesStreamWriter {
            ctx,
            id: response_id.into(),
            created,
            seq: 0,
            items: Vec::new(),
            open: None,
            calls: HashMap::new(),
            finish_reason: None,
            usage: None,
            started: false,
            ended: false,
        }
    }

    /// `response.created` and `response.in_progress`. Called by the first [`push`]
    /// if not before; call it early to send something while the provider thinks.
    ///
    /// [`push`]: ResponsesStreamWriter::push
    pub fn start(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.ensure_started(&mut out);
        out
    }

    /// Maps one chat chunk to zero or more SSE events.
    pub fn push(&mut self, chunk: &ChatCompletionChunk) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.ensure_started(&mut out);
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.choices.iter().find(|c| c.index == 0) else {
            return out;
        };
        let delta = &choice.delta;
        if let Some(text) = delta.reasoning_content.as_deref().filter(|t| !t.is_empty()) {
            self.reasoning_delta(text, &mut out);
        }
        if let Some(blocks) = delta.thinking_blocks.as_ref().filter(|b| !b.is_empty()) {
            let index = self.open_reasoning(&mut out);
            if let Some(Item::Reasoning { blocks: all, .. }) = self.items.get_mut(index) {
                all.extend(blocks.iter().cloned());
            }
        }
        if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
            self.text_delta(text, &mut out);
        }
        for call in delta.tool_calls.iter().flatten() {
            self.call_delta(call, &mut out);
        }
        if let Some(reason) = &choice.finish_reason {
            self.finish_reason = Some(reason.clone());
        }
        out
    }

    /// Ends the stream: closes the open item and sends `response.completed` (or
    /// `response.incomplete` when the answer hit the token limit or a content filter).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.ensure_started(&mut out);
        let (status, incomplete_details) = status_for(self.finish_reason.as_deref());
        self.close_open(status, &mut out);
        self.ended = true;
        let response = self.response_value(status, Value::Null, incomplete_details);
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(kind, json!({ "response": response }), &mut out);
        out
    }

    /// Ends the stream with `response.failed` (a provider error mid-stream, or before it).
    pub fn fail(&mut self, kind: ErrorKind, message: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.ensure_started(&mut out);
        self.ended = true;
        let response = self.response_value("failed", error_object(kind, message), Value::Null);
        self.emit("response.failed", json!({ "response": response }), &mut out);
        out
    }

    /// The `response` object as it stands (final after [`finish`]), e.g. to store it
    /// for `previous_response_id`.
    ///
    /// [`finish`]: ResponsesStreamWriter::finish
    pub fn response(&self) -> Value {
        let (status, incomplete) = if self.ended {
            status_for(self.finish_reason.as_deref())
        } else {
            ("in_progress", Value::Null)
        };
        self.response_value(status, Value::Null, incomplete)
    }

    /// Usage reported by the provider so far (for spend logging).
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    fn response_value(&self, status: &str, error: Value, incomplete_details: Value) -> Value {
        let output = (0..self.items.len()).map(|i| self.item_value(i)).collect();
        response_object(
            &self.ctx,
            ResponseState {
                id: &self.id,
                created: self.created,
                status,
                error,
                incomplete_details,
                output,
                usage: self.usage.as_ref().filter(|_| status != "in_progress"),
            },
        )
    }

    fn ensure_started(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let response = self.response_value("in_progress", Value::Null, Value::Null);
        self.emit(
            "response.created",
            json!({ "response": response.clone() }),
            out,
        );
        self.emit("response.in_progress", json!({ "response": response }), out);
    }

    fn emit(&mut self, kind: &str, fields: Value, out: &mut Vec<u8>) {
        encode_event(&mut self.seq, kind, fields, out);
    }

    /// Full current rendering of item `index`.
    fn item_value(&self, index: usize) -> Value {
        match &self.items[index] {
            Item::Reasoning {
                id, text, blocks, ..
            } => reasoning_item(id, text, blocks),
            Item::Message { id, text, status } => message_item(id, status, Some(text)),
            Item::Call {
                id,
                call_id,
                name,
                arguments,
                status,
            } => call_item(&self.ctx, id, status, call_id, name, arguments),
        }
    }

    fn open_item(&mut self, item: Item, out: &mut Vec<u8>) -> usize {
        let index = self.items.len();
        self.items.push(item);
        self.open = Some(index);
        let added = match &self.items[index] {
            Item::Reasoning { id, .. } => json!({"id": id, "type": "reasoning", "summary": []}),
            Item::Message { id, .. } => message_item(id, "in_progress", None),
            Item::Call {
                id, call_id, name, ..
            } => call_item(&self.ctx, id, "in_progress", call_id, name, ""),
        };
        self.emit(
            "response.output_item.added",
            json!({"output_index": index, "item": added}),
            out,
        );
        index
    }

    fn open_reasoning(&mut self, out: &mut Vec<u8>) -> usize {
        if let Some(index) = self.open
            && matches!(self.items[index], Item::Reasoning { .. })
        {
            return index;
        }
        self.close_open("completed", out);
        let id = item_id("rs", &self.id, self.items.len());
        self.open_item(
            Item::Reasoning {
                id,
                text: String::new(),
                blocks: Vec::new(),
                part_open: false,
            },
            out,
        )
    }

    fn reasoning_delta(&mut self, delta: &str, out: &mut Vec<u8>) {
        let index = self.open_reasoning(out);
        let Some(Item::Reasoning {
            id,
            text,
            part_open,
            ..
        }) = self.items.get_mut(index)
        else {
            return;
        };
        text.push_str(delta);
        let id = id.clone();
        let first = !std::mem::replace(part_open, true);
        if first {
            self.emit(
                "response.reasoning_summary_part.added",
                json!({"item_id": id, "output_index": index, "summary_index": 0, "part": summary_part("")}),
                out,
            );
        }
        self.emit(
            "response.reasoning_summary_text.delta",
            json!({"item_id": id, "output_index": index, "summary_index": 0, "delta": delta}),
            out,
        );
    }

    fn text_delta(&mut self, delta: &str, out: &mut Vec<u8>) {
        let index = match self.open {
            Some(i) if matches!(self.items[i], Item::Message { .. }) => i,
            _ => {
                self.close_open("completed", out);
                let id = item_id("msg", &self.id, self.items.len());
                let index = self.open_item(
                    Item::Message {
                        id: id.clone(),
                        text: String::new(),
                        status: "in_progress",
                    },
                    out,
                );
                self.emit(
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": output_text_part("")}),
                    out,
                );
                index
            }
        };
        let Some(Item::Message { id, text, .. }) = self.items.get_mut(index) else {
            return;
        };
        text.push_str(delta);
        let id = id.clone();
        self.emit(
            "response.output_text.delta",
            json!({"item_id": id, "output_index": index, "content_index": 0, "delta": delta, "logprobs": []}),
            out,
        );
    }

    fn call_delta(&mut self, call: &ToolCallDelta, out: &mut Vec<u8>) {
        let function = call.function.as_ref();
        let index = match self.calls.get(&call.index) {
            Some(&i) => {
                // Name pieces after the first chunk (rare) still count.
                if let (Some(Item::Call { name, .. }), Some(piece)) = (
                    self.items.get_mut(i),
                    function.and_then(|f| f.name.as_deref()),
                ) {
                    name.push_str(piece);
                }
                i
            }
            None => {
                self.close_open("completed", out);
                let id = item_id("fc", &self.id, self.items.len());
                let call_id = call
                    .id
                    .clone()
                    .unwrap_or_else(|| format!("call_{}", self.items.len()));
                let name = function.and_then(|f| f.name.clone()).unwrap_or_default();
                let index = self.open_item(
                    Item::Call {
                        id,
                        call_id,
                        name,
                        arguments: String::new(),
                        status: "in_progress",
                    },
                    out,
                );
                self.calls.insert(call.index, index);
                index
            }
        };
        let Some(piece) = function
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty())
        else {
            return;
        };
        let Some(Item::Call { id, arguments, .. }) = self.items.get_mut(index) else {
            return;
        };
        arguments.push_str(piece);
        let id = id.clone();
        if self.open == Some(index) && !self.ctx.custom_tools.contains(self.call_name(index)) {
            self.emit(
                "response.function_call_arguments.delta",
                json!({"item_id": id, "output_index": index, "delta": piece}),
                out,
            );
        }
    }

    fn call_name(&self, index: usize) -> &str {
        match &self.items[index] {
            Item::Call { name, .. } => name,
            _ => "",
        }
    }

    /// Closes the open item with its `*.done` events.
    fn close_open(&mut self, status: &'static str, out: &mut Vec<u8>) {
        let Some(index) = self.open.take() else {
            return;
        };
        match &mut self.items[index] {
            Item::Reasoning {
                id,
                text,
                part_open,
                ..
            } => {
                if *part_open {
                    let (id, text) = (id.clone(), text.clone());
                    self.emit(
                        "response.reasoning_summary_text.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "text": text}),
                        out,
                    );
                    self.emit(
                        "response.reasoning_summary_part.done",
                        json!({"item_id": id, "output_index": index, "summary_index": 0, "part": summary_part(&text)}),
                        out,
                    );
                }
            }
            Item::Message {
                id,
                text,
                status: item_status,
            } => {
                *item_status = status;
                let (id, text) = (id.clone(), text.clone());
                self.emit(
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                    out,
                );
                self.emit(
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": output_text_part(&text)}),
                    out,
                );
            }
            Item::Call {
                id,
                name,
                arguments,
                status: item_status,
                ..
            } => {
                *item_status = "completed";
                let (id, name, arguments) = (id.clone(), name.clone(), arguments.clone());
                if self.ctx.custom_tools.contains(&name) {
                    // Chat streams `{"input": "..."}` JSON; the freeform input is only
                    // known whole, so it goes out as one delta.
                    let input = super::items::custom_input(&arguments);
                    self.emit(
                        "response.custom_tool_call_input.delta",
                        json!({"item_id": id, "output_index": index, "delta": input}),
                        out,
                    );
                    self.emit(
                        "response.custom_tool_call_input.done",
                        json!({"item_id": id, "output_index": index, "input": input}),
                        out,
                    );
                } else {
                    self.emit(
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": index, "arguments": arguments}),
                        out,
                    );
                }
            }
        }
        let item = self.item_value(index);
        self.emit(
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
            out,
        );
    }
}

/// One Responses event: its `type` and the stream's next `sequence_number`, then `fields`.
pub(super) fn encode_event(seq: &mut u64, kind: &str, fields: Value, out: &mut Vec<u8>) {
    let mut event = Map::new();
    event.insert("type".to_owned(), json!(kind));
    event.insert("sequence_number".to_owned(), json!(*seq));
    *seq += 1;
    if let Value::Object(fields) = fields {
        event.extend(fields);
    }
    sse::encode(Some(kind), &Value::Object(event).to_string(), out);
}
