//! Stateful ConverseStream events -> OpenAI `chat.completion.chunk`s.
//!
//! Events (named by the `:event-type` header): `messageStart`, `contentBlockStart`
//! (only for tool use), `contentBlockDelta` (text, tool input JSON fragments, reasoning),
//! `contentBlockStop`, `messageStop` (stop reason), `metadata` (usage, after the stop).
//! Exceptions arrive as events named `throttlingException`, `validationException`, ...
//!
//! One [`StreamMapper`] per stream keeps: Converse block index -> block kind / OpenAI
//! tool-call index (Converse numbers all blocks together, OpenAI only tool calls);
//! reasoning text + signature per block (emitted as one replayable `thinking_blocks`
//! entry when the block stops); whether role, finish and usage chunks were sent.

use std::collections::HashMap;

use serde_json::json;

use super::error::upstream_error;
use super::response::{chat_id, finish_reason, usage_to_openai};
use super::wire::{StreamPayload, Usage};
use crate::MapError;
use crate::openai::{ChatCompletionChunk, ChunkHead, Delta, FunctionCallDelta, ToolCallDelta};

#[derive(Debug)]
enum BlockState {
    Text,
    Tool { index: u32 },
    Reasoning { text: String, signature: String },
}

/// Per-stream mapper; see the module docs.
#[derive(Debug)]
pub struct StreamMapper {
    public_model: String,
    created: u64,
    include_usage: bool,
    id: String,
    blocks: HashMap<u32, BlockState>,
    next_tool_index: u32,
    usage: Option<Usage>,
    role_sent: bool,
    finish_sent: bool,
    usage_sent: bool,
    /// `messageStop` arrived.
    stopped: bool,
    /// `metadata` (usage, the last event AWS sends) arrived.
    measured: bool,
}

impl StreamMapper {
    /// `id` names the completion (Converse streams carry none); `created` is the Unix
    /// time to stamp on chunks.
    pub fn new(public_model: &str, id: &str, created: u64, include_usage: bool) -> Self {
        StreamMapper {
            public_model: public_model.to_owned(),
            created,
            include_usage,
            id: chat_id(id),
            blocks: HashMap::new(),
            next_tool_index: 0,
            usage: None,
            role_sent: false,
            finish_sent: false,
            usage_sent: false,
            stopped: false,
            measured: false,
        }
    }

    /// True once `messageStop` and the `metadata` after it arrived: a stream that ends
    /// before them was cut (and its usage is unknown).
    pub fn is_complete(&self) -> bool {
        self.stopped && self.measured
    }

    /// Usage from the `metadata` event, in OpenAI shape.
    pub fn usage(&self) -> Option<crate::openai::Usage> {
        self.usage.as_ref().map(usage_to_openai)
    }

