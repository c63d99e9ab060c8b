//! AWS event-stream binary framing (`application/vnd.amazon.eventstream`), as Bedrock's
//! `ConverseStream` sends it. Each message:
//!
//! ```text
//! total_len: u32 BE | headers_len: u32 BE | prelude_crc: u32 BE (CRC-32 of the 8 bytes before)
//! headers (headers_len bytes) | payload | message_crc: u32 BE (CRC-32 of everything before)
//! ```
//!
//! A header is `name_len: u8, name, type: u8, value`; Bedrock uses string values
//! (`:event-type`, `:content-type`, `:message-type`, `:exception-type`), other types are
//! decoded to skip them correctly. [`Decoder`] is incremental: feed network chunks in any
//! split; checksums are verified and a mismatch is an error (the stream is corrupt).

use crc32fast::hash as crc32;

/// Prelude (12) + message CRC (4).
const OVERHEAD: usize = 16;
/// Refuse absurd frames rather than buffering without bound (AWS caps messages at 16 MiB).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventStreamError {
    #[error("event-stream prelude checksum mismatch")]
    PreludeCrc,
    #[error("event-stream message checksum mismatch")]
    MessageCrc,
    #[error("event-stream message length {0} is invalid")]
    Length(usize),
    #[error("event-stream header is malformed: {0}")]
    Header(&'static str),
    #[error("event-stream ended in the middle of a message ({0} bytes left over)")]
    Truncated(usize),
}

/// A header value (string and bytes kept; the rest only as far as needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    String(String),
    Bytes(Vec<u8>),
    Bool(bool),
    Int(i64),
    Other,
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// A string header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Incremental decoder; see the module docs.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; returns the messages it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Message>, EventStreamError> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        while self.buf.len() - start >= 12 {
            let frame = &self.buf[start..];
            let total = be32(&frame[0..4]) as usize;
            let headers_len = be32(&frame[4..8]) as usize;
            if crc32(&frame[0..8]) != be32(&frame[8..12]) {
                return Err(EventStreamError::PreludeCrc);
            }
            if total < OVERHEAD + headers_len || total > MAX_MESSAGE {
                return Err(EventStreamError::Length(total));
            }
            if frame.len() < total {
                break;
            }
            if crc32(&frame[..total - 4]) != be32(&frame[total - 4..total]) {
                return Err(EventStreamError::MessageCrc);
            }
            let headers = parse_headers(&frame[12..12 + headers_len])?;
            let payload = frame[12 + headers_len..total - 4].to_vec();
            out.push(Message { headers, payload });
            start += total;
        }
        self.buf.drain(..start);
        Ok(out)
    }

    /// Call at end of stream: an incomplete trailing message is an error.
    pub fn finish(&self) -> Result<(), EventStreamError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(EventStreamError::Truncated(self.buf.len()))
        }
    }
}

fn parse_headers(mut bytes: &[u8]) -> Result<Vec<(String, HeaderValue)>, EventStreamError> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], EventStreamError> {
        if bytes.len() < n {
            return Err(EventStreamError::Header("value runs past the headers"));
        }
        let (head, rest) = bytes.split_at(n);
        *bytes = rest;
        Ok(head)
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let name_len = usize::from(take(&mut bytes, 1)?[0]);
        let name = String::from_utf8(take(&mut bytes, name_len)?.to_vec())
            .map_err(|_| EventStreamError::Header("name is not UTF-8"))?;
        let kind = take(&mut bytes, 1)?[0];
        let value = match kind {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Int(i64::from(take(&mut bytes, 1)?[0] as i8)),
            3 => {
                let b = take(&mut bytes, 2)?;
                HeaderValue::Int(i64::from(i16::from_be_bytes([b[0], b[1]])))
            }
            4 => HeaderValue::Int(i64::from(be32(take(&mut bytes, 4)?) as i32)),
            5 | 8 => {
                let b = take(&mut bytes, 8)?;
                let mut arr = [0u8; 8];
                arr.copy_from_slice(b);
                HeaderValue::Int(i64::from_be_bytes(arr))
            }
            6 | 7 => {
                let len_bytes = take(&mut bytes, 2)?;
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                let raw = take(&mut bytes, len)?.to_vec();
                if kind == 7 {
                    HeaderValue::String(
                        String::from_utf8(raw)
                            .map_err(|_| EventStreamError::Header("string is not UTF-8"))?,
                    )
                } else {
                    HeaderValue::Bytes(raw)
                }
            }
            9 => {
                take(&mut bytes, 16)?;
                HeaderValue::Other
            }
            _ => return Err(EventStreamError::Header("unknown value type")),
        };
        out.push((name, value));
    }
    Ok(out)
}

/// Encodes one message with string headers (for tests and fixtures).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = u32::try_from(OVERHEAD + h.len() + payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(total as usize);
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&u32::try_from(h.len()).unwrap_or(u32::MAX).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_in_any_split() {
        let mut wire = encode(
            &[(":event-type", "messageStart"), (":message-type", "event")],
            br#"{"role":"assistant"}"#,
        );
        wire.extend(encode(&[(":event-type", "messageStop")], b"{}"));
        for split in 1..wire.len() {
            let mut d = Decoder::new();
            let mut msgs = Vec::new();
            for piece in wire.chunks(split) {
                msgs.extend(d.push(piece).unwrap());
            }
            d.finish().unwrap();
            assert_eq!(msgs.len(), 2);
            assert_eq!(msgs[0].header(":event-type"), Some("messageStart"));
            assert_eq!(msgs[0].payload, br#"{"role":"assistant"}"#);
            assert_eq!(msgs[1].header(":event-type"), Some("messageStop"));
        }
    }

    #[test]
    fn corruption_is_detected() {
        let wire = encode(&[(":event-type", "x")], b"{}");
        let mut bad = wire.clone();
        let last = bad.len() - 6;
        bad[last] ^= 1;
        assert_eq!(Decoder::new().push(&bad), Err(EventStreamError::MessageCrc));
        let mut bad = wire.clone();
        bad[2] ^= 1;
        assert_eq!(Decoder::new().push(&bad), Err(EventStreamError::PreludeCrc));
        let mut d = Decoder::new();
        assert!(d.push(&wire[..wire.len() - 1]).unwrap().is_empty());
        assert_eq!(d.finish(), Err(EventStreamError::Truncated(wire.len() - 1)));
    }
}
