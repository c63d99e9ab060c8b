//! Chat completion -> Responses `response` object.

use serde_json::{Value, json};

use super::items::{
    ResponseState, call_item, item_id, message_item, reasoning_item, response_object, status_for,
};
use super::request::ResponsesContext;
use crate::openai::ChatCompletion;

/// Renders a chat completion (choice 0) as a Responses `response` object. `response_id`
/// (`resp_...`) and `created` (Unix seconds) are the caller's: it may store the answer
/// under that id for `previous_response_id`.
pub fn from_chat(
    completion: &ChatCompletion,
    ctx: &ResponsesContext,
    response_id: &str,
    created: u64,
) -> Value {
    let choice = completion.choices.iter().find(|c| c.index == 0);
    let mut output = Vec::new();
    if let Some(choice) = choice {
        let msg = &choice.message;
        let reasoning = msg.reasoning_content.as_deref().unwrap_or("");
        let blocks = msg.thinking_blocks.as_deref().unwrap_or(&[]);
        if !reasoning.is_empty() || !blocks.is_empty() {
            let id = item_id("rs", response_id, output.len());
            output.push(reasoning_item(&id, reasoning, blocks));
        }
        let (status, _) = status_for(choice.finish_reason.as_deref());
        if let Some(text) = msg.content.as_deref().filter(|t| !t.is_empty()) {
            let id = item_id("msg", response_id, output.len());
            output.push(message_item(&id, status, Some(text)));
        }
        for call in msg.tool_calls.iter().flatten() {
            let id = item_id("fc", response_id, output.len());
            output.push(call_item(
                ctx,
                &id,
                "completed",
                &call.id,
                &call.function.name,
                &call.function.arguments,
            ));
        }
    }
    let finish = choice.and_then(|c| c.finish_reason.as_deref());
    let (status, incomplete_details) = status_for(finish);
    response_object(
        ctx,
        ResponseState {
            id: response_id,
            created,
            status,
            error: Value::Null,
            incomplete_details,
            output,
            usage: completion.usage.as_ref(),
        },
    )
}

/// The `error` object of a failed response, from a classified error.
pub(crate) fn error_object(kind: crate::ErrorKind, message: &str) -> Value {
    let code = kind.openai_code().unwrap_or(match kind.status() {
        500.. => "server_error",
        _ => kind.openai_type(),
    });
    json!({"code": code, "message": message})
}
