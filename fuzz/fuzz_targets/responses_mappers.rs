//! Responses API inbound: request -> chat, chat answer -> response object, and the
//! stream writer on arbitrary chunks.
#![no_main]

use gatehouse_llm::openai::{ChatCompletion, ChatCompletionChunk};
use gatehouse_llm::responses;
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
            let _ = responses::to_chat(&value);
        }
        1 => {
            let Ok(done) = serde_json::from_value::<ChatCompletion>(value) else {
                return;
            };
            let ctx = responses::ResponsesContext::default();
            let _ = responses::from_chat(&done, &ctx, "resp_1", 0);
        }
        _ => {
            let chunks: Vec<ChatCompletionChunk> = match value {
                serde_json::Value::Array(items) => items
                    .into_iter()
                    .filter_map(|c| serde_json::from_value(c).ok())
                    .collect(),
                _ => return,
            };
            let mut w = responses::ResponsesStreamWriter::new(Default::default(), "resp_1", 0);
            let _ = w.start();
            for c in &chunks {
                let _ = w.push(c);
            }
            let _ = w.finish();
            let _ = w.response();
        }
    }
});
