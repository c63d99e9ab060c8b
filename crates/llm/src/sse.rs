//! Incremental server-sent-events parser (WHATWG event-stream rules), vendor-neutral:
//! feed it byte chunks exactly as they arrive from the network, in any split, and it
//! yields complete events.
//!
//! Handles `\n`, `\r\n` and lone `\r` line ends (also split across chunks), multi-line
//! `data:` (joined with `\n`), comments (`:` lines), a leading BOM, and the optional
//! single space after the colon. `id` is kept; `retry` and unknown fields are ignored.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `None` means the default type (`message`).
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    started: bool,
}

impl Parser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; returns the events it completed (possibly none).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(chunk);
        if !self.started {
            const BOM: &[u8] = b"\xEF\xBB\xBF";
            if self.buf.len() < BOM.len() && BOM.starts_with(&self.buf) {
                return Vec::new();
            }
            self.started = true;
            if self.buf.starts_with(BOM) {
                self.buf.drain(..BOM.len());
            }
        }
        // Work on the buffer moved out of `self` so lines can be borrowed while the
        // field state is updated, without copying each line.
        let buf = std::mem::take(&mut self.buf);
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < buf.len() {
            match buf[i] {
                b'\n' => {
                    self.process_line(&buf[start..i], &mut events);
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    // A `\r` at the end of the buffer may be the first half of `\r\n`.
                    if i + 1 == buf.len() {
                        break;
                    }
                    self.process_line(&buf[start..i], &mut events);
                    i += if buf[i + 1] == b'\n' { 2 } else { 1 };
                    start = i;
                }
                _ => i += 1,
            }
        }
        self.buf = buf;
        self.buf.drain(..start);
        events
    }

    /// Call at end of stream: dispatches a final event that lacked its blank line.
    pub fn finish(&mut self) -> Option<Event> {
        let rest = std::mem::take(&mut self.buf);
        let mut events = Vec::new();
        if !rest.is_empty() {
            let end = rest.len() - usize::from(rest.ends_with(b"\r"));
            self.process_line(&rest[..end], &mut events);
        }
        self.dispatch(&mut events);
        events.pop()
    }

    fn process_line(&mut self, line: &[u8], events: &mut Vec<Event>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(p) => {
                let v = &line[p + 1..];
                (&line[..p], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = Some(value.into_owned()),
            b"id" if !value.contains('\0') => self.id = Some(value.into_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<Event>) {
        let event = self.event.take();
        if !self.has_data {
            // Per spec an event without data is discarded (its type resets too).
            return;
        }
        self.has_data = false;
        events.push(Event {
            event: event.filter(|e| !e.is_empty()),
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
        });
    }
}

/// The terminator OpenAI-dialect streams end with.
pub const DONE: &[u8] = b"data: [DONE]\n\n";

/// Appends one event in wire form. Multi-line `data` is split into several `data:` lines
/// (compact JSON has none, so the common case is a single line).
pub fn encode(event: Option<&str>, data: &str, out: &mut Vec<u8>) {
    if let Some(name) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix('\r').unwrap_or(line).as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}
