//! A whole chat completion told as the chunks a stream of it would have had: the inverse
//! of [`super::ChunkAccumulator`], for answers that exist only whole (the MCP tool loop's)
//! but must reach a streaming client through a stream writer.

use super::{
    ChatCompletion, ChatCompletionChunk, ChunkChoice, ChunkHead, Delta, FunctionCallDelta,
    ToolCallDelta,
};

/// One chunk with the message (choice 0, tool calls whole), one with the usage.
pub fn completion_chunks(completion: ChatCompletion) -> Vec<ChatCompletionChunk> {
    let head = ChunkHead {
        id: &completion.id,
        created: completion.created,
        model: &completion.model,
    };
    let mut out = Vec::new();
    if let Some(choice) = completion.choices.iter().find(|c| c.index == 0) {
        let msg = &choice.message;
        let tool_calls = msg.tool_calls.as_ref().map(|calls| {
            calls
                .iter()
                .enumerate()
                .map(|(i, call)| ToolCallDelta {
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    id: Some(call.id.clone()),
                    kind: Some("function".into()),
                    function: Some(FunctionCallDelta {
                        name: Some(call.function.name.clone()),
                        arguments: Some(call.function.arguments.clone()),
                    }),
                })
                .collect()
        });
        let delta = Delta {
            role: Some("assistant".into()),
            content: msg.content.clone(),
            reasoning_content: msg.reasoning_content.clone(),
            thinking_blocks: msg.thinking_blocks.clone(),
            tool_calls,
            rest: Default::default(),
        };
        out.push(head.chunk(
            vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: choice.finish_reason.clone(),
            }],
            None,
        ));
    }
    if let Some(usage) = completion.usage.clone() {
        out.push(head.usage(usage));
    }
    out
}
