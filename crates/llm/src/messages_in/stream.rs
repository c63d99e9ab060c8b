//! Stateful chat chunks -> Anthropic Messages SSE events.
//!
//! One [`MessagesStreamWriter`] per client stream. State it keeps, and why:
//! - the open content block and the next block index: Anthropic numbers every block
//!   (thinking, text, tool_use) in one sequence and streams one block at a time, so a
//!   new kind of content closes the open block first;
//! - chat tool-call index -> whether it has its block yet: each parallel call is its own
//!   `tool_use` block;
//! - the finish reason and usage (sent in `message_delta`), and whether the stream
//!   started and ended.
//!
//! Providers stream parallel tool calls one after the other; argument pieces for a call
//! whose block was already closed cannot be sent and are dropped.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::error::error_body;
use super::response::{message_id, stop_reason, usage_value};
use crate::ErrorKind;
use crate::openai::{ChatCompletionChunk, ToolCallDelta, Usage};
use crate::sse;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool_use block for this chat tool-call index.
    Tool(u32),
}

/// Per-stream writer; see the module docs for the state it keeps.
#[derive(Debug)]
pub struct MessagesStreamWriter {
    model: String,
    started: bool,
    ended: bool,
    next_index: u32,
    open: Option<Open>,
    calls: HashMap<u32, u32>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl MessagesStreamWriter {
    /// `public_model` is the model name reported to the client.
    pub fn new(public_model: impl Into<String>) -> Self {
        MessagesStreamWriter {
            model: public_model.into(),
            started: false,
            ended: false,
            next_index: 0,
            open: None,
            calls: HashMap::new(),
            finish_reason: None,
            usage: None,
        }
    }

    /// Maps one chat chunk to zero or more SSE events (`message_start` with the first).
    pub fn push(&mut self, chunk: &ChatCompletionChunk) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.ensure_started(&chunk.id, &mut out);
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.choices.iter().find(|c| c.index == 0) else {
            return out;
        };
        let delta = &choice.delta;
        if let Some(text) = delta.reasoning_content.as_deref().filter(|t| !t.is_empty()) {
            self.open_block(Open::Thinking, &mut out);
            self.block_delta(
                json!({"type": "thinking_delta", "thinking": text}),
                &mut out,
            );
        }
        for block in delta.thinking_blocks.iter().flatten() {
            self.thinking_block(block, &mut out);
        }
        if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
            self.open_block(Open::Text, &mut out);
            self.block_delta(json!({"type": "text_delta", "text": text}), &mut out);
        }
        for call in delta.tool_calls.iter().flatten() {
            self.call_delta(call, &mut out);
        }
        if let Some(reason) = &choice.finish_reason {
            self.finish_reason = Some(reason.clone());
        }
        out
    }

    /// Ends the stream: closes the open block, sends `message_delta` (stop reason and
    /// usage) and `message_stop`.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.ensure_started("", &mut out);
        self.close_open(&mut out);
        self.ended = true;
        let reason = stop_reason(self.finish_reason.as_deref(), !self.calls.is_empty());
        let usage = usage_value(&self.usage.clone().unwrap_or_default());
        emit(
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": null},
                "usage": usage,
            }),
            &mut out,
        );
        emit("message_stop", &json!({"type": "message_stop"}), &mut out);
        out
    }

    /// Ends the stream with an in-band `error` event, Anthropic's way of reporting a
    /// failure after the 200 headers went out.
    pub fn fail(&mut self, kind: ErrorKind, message: &str) -> Vec<u8> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.ended = true;
        emit("error", &error_body(kind, message), &mut out);
        out
    }

    /// Usage reported by the provider so far (for spend logging).
    pub fn usage(&self) -> Option<&Usage> {
        self.usage.as_ref()
    }

    fn ensure_started(&mut self, chat_id: &str, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = if chat_id.is_empty() {
            "msg_gatehouse".to_owned()
        } else {
            message_id(chat_id)
        };
        emit(
            "message_start",
            &json!({
                "type": "message_start",
                "message": {
                    "id": id, "type": "message", "role": "assistant", "model": self.model,
                    "content": [], "stop_reason": null, "stop_sequence": null,
                    // Chat providers report usage at the end; message_delta has it.
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            }),
            out,
        );
    }

    /// Makes `kind` the open block, closing another one first.
    fn open_block(&mut self, kind: Open, out: &mut Vec<u8>) {
        if self.open == Some(kind) {
            return;
        }
        self.close_open(out);
        let block = match kind {
            Open::Text => json!({"type": "text", "text": ""}),
            Open::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            // Tool blocks are opened by `call_delta`, which knows the id and name.
            Open::Tool(_) => return,
        };
        self.start_block(kind, block, out);
    }

    fn start_block(&mut self, kind: Open, block: Value, out: &mut Vec<u8>) {
        self.open = Some(kind);
        emit(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.next_index, "content_block": block}),
            out,
        );
    }

    fn block_delta(&self, delta: Value, out: &mut Vec<u8>) {
        emit(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.next_index, "delta": delta}),
            out,
        );
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        if self.open.take().is_some() {
            emit(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": self.next_index}),
                out,
            );
            self.next_index += 1;
        }
    }

    /// A complete reasoning block from the provider (LiteLLM's `thinking_blocks`): its
    /// signature ends the thinking block whose text was streamed; a block whose text was
    /// not streamed is sent whole; redacted thinking is its own block.
    fn thinking_block(&mut self, block: &Value, out: &mut Vec<u8>) {
        let field = |name: &str| block.get(name).and_then(Value::as_str).unwrap_or("");
        match field("type") {
            "thinking" => {
                if self.open != Some(Open::Thinking) {
                    self.open_block(Open::Thinking, out);
                    let text = field("thinking");
                    if !text.is_empty() {
                        self.block_delta(json!({"type": "thinking_delta", "thinking": text}), out);
                    }
                }
                // Unsigned pieces (LiteLLM repeats each reasoning delta as a block) do
                // not end the block; the signature does.
                let signature = field("signature");
                if !signature.is_empty() {
                    self.block_delta(
                        json!({"type": "signature_delta", "signature": signature}),
                        out,
                    );
                    self.close_open(out);
                }
            }
            "redacted_thinking" => {
                self.close_open(out);
                self.start_block(
                    Open::Thinking,
                    json!({"type": "redacted_thinking", "data": field("data")}),
                    out,
                );
                self.close_open(out);
            }
            _ => {}
        }
    }

    fn call_delta(&mut self, call: &ToolCallDelta, out: &mut Vec<u8>) {
        let function = call.function.as_ref();
        if !self.calls.contains_key(&call.index) {
            self.close_open(out);
            self.calls.insert(call.index, self.next_index);
            let id = call
                .id
                .clone()
                .unwrap_or_else(|| format!("toolu_{}", self.next_index));
            let name = function.and_then(|f| f.name.as_deref()).unwrap_or("");
            self.start_block(
                Open::Tool(call.index),
                json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                out,
            );
        }
        if self.open != Some(Open::Tool(call.index)) {
            return;
        }
        if let Some(piece) = function
            .and_then(|f| f.arguments.as_deref())
            .filter(|a| !a.is_empty())
        {
            self.block_delta(
                json!({"type": "input_json_delta", "partial_json": piece}),
                out,
            );
        }
    }
}

fn emit(kind: &str, data: &Value, out: &mut Vec<u8>) {
    sse::encode(Some(kind), &data.to_string(), out);
}
