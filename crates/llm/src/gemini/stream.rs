//! Stateful Gemini `streamGenerateContent?alt=sse` events -> OpenAI `chat.completion.chunk`s.
//!
//! Every SSE `data:` is a whole `GenerateContentResponse` holding the next parts of
//! each candidate; text arrives in pieces, a `functionCall` part arrives complete. One
//! [`StreamMapper`] per upstream stream keeps:
//! - the chunk id (from the first `responseId`), so every chunk carries the same id;
//! - per candidate (OpenAI choice): the next tool-call index, so parallel calls get
//!   0, 1, 2, ... (each call is announced once with id, name and its full arguments),
//!   whether the role and the finish chunk were sent;
//! - the latest `usageMetadata` (Gemini repeats cumulative counts; the last one wins).

use std::collections::BTreeMap;

use super::response::{chat_id, finish_reason, tool_call, usage_to_openai};
use super::wire::{GenerateResponse, UsageMetadata};
use crate::openai::{ChatCompletionChunk, ChunkHead, Delta, FunctionCallDelta, ToolCallDelta};
use crate::{ErrorKind, MapError, UpstreamError};

#[derive(Debug, Default)]
struct ChoiceState {
    role_sent: bool,
    tool_calls: usize,
    finished: bool,
}

/// Per-stream mapper; see the module docs for the state it keeps.
#[derive(Debug)]
pub struct StreamMapper {
    public_model: String,
    created: u64,
    include_usage: bool,
    id: Option<String>,
    choices: BTreeMap<u32, ChoiceState>,
    usage: Option<UsageMetadata>,
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
            id: None,
            choices: BTreeMap::new(),
            usage: None,
            usage_sent: false,
            complete: false,
        }
    }

    /// True once every candidate seen has reported a `finishReason`.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Usage as reported so far, in OpenAI shape (for spend logging).
    pub fn usage(&self) -> Option<crate::openai::Usage> {
        self.usage.as_ref().map(usage_to_openai)
    }

    /// Maps one SSE event's `data`. A Google error object in the stream becomes
    /// `Err(MapError::Upstream)`: the server sends it in-band and ends the stream.
    pub fn on_event(&mut self, data: &str) -> Result<Vec<ChatCompletionChunk>, MapError> {
        let data = data.trim();
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let resp: GenerateResponse =
            serde_json::from_str(data).map_err(|e| MapError::InvalidUpstream(e.to_string()))?;
        if let Some(err) = &resp.error {
            return Err(MapError::Upstream(super::error::upstream_error(err)));
        }
        if self.id.is_none() {
            self.id = Some(chat_id(&resp));
        }
        if let Some(usage) = resp.usage_metadata.clone() {
            self.usage = Some(usage);
        }
        let mut out = Vec::new();
        if resp.candidates.is_empty()
            && let Some(reason) = resp
                .prompt_feedback
                .as_ref()
                .and_then(|f| f.block_reason.as_deref())
        {
            return Err(MapError::Upstream(UpstreamError {
                kind: ErrorKind::ContentPolicy,
                error_type: reason.to_owned(),
                message: format!("the prompt was blocked by Gemini ({reason})"),
            }));
        }
        for (position, candidate) in resp.candidates.iter().enumerate() {
            let index = candidate
                .index
                .unwrap_or(u32::try_from(position).unwrap_or(0));
            self.ensure_role(index, &mut out);
            let seed = format!("{}/{index}", self.id());
            for part in candidate.content.iter().flat_map(|c| c.parts.iter()) {
                let number = self.state(index).tool_calls;
                if let Some(call) = tool_call(part, &seed, number) {
                    self.state(index).tool_calls += 1;
                    out.push(self.chunk(
                        index,
                        Delta {
                            tool_calls: Some(vec![ToolCallDelta {
                                index: u32::try_from(number).unwrap_or(u32::MAX),
                                id: Some(call.id),
                                kind: Some("function".to_owned()),
                                function: Some(FunctionCallDelta {
                                    name: Some(call.function.name),
                                    arguments: Some(call.function.arguments),
                                }),
                            }]),
                            ..Delta::default()
                        },
                    ));
                } else if let Some(text) = part.text.as_ref().filter(|t| !t.is_empty()) {
                    let delta = if part.thought == Some(true) {
                        Delta {
                            reasoning_content: Some(text.clone()),
                            ..Delta::default()
                        }
                    } else {
                        Delta {
                            content: Some(text.clone()),
                            ..Delta::default()
                        }
                    };
                    out.push(self.chunk(index, delta));
                }
            }
            if let Some(reason) = candidate.finish_reason.as_deref() {
                let has_tools = self.state(index).tool_calls > 0;
                self.push_finish(index, finish_reason(Some(reason), has_tools), &mut out);
            }
        }
        self.complete = !self.choices.is_empty() && self.choices.values().all(|c| c.finished);
        Ok(out)
    }

    /// Call when the upstream stream ended: the finish chunk of every candidate that sent
    /// none (the stream was cut; check [`StreamMapper::is_complete`]) and the usage chunk.
    pub fn finish(&mut self) -> Vec<ChatCompletionChunk> {
        let mut out = Vec::new();
        if self.choices.is_empty() {
            self.ensure_role(0, &mut out);
        }
        let open: Vec<(u32, bool)> = self
            .choices
            .iter()
            .filter(|(_, c)| !c.finished)
            .map(|(i, c)| (*i, c.tool_calls > 0))
            .collect();
        for (index, has_tools) in open {
            self.push_finish(index, finish_reason(None, has_tools), &mut out);
        }
        if self.include_usage && !self.usage_sent {
            self.usage_sent = true;
            let usage = self.usage.as_ref().map(usage_to_openai).unwrap_or_default();
            out.push(self.head().usage(usage));
        }
        out
    }

    fn id(&self) -> &str {
        self.id.as_deref().unwrap_or("chatcmpl-gemini")
    }

    fn state(&mut self, index: u32) -> &mut ChoiceState {
        self.choices.entry(index).or_default()
    }

    fn ensure_role(&mut self, index: u32, out: &mut Vec<ChatCompletionChunk>) {
        if !self.state(index).role_sent {
            self.state(index).role_sent = true;
            out.push(self.head().role(index));
        }
    }

    fn push_finish(&mut self, index: u32, reason: &str, out: &mut Vec<ChatCompletionChunk>) {
        if self.state(index).finished {
            return;
        }
        self.state(index).finished = true;
        out.push(self.head().finish(index, reason));
    }

    fn head(&self) -> ChunkHead<'_> {
        ChunkHead {
            id: self.id(),
            created: self.created,
            model: &self.public_model,
        }
    }

    fn chunk(&self, index: u32, delta: Delta) -> ChatCompletionChunk {
        self.head().delta(index, delta)
    }
}
