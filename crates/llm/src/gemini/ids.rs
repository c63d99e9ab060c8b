//! Tool-call ids. Gemini's `functionCall` usually has no id (results are matched to calls
//! by name and order), while OpenAI clients key results by `tool_call_id`. We synthesise
//! an id per call, deterministic from the response and the call's position so the same
//! answer always yields the same ids, and unique across turns of a conversation.
//!
//! Gemini 2.5+/3 attach a `thoughtSignature` to the first function-call part of a
//! thinking turn and require it back on that part in the next request. OpenAI's chat
//! shape has nowhere to keep it, so it rides in the id: `<id>__thought__<signature>`
//! (the separator LiteLLM uses, so conversations move between the two gateways).

/// Separator between the call id and an embedded thought signature.
pub const THOUGHT_SEPARATOR: &str = "__thought__";

/// An id for call number `index` of the answer identified by `seed` (the response id,
/// or anything stable about the answer when Gemini sent none).
pub fn call_id(seed: &str, index: usize, name: &str) -> String {
    // FNV-1a: tiny, stable across Rust versions (unlike `DefaultHasher`).
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed.bytes().chain(index.to_le_bytes()).chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("call_{hash:016x}")
}

/// The OpenAI id for a Gemini call: Gemini's own id when it sent one, else `synthesised`;
/// plus the thought signature, if any.
pub fn encode(gemini_id: Option<&str>, synthesised: String, signature: Option<&str>) -> String {
    let base = gemini_id
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .unwrap_or(synthesised);
    match signature.filter(|s| !s.is_empty()) {
        Some(sig) => format!("{base}{THOUGHT_SEPARATOR}{sig}"),
        None => base,
    }
}

/// Splits an OpenAI tool-call id into the id and an embedded thought signature.
pub fn decode(id: &str) -> (&str, Option<&str>) {
    match id.split_once(THOUGHT_SEPARATOR) {
        Some((base, sig)) if !sig.is_empty() => (base, Some(sig)),
        _ => (id, None),
    }
}

/// True for ids made by [`call_id`] (never sent back to Gemini, which did not issue them).
pub fn is_synthesised(id: &str) -> bool {
    id.strip_prefix("call_")
        .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}
