//! The SSE a streaming client gets from the tool loop: progress chunks with no choices
//! (an `mcp_call` extension field), then the final answer as standard chunks.

use bytes::Bytes;
use serde_json::{Value, json};

use super::execute::CallEvent;
use crate::providers::unix_now;

pub struct ChunkMeta {
    pub id: String,
    pub model: String,
    pub created: u64,
}

impl ChunkMeta {
    pub fn new(model: String) -> Self {
        Self {
            id: format!("chatcmpl-gh{}", uuid::Uuid::new_v4().simple()),
            model,
            created: unix_now(),
        }
    }

    fn chunk(&self, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        })
    }
}

fn data(value: &Value, out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(value.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

pub fn progress_chunk(meta: &ChunkMeta, event: &CallEvent) -> Bytes {
    let mcp_call = match event {
        CallEvent::Started { id, server, tool } => {
            json!({"id": id, "server": server, "tool": tool, "status": "running"})
        }
        CallEvent::Progress { id, progress } => {
            json!({"id": id, "status": "progress", "progress": progress})
        }
        CallEvent::Finished(record) => {
            let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
            gatehouse_llm::json::set(
                &mut v,
                "status",
                json!(if record.ok { "completed" } else { "failed" }),
            );
            v
        }
    };
    let mut chunk = meta.chunk(json!([]));
    gatehouse_llm::json::set(&mut chunk, "mcp_call", mcp_call);
    let mut out = Vec::new();
    data(&chunk, &mut out);
    Bytes::from(out)
}

/// The final completion as standard chunks: role + content, the calls left for the
/// client, the finish reason (with `mcp_calls`), usage when asked, `[DONE]`.
pub fn final_chunks(meta: &ChunkMeta, completion: &Value, include_usage: bool) -> Bytes {
    let mut out = Vec::new();
    let message = completion
        .pointer("/choices/0/message")
        .cloned()
        .unwrap_or(Value::Null);
    let content = message.get("content").and_then(Value::as_str).unwrap_or("");
    data(
        &meta.chunk(json!([{"index": 0, "delta": {"role": "assistant", "content": content}, "finish_reason": null}])),
        &mut out,
    );
    if let Some(calls) = message.get("tool_calls").and_then(Value::as_array) {
        let deltas: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"index": i, "id": c["id"], "type": "function", "function": c["function"]}))
            .collect();
        data(
            &meta.chunk(
                json!([{"index": 0, "delta": {"tool_calls": deltas}, "finish_reason": null}]),
            ),
            &mut out,
        );
    }
    let finish_reason = completion
        .pointer("/choices/0/finish_reason")
        .cloned()
        .unwrap_or(json!("stop"));
    let mut last = meta.chunk(json!([{"index": 0, "delta": {}, "finish_reason": finish_reason}]));
    for key in [
        "mcp_calls",
        "mcp_max_iterations_reached",
        "mcp_unexecuted_calls",
    ] {
        if let Some(v) = completion.get(key) {
            gatehouse_llm::json::set(&mut last, key, v.clone());
        }
    }
    data(&last, &mut out);
    if include_usage && let Some(usage) = completion.get("usage") {
        let mut chunk = meta.chunk(json!([]));
        gatehouse_llm::json::set(&mut chunk, "usage", usage.clone());
        data(&chunk, &mut out);
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    Bytes::from(out)
}
