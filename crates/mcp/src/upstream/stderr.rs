//! Draining a stdio server's stderr into the log.
//!
//! The pipe must be read to the end whatever comes through it: a server blocked on a full
//! stderr pipe stops answering. So invalid UTF-8 is logged lossily (not an error that ends
//! the drain) and a line without end is cut at [`MAX_LINE`] bytes (not buffered whole).

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Longest line logged; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 8 * 1024;

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes.
#[derive(Debug, Default)]
pub struct LineBuffer {
    line: Vec<u8>,
    /// The current line went past the limit: drop bytes until its newline.
    skipping: bool,
}

/// A complete (or cut) line.
#[derive(Debug, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    pub truncated: bool,
}

impl LineBuffer {
    /// Feeds `chunk`, calling `emit` for each line finished in it.
    pub fn feed(&mut self, mut chunk: &[u8], emit: &mut impl FnMut(Line)) {
        while !chunk.is_empty() {
            let newline = chunk.iter().position(|&b| b == b'\n');
            let (part, rest) = match newline {
                Some(i) => (&chunk[..i], &chunk[i + 1..]),
                None => (chunk, &[][..]),
            };
            if !self.skipping {
                let room = MAX_LINE - self.line.len();
                self.line.extend_from_slice(&part[..part.len().min(room)]);
                if part.len() > room {
                    emit(self.take(true));
                    self.skipping = true;
                }
            }
            if newline.is_some() {
                if self.skipping {
                    self.skipping = false;
                } else {
                    emit(self.take(false));
                }
            }
            chunk = rest;
        }
    }

    /// The unterminated last line, at end of stream.
    pub fn finish(&mut self) -> Option<Line> {
        (!self.line.is_empty() && !self.skipping).then(|| self.take(false))
    }

    fn take(&mut self, truncated: bool) -> Line {
        let text = String::from_utf8_lossy(&self.line)
            .trim_end_matches('\r')
            .to_owned();
        self.line.clear();
        Line { text, truncated }
    }
}

/// Reads `stderr` to its end, logging each line under `gatehouse_mcp::stderr`.
pub async fn drain(server: String, stderr: impl AsyncRead + Unpin) {
    let mut reader = BufReader::new(stderr);
    let mut lines = LineBuffer::default();
    let log = &mut |l: Line| {
        if l.truncated {
            tracing::info!(target: "gatehouse_mcp::stderr", server = %server, truncated = true, "{}", l.text);
        } else {
            tracing::info!(target: "gatehouse_mcp::stderr", server = %server, "{}", l.text);
        }
    };
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(chunk) => chunk,
        };
        let n = chunk.len();
        lines.feed(chunk, log);
        reader.consume(n);
    }
    if let Some(last) = lines.finish() {
        log(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Line> {
        let mut out = Vec::new();
        let mut b = LineBuffer::default();
        for c in chunks {
            b.feed(c, &mut |l| out.push(l));
        }
        out.extend(b.finish());
        out
    }

    fn line(text: &str, truncated: bool) -> Line {
        Line {
            text: text.into(),
            truncated,
        }
    }

    #[test]
    fn lines_across_chunks_and_invalid_utf8() {
        assert_eq!(
            split(&[b"one\r\ntw", b"o\n\xff\xfebad\nlast"]),
            vec![
                line("one", false),
                line("two", false),
                line("\u{fffd}\u{fffd}bad", false),
                line("last", false)
            ]
        );
    }

    #[test]
    fn endless_lines_are_cut_and_the_next_line_is_whole() {
        let long = vec![b'x'; MAX_LINE * 3 + 5];
        let lines = split(&[&long[..MAX_LINE + 1], &long[MAX_LINE + 1..], b"\nnext\n"]);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].truncated && lines[0].text.len() == MAX_LINE);
        assert_eq!(lines[1], line("next", false));
        // A line of exactly MAX_LINE bytes is not cut.
        let exact = vec![b'y'; MAX_LINE];
        let lines = split(&[&exact, b"\n"]);
        assert_eq!(lines, vec![line(&"y".repeat(MAX_LINE), false)]);
    }

    #[tokio::test]
    async fn drain_reads_to_the_end() {
        let (mut w, r) = tokio::io::duplex(64);
        let task = tokio::spawn(drain("t".into(), r));
        use tokio::io::AsyncWriteExt;
        // 1 MiB without a newline, then invalid UTF-8: the writer is never blocked.
        w.write_all(&vec![b'z'; 1 << 20]).await.unwrap();
        w.write_all(b"\xff\n").await.unwrap();
        drop(w);
        tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .unwrap()
            .unwrap();
    }
}
