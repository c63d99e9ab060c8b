//! Folds a chat-completion chunk stream back into the equivalent non-stream completion.
//! The tool-execution loop needs the assistant turn (tool calls with full arguments,
//! thinking blocks to replay) of a streamed round; spend logging needs the usage.

use serde_json::Value;

use super::{
    ChatCompletion, ChatCompletionChunk, Choice, FunctionCall, ResponseMessage, ToolCall, Usage,
};

/// Accumulates choice 0 of a stream (the gateway never asks vendors for `n > 1`).
#[derive(Debug, Default)]
pub struct ChunkAccumulator {
    id: String,
    created: u64,
    model: String,
    content: Option<String>,
    reasoning: Option<String>,
    thinking_blocks: Vec<Value>,
    tool_calls: Vec<ToolCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl ChunkAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, chunk: &ChatCompletionChunk) {
        if self.id.is_empty() {
            self.id.clone_from(&chunk.id);
            self.created = chunk.created;
            self.model.clone_from(&chunk.model);
        }
        if let Some(usage) = &chunk.usage {
            self.usage = Some(usage.clone());
        }
        let Some(choice) = chunk.choices.iter().find(|c| c.index == 0) else {
            return;
        };
        if let Some(reason) = &choice.finish_reason {
            self.finish_reason = Some(reason.clone());
        }
        let delta = &choice.delta;
        if let Some(text) = &delta.content {
            self.content.get_or_insert_with(String::new).push_str(text);
        }
        if let Some(text) = &delta.reasoning_content {
            self.reasoning
                .get_or_insert_with(String::new)
                .push_str(text);
        }
        if let Some(blocks) = &delta.thinking_blocks {
            self.thinking_blocks.extend(blocks.iter().cloned());
        }
        for call in delta.tool_calls.iter().flatten() {
            let index = call.index as usize;
            while self.tool_calls.len() <= index {
                self.tool_calls.push(ToolCall {
                    id: String::new(),
                    kind: "function".to_owned(),
                    function: FunctionCall {
                        name: String::new(),
                        arguments: String::new(),
                    },
                    rest: Default::default(),
                });
            }
            let slot = &mut self.tool_calls[index];
            if let Some(id) = &call.id {
                slot.id.clone_from(id);
            }
            if let Some(f) = &call.function {
                if let Some(name) = &f.name {
                    slot.function.name.push_str(name);
                }
                if let Some(args) = &f.arguments {
                    slot.function.arguments.push_str(args);
                }
            }
        }
    }

    /// The completion the chunks add up to.
    pub fn finish(self) -> ChatCompletion {
        let has_tools = !self.tool_calls.is_empty();
        let content = self.content.filter(|c| !c.is_empty() || !has_tools);
        ChatCompletion {
            id: self.id,
            object: "chat.completion".to_owned(),
            created: self.created,
            model: self.model,
            choices: vec![Choice {
                index: 0,
                message: ResponseMessage {
                    role: "assistant".to_owned(),
                    content,
                    tool_calls: has_tools.then_some(self.tool_calls),
                    reasoning_content: self.reasoning,
                    thinking_blocks: (!self.thinking_blocks.is_empty())
                        .then_some(self.thinking_blocks),
                    rest: Default::default(),
                },
                finish_reason: self.finish_reason,
                logprobs: None,
            }],
            usage: self.usage,
            rest: Default::default(),
        }
    }
}
