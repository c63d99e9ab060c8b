//! Bedrock provider mappers: request, Converse response, the event-stream decoder and
//! the stream mapper on what it decodes.
#![no_main]

use gatehouse_llm::bedrock;
use gatehouse_llm::openai::ChatRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 4 {
        0 => {
            if let Ok(req) = serde_json::from_slice::<ChatRequest>(rest) {
                let _ = bedrock::chat_to_converse(&req, "anthropic.claude-x");
            }
        }
        1 => {
            let _ = bedrock::converse_to_chat(rest, "m", "id", 0);
        }
        2 => {
            // Arbitrary bytes as the binary event stream, in 7-byte pieces.
            let mut d = bedrock::eventstream::Decoder::new();
            for chunk in rest.chunks(7) {
                if d.push(chunk).is_err() {
                    return;
                }
            }
            let _ = d.finish();
        }
        _ => {
            let mut m = bedrock::StreamMapper::new("m", "id", 0, true);
            for line in String::from_utf8_lossy(rest).split('\n') {
                let (event, payload) = line.split_once('|').unwrap_or((line, line));
                let _ = m.on_event(event, payload);
            }
            let _ = m.finish();
        }
    }
});
