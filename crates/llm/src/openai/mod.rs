//! OpenAI chat-completions wire types: typed where the gateway reads or writes a field,
//! `rest` maps for everything else so unknown parameters survive a pass-through.

mod accumulate;
mod error;
mod request;
mod response;
mod split;

pub use accumulate::ChunkAccumulator;
pub use error::{ErrorBody, ErrorDetail, classify as classify_error};
pub use request::{
    ChatMessage, ChatRequest, ContentPart, FunctionCall, FunctionDef, ImageUrl, MessageContent,
    NamedFunction, NamedToolChoice, Role, Stop, StreamOptions, Tool, ToolCall, ToolChoice,
};
pub use response::{
    ChatCompletion, ChatCompletionChunk, Choice, ChunkChoice, ChunkHead, CompletionTokensDetails,
    Delta, FunctionCallDelta, PromptTokensDetails, ResponseMessage, ToolCallDelta, Usage,
};
pub use split::completion_chunks;

/// A JSON object used for unknown fields.
pub type Map = serde_json::Map<String, serde_json::Value>;
