//! Stateful Anthropic Messages SSE events -> OpenAI `chat.completion.chunk`s.
//!
//! One [`StreamMapper`] per upstream stream. State it keeps, and why:
//! - the message id (from `message_start`), so every chunk carries the same id;
//! - Anthropic block index -> block kind/OpenAI tool-call index: Anthropic numbers all
//!   content blocks (text, thinking, tool_use) together, OpenAI numbers tool calls only;
//! - thinking text + signature per thinking block, to emit one complete, replayable
//!   `thinking_blocks` entry when the block ends (the text itself is streamed at once
//!   as `reasoning_content`);
//! - cumulative usage (input from `message_start`, output from `message_delta`);
//! - whether the role, finish and usage chunks were already sent.

use std::collections::HashMap;

use super::error::upstream_error;
use super::response::{
    chat_id, finish_reason, redacted_block_value, thinking_block_value, usage_to_openai,
};
use super::wire::{BlockDelta, ResponseBlock, StreamEvent, Usage};
use crate::MapError;
use crate::openai::{ChatCompletionChunk, ChunkHead, Delta, FunctionCallDelta, ToolCallDelta};

#[derive(Debug)]
enum BlockState {
    Text,
    Tool { index: u32 },
    Thinking { text: String, signature: String },
    Ignored,
}

/// Per-stream mapper; see the module docs for the state it keeps.
#[derive(Debug)]
pub struct StreamMapper {
    public_model: String,
    created: u64,
    include_usage: bool,
    id: String,
    blocks: HashMap<u32, BlockState>,
    next_tool_index: u32,
    usage: Usage,
    role_sent: bool,
    finish_sent: bool,
    usage_sent: bool,
    complete: bool,
}

impl StreamMapper {
    /// `created` is the Unix time to stamp on chunks (the caller owns the clock).
    pub fn new(public_model: &str, created: u64, include_usage: bool) -> Self {
        StreamMapper {
            public_model: public_model.to_owned(),
            created,
            include_usage,
            id: "chatcmpl-stream".to_owned(),
            blocks: HashMap::new(),
            next_tool_index: 0,
            usage: Usage::default(),
            role_sent: false,
            finish_sent: false,
            usage_sent: false,
            complete: false,
        }
    }

    /// The OpenAI id used on every chunk (`chatcmpl-` + Anthropic message id).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// True once `message_stop` arrived: the upstream stream ended normally.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Usage as accumulated so far, in OpenAI shape (for spend logging).
    pub fn usage(&self) -> crate::openai::Usage {
        usage_to_openai(&self.usage)
    }

