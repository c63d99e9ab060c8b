//! Anthropic Messages inbound: request -> chat, chat answer -> message, and the stream
//! writer on arbitrary chunks.
#![no_main]

use gatehouse_llm::messages_in;
use gatehouse_llm::openai::{ChatCompletion, ChatCompletionChunk};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    match which % 3 {
        0 => {
            let _ = messages_in::to_chat(&value);
        }
        1 => {
            if let Ok(done) = serde_json::from_value::<ChatCompletion>(value) {
                let _ = messages_in::from_chat(&done, "m");
            }
        }
        _ => {
            let serde_json::Value::Array(items) = value else {
                return;
            };
            let mut w = messages_in::MessagesStreamWriter::new("m");
            for c in items {
                if let Ok(chunk) = serde_json::from_value::<ChatCompletionChunk>(c) {
                    let _ = w.push(&chunk);
                }
            }
            let _ = w.finish();
        }
    }
});
