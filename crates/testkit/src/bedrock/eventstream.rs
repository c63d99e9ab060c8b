//! AWS event-stream framing (encoder): prelude (total length, headers length, CRC-32),
//! string headers, payload, message CRC-32.

use bytes::Bytes;

use crc32fast::hash as crc32;

/// One message with string-valued headers (type 7).
pub(crate) fn message(headers: &[(&str, &str)], payload: &[u8]) -> Bytes {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (16 + h.len() + payload.len()) as u32;
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude = crc32(&out);
    out.extend_from_slice(&prelude.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Bytes::from(out)
}

/// A ConverseStream event. Bedrock pads payloads with a `p` field of varying length
/// (against traffic analysis); clients must ignore it, so the mock sends one too.
pub(crate) fn event(event_type: &str, payload: &serde_json::Value) -> Bytes {
    let mut payload = payload.clone();
    if let Some(obj) = payload.as_object_mut() {
        let pad = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        obj.insert(
            "p".to_owned(),
            serde_json::json!(&pad[..(event_type.len() * 3) % pad.len()]),
        );
    }
    let body = serde_json::to_vec(&payload).unwrap_or_default();
    message(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        &body,
    )
}

/// An exception frame, e.g. `throttlingException` / `modelStreamErrorException`.
pub(crate) fn exception(exception_type: &str, message_text: &str) -> Bytes {
    let body =
        serde_json::to_vec(&serde_json::json!({"message": message_text})).unwrap_or_default();
    message(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        &body,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc_check_value() {
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
    }
}
