//! The SSE parser on arbitrary bytes in arbitrary splits: same events whatever the split.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else {
        return;
    };
    let mut whole = gatehouse_llm::sse::Parser::new();
    let mut expected = whole.push(body);
    expected.extend(whole.finish());
    let mut parts = gatehouse_llm::sse::Parser::new();
    let mut got = Vec::new();
    for chunk in body.chunks(usize::from(split).max(1)) {
        got.extend(parts.push(chunk));
    }
    got.extend(parts.finish());
    assert_eq!(format!("{expected:?}"), format!("{got:?}"), "split changed the events");
});
