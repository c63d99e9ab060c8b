//! Gemini provider mappers: request, response, stream, JSON-Schema reduction.
#![no_main]

use gatehouse_llm::gemini;
use gatehouse_llm::openai::ChatRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            if let Ok(req) = serde_json::from_slice::<ChatRequest>(rest) {
                let _ = gemini::chat_to_gemini(&req);
            }
        }
        1 => {
            let _ = gemini::gemini_to_chat(rest, "m", 0);
        }
        2 => {
            if let Ok(schema) = serde_json::from_slice::<serde_json::Value>(rest) {
                let _ = gemini::reduce_schema(&schema);
            }
        }
        _ => {
            let mut m = gemini::StreamMapper::new("m", 0, true);
            for line in String::from_utf8_lossy(rest).split('\n') {
                let _ = m.on_event(line);
            }
            let _ = m.finish();
        }
    }
});
