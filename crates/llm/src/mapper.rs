//! The two ends of a translated stream, one trait each:
//!
//! - [`ChunkMapper`]: a vendor's events in, chat chunks out, and whether the vendor's
//!   stream reached its final event. A stream whose upstream ended before
//!   [`ChunkMapper::is_complete`] turned true was cut and must reach the client as an
//!   error, never as a normal finish.
//! - [`ChunkWriter`]: chat chunks in, a client dialect's SSE bytes out (Messages,
//!   Responses), ending with its closing events or its in-band error.

use crate::openai::{ChatCompletionChunk, Usage};
use crate::{ErrorKind, MapError, anthropic, bedrock, gemini, messages_in, responses};

/// A client dialect's stateful stream writer. Once ended (finished or failed) it writes
/// nothing more.
pub trait ChunkWriter: Send {
    fn push(&mut self, chunk: &ChatCompletionChunk) -> Vec<u8>;
    /// The upstream ended normally: the closing events.
    fn finish(&mut self) -> Vec<u8>;
    /// The upstream failed (or was cut) mid-stream: the in-band error that ends it.
    fn fail(&mut self, kind: ErrorKind, message: &str) -> Vec<u8>;
}

impl ChunkWriter for messages_in::MessagesStreamWriter {
    fn push(&mut self, chunk: &ChatCompletionChunk) -> Vec<u8> {
        messages_in::MessagesStreamWriter::push(self, chunk)
    }

    fn finish(&mut self) -> Vec<u8> {
        messages_in::MessagesStreamWriter::finish(self)
    }

    fn fail(&mut self, kind: ErrorKind, message: &str) -> Vec<u8> {
        messages_in::MessagesStreamWriter::fail(self, kind, message)
    }
}

impl ChunkWriter for responses::ResponsesStreamWriter {
    fn push(&mut self, chunk: &ChatCompletionChunk) -> Vec<u8> {
        responses::ResponsesStreamWriter::push(self, chunk)
    }

    fn finish(&mut self) -> Vec<u8> {
        responses::ResponsesStreamWriter::finish(self)
    }

    fn fail(&mut self, kind: ErrorKind, message: &str) -> Vec<u8> {
        responses::ResponsesStreamWriter::fail(self, kind, message)
    }
}

/// A vendor's stateful stream mapper.
pub trait ChunkMapper: Send {
    /// Maps one SSE event (`event` is the SSE `event:` field where the vendor names them).
    fn on_event(
        &mut self,
        event: Option<&str>,
        data: &str,
    ) -> Result<Vec<ChatCompletionChunk>, MapError>;
    /// The upstream ended: the last chunks (finish reason, usage when asked). Call only
    /// when [`ChunkMapper::is_complete`]; a cut stream has no honest finish.
    fn finish(&mut self) -> Vec<ChatCompletionChunk>;
    /// The tokens the stream reported so far.
    fn usage(&self) -> Option<Usage>;
    /// Whether the vendor's final event arrived (Anthropic `message_stop`, Gemini's
    /// `finishReason`, Bedrock `messageStop` and `metadata`).
    fn is_complete(&self) -> bool;
}

impl ChunkMapper for anthropic::StreamMapper {
    fn on_event(
        &mut self,
        event: Option<&str>,
        data: &str,
    ) -> Result<Vec<ChatCompletionChunk>, MapError> {
        anthropic::StreamMapper::on_event(self, event, data)
    }

    fn finish(&mut self) -> Vec<ChatCompletionChunk> {
        anthropic::StreamMapper::finish(self)
    }

    fn usage(&self) -> Option<Usage> {
        Some(anthropic::StreamMapper::usage(self))
    }

    fn is_complete(&self) -> bool {
        anthropic::StreamMapper::is_complete(self)
    }
}

impl ChunkMapper for gemini::StreamMapper {
    fn on_event(
        &mut self,
        _event: Option<&str>,
        data: &str,
    ) -> Result<Vec<ChatCompletionChunk>, MapError> {
        gemini::StreamMapper::on_event(self, data)
    }

    fn finish(&mut self) -> Vec<ChatCompletionChunk> {
        gemini::StreamMapper::finish(self)
    }

    fn usage(&self) -> Option<Usage> {
        gemini::StreamMapper::usage(self)
    }

    fn is_complete(&self) -> bool {
        gemini::StreamMapper::is_complete(self)
    }
}

impl ChunkMapper for bedrock::StreamMapper {
    fn on_event(
        &mut self,
        event: Option<&str>,
        data: &str,
    ) -> Result<Vec<ChatCompletionChunk>, MapError> {
        bedrock::StreamMapper::on_event(self, event.unwrap_or(""), data)
    }

    fn finish(&mut self) -> Vec<ChatCompletionChunk> {
        bedrock::StreamMapper::finish(self)
    }

    fn usage(&self) -> Option<Usage> {
        bedrock::StreamMapper::usage(self)
    }

    fn is_complete(&self) -> bool {
        bedrock::StreamMapper::is_complete(self)
    }
}
