//! Anthropic provider mappers: chat request -> Messages, Messages response -> chat, and
//! the stream mapper on arbitrary events. The first byte picks the mapper.
#![no_main]

use gatehouse_llm::anthropic;
use gatehouse_llm::openai::ChatRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => {
            if let Ok(req) = serde_json::from_slice::<ChatRequest>(rest) {
                let _ = anthropic::chat_to_messages(&req, "claude-x", &Default::default());
            }
        }
        1 => {
            let _ = anthropic::response::messages_to_chat(rest, "m", 0);
        }
        _ => {
            let mut m = anthropic::StreamMapper::new("m", 0, true);
            for line in String::from_utf8_lossy(rest).split('\n') {
                let (event, data) = line.split_once('|').unwrap_or((line, line));
                let _ = m.on_event(Some(event), data);
            }
            let _ = m.finish();
        }
    }
});
