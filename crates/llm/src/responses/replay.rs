//! A finished `response` object told as the Responses event stream a client would have
//! seen had it been streamed: for answers that exist only whole (the MCP tool loop runs
//! its rounds before the final answer is known).

use serde_json::{Value, json};

use crate::json::set;

struct Events {
    out: Vec<u8>,
    seq: u64,
}

impl Events {
    fn emit(&mut self, kind: &str, fields: Value) {
        super::stream::encode_event(&mut self.seq, kind, fields, &mut self.out);
    }
}

/// The whole event stream for `response` (created … completed/incomplete/failed).
pub fn events(response: &Value) -> Vec<u8> {
    let mut ev = Events {
        out: Vec::new(),
        seq: 0,
    };
    let mut head = response.clone();
    set(&mut head, "status", json!("in_progress"));
    set(&mut head, "output", json!([]));
    set(&mut head, "usage", Value::Null);
    ev.emit("response.created", json!({"response": head.clone()}));
    ev.emit("response.in_progress", json!({"response": head}));
    let output = response
        .get("output")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (index, item) in output.iter().enumerate() {
        item_events(&mut ev, index, item);
    }
    let status = response
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("completed");
    let kind = match status {
        "failed" => "response.failed",
        "incomplete" => "response.incomplete",
        _ => "response.completed",
    };
    ev.emit(kind, json!({"response": response}));
    ev.out
}

fn item_events(ev: &mut Events, index: usize, item: &Value) {
    let id = item.get("id").cloned().unwrap_or(Value::Null);
    let kind = item.get("type").and_then(Value::as_str).unwrap_or("");
    let mut added = item.clone();
    match kind {
        "message" => {
            set(&mut added, "status", json!("in_progress"));
            set(&mut added, "content", json!([]));
            ev.emit(
                "response.output_item.added",
                json!({"output_index": index, "item": added}),
            );
            let parts = item
                .get("content")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (content_index, part) in parts.iter().enumerate() {
                let text = part.get("text").and_then(Value::as_str).unwrap_or("");
                let mut empty = part.clone();
                set(&mut empty, "text", json!(""));
                let at =
                    json!({"item_id": id, "output_index": index, "content_index": content_index});
                ev.emit(
                    "response.content_part.added",
                    merge(&at, json!({"part": empty})),
                );
                if !text.is_empty() {
                    ev.emit(
                        "response.output_text.delta",
                        merge(&at, json!({"delta": text, "logprobs": []})),
                    );
                }
                ev.emit(
                    "response.output_text.done",
                    merge(&at, json!({"text": text, "logprobs": []})),
                );
                ev.emit(
                    "response.content_part.done",
                    merge(&at, json!({"part": part})),
                );
            }
        }
        "function_call" => {
            set(&mut added, "status", json!("in_progress"));
            set(&mut added, "arguments", json!(""));
            ev.emit(
                "response.output_item.added",
                json!({"output_index": index, "item": added}),
            );
            let arguments = item.get("arguments").and_then(Value::as_str).unwrap_or("");
            let at = json!({"item_id": id, "output_index": index});
            if !arguments.is_empty() {
                ev.emit(
                    "response.function_call_arguments.delta",
                    merge(&at, json!({"delta": arguments})),
                );
            }
            ev.emit(
                "response.function_call_arguments.done",
                merge(&at, json!({"arguments": arguments})),
            );
        }
        "mcp_call" => {
            set(&mut added, "status", json!("in_progress"));
            set(&mut added, "output", Value::Null);
            set(&mut added, "error", Value::Null);
            ev.emit(
                "response.output_item.added",
                json!({"output_index": index, "item": added}),
            );
            let at = json!({"item_id": id, "output_index": index});
            ev.emit("response.mcp_call.in_progress", at.clone());
            let arguments = item.get("arguments").and_then(Value::as_str).unwrap_or("");
            ev.emit(
                "response.mcp_call_arguments.delta",
                merge(&at, json!({"delta": arguments})),
            );
            ev.emit(
                "response.mcp_call_arguments.done",
                merge(&at, json!({"arguments": arguments})),
            );
            let done = if item.get("error").is_some_and(|e| !e.is_null()) {
                "response.mcp_call.failed"
            } else {
                "response.mcp_call.completed"
            };
            ev.emit(done, at);
        }
        "mcp_list_tools" => {
            set(&mut added, "tools", json!([]));
            ev.emit(
                "response.output_item.added",
                json!({"output_index": index, "item": added}),
            );
            let at = json!({"item_id": id, "output_index": index});
            ev.emit("response.mcp_list_tools.in_progress", at.clone());
            ev.emit("response.mcp_list_tools.completed", at);
        }
        _ => {
            ev.emit(
                "response.output_item.added",
                json!({"output_index": index, "item": added}),
            );
        }
    }
    ev.emit(
        "response.output_item.done",
        json!({"output_index": index, "item": item}),
    );
}

fn merge(a: &Value, b: Value) -> Value {
    let mut out = a.clone();
    if let (Some(out), Value::Object(b)) = (out.as_object_mut(), b) {
        out.extend(b);
    }
    out
}