    /// Maps one event. An exception event becomes `Err(MapError::Upstream)`.
    pub fn on_event(
        &mut self,
        event_type: &str,
        payload: &str,
    ) -> Result<Vec<ChatCompletionChunk>, MapError> {
        let payload: StreamPayload = if payload.trim().is_empty() {
            StreamPayload::default()
        } else {
            serde_json::from_str(payload).map_err(|e| MapError::InvalidUpstream(e.to_string()))?
        };
        if event_type.ends_with("Exception") {
            // Stream exceptions are lowerCamelCase (`throttlingException`).
            let mut name = event_type.to_owned();
            if let Some(first) = name.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            let message = payload.message.unwrap_or_else(|| name.clone());
            return Err(MapError::Upstream(upstream_error(None, &name, &message)));
        }
        let mut out = Vec::new();
        match event_type {
            "messageStart" => self.ensure_role(&mut out),
            "contentBlockStart" => {
                self.ensure_role(&mut out);
                let index = payload.content_block_index.unwrap_or(0);
                if let Some(tool) = payload.start.and_then(|s| s.tool_use) {
                    let tool_index = self.next_tool_index;
                    self.next_tool_index += 1;
                    self.blocks
                        .insert(index, BlockState::Tool { index: tool_index });
                    out.push(self.chunk(Delta {
                        tool_calls: Some(vec![ToolCallDelta {
                            index: tool_index,
                            id: Some(tool.tool_use_id),
                            kind: Some("function".to_owned()),
                            function: Some(FunctionCallDelta {
                                name: Some(tool.name),
                                arguments: Some(String::new()),
                            }),
                        }]),
                        ..Delta::default()
                    }));
                }
            }
            "contentBlockDelta" => {
                self.ensure_role(&mut out);
                let index = payload.content_block_index.unwrap_or(0);
                if let Some(delta) = payload.delta {
                    self.block_delta(index, delta, &mut out);
                }
            }
            "contentBlockStop" => {
                let index = payload.content_block_index.unwrap_or(0);
                if let Some(BlockState::Reasoning { text, signature }) = self.blocks.remove(&index)
                {
                    out.push(self.chunk(Delta {
                        thinking_blocks: Some(vec![json!({"type": "thinking",
                            "thinking": text, "signature": signature})]),
                        ..Delta::default()
                    }));
                }
            }
            "messageStop" => {
                self.stopped = true;
                self.ensure_role(&mut out);
                let reason =
                    finish_reason(payload.stop_reason.as_deref(), self.next_tool_index > 0);
                self.push_finish(reason, &mut out);
            }
            "metadata" => {
                self.measured = true;
                if let Some(usage) = payload.usage {
                    self.usage = Some(usage);
                }
                if self.finish_sent {
                    self.push_usage(&mut out);
                }
            }
            _ => {}
        }
        Ok(out)
    }

    /// Call when the upstream ended: the finish chunk if `messageStop` never came (the
    /// stream was cut; see [`StreamMapper::is_complete`]) and the usage chunk.
    pub fn finish(&mut self) -> Vec<ChatCompletionChunk> {
        let mut out = Vec::new();
        self.ensure_role(&mut out);
        let reason = finish_reason(None, self.next_tool_index > 0);
        self.push_finish(reason, &mut out);
        self.push_usage(&mut out);
        out
    }

    fn block_delta(
        &mut self,
        index: u32,
        delta: super::wire::BlockDelta,
        out: &mut Vec<ChatCompletionChunk>,
    ) {
        if let Some(text) = delta.text {
            self.blocks.entry(index).or_insert(BlockState::Text);
            if !text.is_empty() {
                out.push(self.chunk(Delta {
                    content: Some(text),
                    ..Delta::default()
                }));
            }
        } else if let Some(tool) = delta.tool_use {
            if let Some(BlockState::Tool { index }) = self.blocks.get(&index)
                && !tool.input.is_empty()
            {
                let index = *index;
                out.push(self.chunk(Delta {
                    tool_calls: Some(vec![ToolCallDelta {
                        index,
                        id: None,
                        kind: None,
                        function: Some(FunctionCallDelta {
                            name: None,
                            arguments: Some(tool.input),
                        }),
                    }]),
                    ..Delta::default()
                }));
            }
        } else if let Some(reasoning) = delta.reasoning_content {
            let state = self.blocks.entry(index).or_insert(BlockState::Reasoning {
                text: String::new(),
                signature: String::new(),
            });
            if let BlockState::Reasoning { text, signature } = state {
                if let Some(s) = &reasoning.signature {
                    signature.push_str(s);
                }
                if let Some(t) = &reasoning.text {
                    text.push_str(t);
                }
            }
            if let Some(t) = reasoning.text.filter(|t| !t.is_empty()) {
                out.push(self.chunk(Delta {
                    reasoning_content: Some(t),
                    ..Delta::default()
                }));
            }
            if let Some(data) = reasoning.redacted_content {
                out.push(self.chunk(Delta {
                    thinking_blocks: Some(vec![json!({"type": "redacted_thinking", "data": data})]),
                    ..Delta::default()
                }));
            }
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

    fn push_usage(&mut self, out: &mut Vec<ChatCompletionChunk>) {
        if !self.include_usage || self.usage_sent {
            return;
        }
        self.usage_sent = true;
        out.push(
            self.head()
                .usage(self.usage.as_ref().map(usage_to_openai).unwrap_or_default()),
        );
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