    /// Maps one upstream SSE event. `event_name` is the SSE `event:` field; the JSON
    /// `type` in `data` is authoritative (Anthropic always sends both, equal).
    /// An Anthropic `error` event becomes `Err(MapError::Upstream)`: the server sends it
    /// in-band to the client and ends the stream.
    pub fn on_event(
        &mut self,
        event_name: Option<&str>,
        data: &str,
    ) -> Result<Vec<ChatCompletionChunk>, MapError> {
        let data = data.trim();
        if data.is_empty() || event_name == Some("ping") {
            return Ok(Vec::new());
        }
        let event: StreamEvent =
            serde_json::from_str(data).map_err(|e| MapError::InvalidUpstream(e.to_string()))?;
        let mut out = Vec::new();
        match event {
            StreamEvent::MessageStart { message } => {
                self.id = chat_id(&message.id);
                self.usage.merge(&message.usage);
                self.ensure_role(&mut out);
            }
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                self.ensure_role(&mut out);
                self.block_start(index, content_block, &mut out);
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                self.ensure_role(&mut out);
                self.block_delta(index, delta, &mut out);
            }
            StreamEvent::ContentBlockStop { index } => self.block_stop(index, &mut out),
            StreamEvent::MessageDelta { delta, usage } => {
                if let Some(usage) = usage {
                    self.usage.merge(&usage);
                }
                if let Some(reason) = delta.stop_reason.as_deref() {
                    self.ensure_role(&mut out);
                    self.push_finish(finish_reason(Some(reason)), &mut out);
                }
            }
            StreamEvent::MessageStop => {
                self.complete = true;
                self.ensure_role(&mut out);
                self.push_finish(self.default_finish(), &mut out);
                self.push_usage(&mut out);
            }
            StreamEvent::Error { error } => {
                return Err(MapError::Upstream(upstream_error(
                    None,
                    &error.error_type,
                    &error.message,
                )));
            }
            StreamEvent::Ping | StreamEvent::Unknown => {}
        }
        Ok(out)
    }

    /// Call when the upstream stream ended. Emits whatever the client has not yet got:
    /// the finish chunk (when no `message_delta` carried a stop reason — the stream was
    /// cut; check [`StreamMapper::is_complete`]) and the usage chunk.
    pub fn finish(&mut self) -> Vec<ChatCompletionChunk> {
        let mut out = Vec::new();
        self.ensure_role(&mut out);
        self.push_finish(self.default_finish(), &mut out);
        self.push_usage(&mut out);
        out
    }

    fn block_start(
        &mut self,
        index: u32,
        block: ResponseBlock,
        out: &mut Vec<ChatCompletionChunk>,
    ) {
        let state = match block {
            ResponseBlock::Text { text } => {
                if !text.is_empty() {
                    out.push(self.chunk(Delta {
                        content: Some(text),
                        ..Delta::default()
                    }));
                }
                BlockState::Text
            }
            ResponseBlock::ToolUse { id, name, .. } => {
                let tool_index = self.next_tool_index;
                self.next_tool_index += 1;
                out.push(self.chunk(Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index: tool_index,
                        id: Some(id),
                        kind: Some("function".to_owned()),
                        function: Some(FunctionCallDelta {
                            name: Some(name),
                            arguments: Some(String::new()),
                        }),
                    }]),
                    ..Delta::default()
                }));
                BlockState::Tool { index: tool_index }
            }
            ResponseBlock::Thinking {
                thinking,
                signature,
            } => {
                if !thinking.is_empty() {
                    out.push(self.reasoning_chunk(thinking.clone()));
                }
                BlockState::Thinking {
                    text: thinking,
                    signature,
                }
            }
            ResponseBlock::RedactedThinking { data } => {
                out.push(self.chunk(Delta {
                    thinking_blocks: Some(vec![redacted_block_value(&data)]),
                    ..Delta::default()
                }));
                BlockState::Ignored
            }
            ResponseBlock::Other => BlockState::Ignored,
        };
        self.blocks.insert(index, state);
    }

    fn block_delta(&mut self, index: u32, delta: BlockDelta, out: &mut Vec<ChatCompletionChunk>) {
        match (self.blocks.get_mut(&index), delta) {
            (Some(BlockState::Text), BlockDelta::TextDelta { text }) => {
                out.push(self.chunk(Delta {
                    content: Some(text),
                    ..Delta::default()
                }));
            }
            (Some(BlockState::Tool { index }), BlockDelta::InputJsonDelta { partial_json }) => {
                if partial_json.is_empty() {
                    return;
                }
                let index = *index;
                out.push(self.chunk(Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index,
                        id: None,
                        kind: None,
                        function: Some(FunctionCallDelta {
                            name: None,
                            arguments: Some(partial_json),
                        }),
                    }]),
                    ..Delta::default()
                }));
            }
            (Some(BlockState::Thinking { text, .. }), BlockDelta::ThinkingDelta { thinking }) => {
                text.push_str(&thinking);
                out.push(self.reasoning_chunk(thinking));
            }
            (
                Some(BlockState::Thinking { signature, .. }),
                BlockDelta::SignatureDelta { signature: s },
            ) => {
                signature.push_str(&s);
            }
            // Deltas for blocks we skip (server tools, citations) or out of order.
            _ => {}
        }
    }

    fn block_stop(&mut self, index: u32, out: &mut Vec<ChatCompletionChunk>) {
        if let Some(BlockState::Thinking { text, signature }) = self.blocks.remove(&index) {
            out.push(self.chunk(Delta {
                thinking_blocks: Some(vec![thinking_block_value(&text, &signature)]),
                ..Delta::default()
            }));
        }
    }

    /// Finish reason when the upstream never sent a stop reason.
    fn default_finish(&self) -> &'static str {
        if self.next_tool_index > 0 {
            "tool_calls"
        } else {
            "stop"
        }
    }

    fn ensure_role(&mut self, out: &mut Vec<ChatCompletionChunk>) {
        if !self.role_sent {
            self.role_sent = true;
            out.push(self.head().role(0));
        }
    }

    fn push_finish(&mut self, reason: &str, out: &mut Vec<ChatCompletionChunk>) {
        if self.finish_sent {
            return;
        }
        self.finish_sent = true;
        out.push(self.head().finish(0, reason));
    }

    /// OpenAI's usage chunk: empty `choices`, `usage` set, after the finish chunk.
    fn push_usage(&mut self, out: &mut Vec<ChatCompletionChunk>) {
        if !self.include_usage || self.usage_sent {
            return;
        }
        self.usage_sent = true;
        out.push(self.head().usage(usage_to_openai(&self.usage)));
    }

    fn reasoning_chunk(&self, text: String) -> ChatCompletionChunk {
        self.chunk(Delta {
            reasoning_content: Some(text),
            ..Delta::default()
        })
    }

    fn head(&self) -> ChunkHead<'_> {
        ChunkHead {
            id: &self.id,
            created: self.created,
            model: &self.public_model,
        }
    }

    fn chunk(&self, delta: Delta) -> ChatCompletionChunk {
        self.head().delta(0, delta)
    }
}
