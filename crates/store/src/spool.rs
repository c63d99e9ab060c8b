//! The spend writer's local spool: every spend row not yet in the database is also in a
//! file on local disk, so neither a database outage longer than memory allows nor a
//! SIGKILL loses it. Replicas adopt the files of replicas that died, a bounded amount at
//! a time.
//!
//! One file per writer, `spend-<pid>-<ms>-<n>.jsonl`, one JSON row per line, held under an
//! exclusive file lock while its process lives; a file whose lock can be taken belongs to
//! nobody and is adopted. Only the spool's own thread (`spooler.rs`) and the flusher's
//! blocking tasks touch a `Spool`; the request path never does.
//!
//! Lines are numbered from the spool's start (not the file's): `[.., done)` are in the
//! database, `[done, memory_end)` are also in the writer's memory (the *window*, at most
//! `max_memory` lines), `[memory_end, total)` are on disk only (memory was full, or they
//! were adopted). Byte offsets of `done` and `memory_end` are kept beside the numbers, so
//! nothing is ever re-read from the file's start: loading, compacting and adopting read
//! from an offset in `CHUNK`-sized reads, never a whole file into memory.
//!
//! How much of the file is done is kept in a side file, `<name>.done` (line count and byte
//! offset, 16 bytes, rewritten after every write to the database), so an adopter skips it.
//! When every line is done the file is truncated; under load that never pauses, the done
//! prefix is compacted away (the rest copied to a new file) once it is `COMPACT_LINES`
//! lines and at least as large as the rest, so a large backlog is not copied again and
//! again. Writes are not fsynced: a killed process loses nothing the kernel has, a power
//! cut may lose the last seconds. Each step is ordered so a kill between two of them can
//! write a row twice, never lose one. A line that does not parse (cut off by a kill,
//! corrupted) is skipped with a warning and counted as done; it never holds up the rest.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::SpendRow;

/// Done lines at the front of the file beyond which it may be compacted.
const COMPACT_LINES: u64 = 10_000;
/// Bytes read from a spool file at a time.
const CHUNK: usize = 64 * 1024;
/// A line longer than this is corrupt (a spend row is well under a kilobyte, its MCP
/// calls included): skipped without being held in memory.
const MAX_LINE: usize = 1 << 20;

/// How much one adoption pass takes over from dead replicas' spools at most; the rest
/// stays in their files (with their markers moved on) for the next pass.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdoptCap {
    pub lines: u64,
    pub bytes: u64,
}

impl Default for AdoptCap {
    fn default() -> Self {
        AdoptCap {
            lines: 100_000,
            bytes: 32 << 20,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Spool {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    /// `<path>.done`: how much of the file is in the database.
    done_file: File,
    /// Number of the file's first line.
    start: u64,
    /// Bytes in the file (to cut off a failed append's partial line).
    len: u64,
    total: u64,
    done: u64,
    memory_end: u64,
    /// Byte offsets of lines `done` and `memory_end` in the file.
    done_offset: u64,
    memory_offset: u64,
    /// End offset of each window line, oldest first: where `done` moves to.
    window_ends: VecDeque<u64>,
    /// Lines of the window that did not parse: done with the next write.
    bad_in_window: u64,
    max_memory: u64,
    /// The writer stopped: nothing more is appended.
    closed: bool,
}

impl Spool {
    /// Creates this process's spool in `dir` (at most `max_memory` lines in the writer's
    /// memory at once) and runs a first adoption pass. Returns the spool and how many rows
    /// it adopted (all on disk only, to be loaded).
    pub(crate) fn open(dir: &Path, max_memory: u64, cap: AdoptCap) -> io::Result<(Spool, u64)> {
        std::fs::create_dir_all(dir)?;
        let (path, file, done_file) = new_file(dir)?;
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            path,
            file,
            done_file,
            start: 0,
            len: 0,
            total: 0,
            done: 0,
            memory_end: 0,
            done_offset: 0,
            memory_offset: 0,
            window_ends: VecDeque::new(),
            bad_in_window: 0,
            max_memory: max_memory.max(1),
            closed: false,
        };
        let adopted = spool.adopt(cap)?;
        Ok((spool, adopted))
    }

    /// One adoption pass: copies up to `cap` of the rows of dead processes' spools into
    /// this one. A file copied to its end is removed; one cut short by the cap keeps the
    /// rest, its marker moved past what was taken. Returns the rows adopted.
    pub(crate) fn adopt(&mut self, cap: AdoptCap) -> io::Result<u64> {
        let mut left = cap;
        let mut adopted = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            if left.lines == 0 || left.bytes == 0 {
                break;
            }
            let path = entry?.path();
            let spool_file = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("spend-") && n.ends_with(".jsonl"));
            if path == self.path || !spool_file {
                continue;
            }
            adopted += self.adopt_file(&path, &mut left)?;
        }
        Ok(adopted)
    }

    fn adopt_file(&mut self, path: &Path, left: &mut AdoptCap) -> io::Result<u64> {
        // Gone already (another replica adopted it first) or unreadable: not ours.
        let Ok(orphan) = OpenOptions::new().read(true).write(true).open(path) else {
            return Ok(0);
        };
        if orphan.try_lock().is_err() {
            return Ok(0); // a live replica's, or being adopted right now
        }
        let marker = done_path(path);
        let (done_lines, done_bytes) = read_done(&marker);
        let from = match done_bytes {
            Some(b) => b,
            None => skip_lines(&orphan, done_lines)?,
        };
        let len = orphan.metadata()?.len();
        let mut out = Vec::with_capacity(2 * CHUNK);
        let (mut pending, mut copied, mut seen, mut bad) = (0u64, 0u64, 0u64, 0u64);
        let mut taken_bytes = 0u64;
        let mut cut_short = false;
        let mut failed = None;
        let stop = scan_lines(&orphan, from, len, |line, end| {
            seen += 1;
            match line.and_then(|b| serde_json::from_slice::<SpendRow>(b).ok().map(|_| b)) {
                Some(b) => {
                    out.extend_from_slice(b);
                    out.push(b'\n');
                    pending += 1;
                }
                None => bad += 1,
            }
            if out.len() >= CHUNK {
                if let Err(e) = self.append_lines(&out, pending) {
                    failed = Some(e);
                    return false;
                }
                copied += pending;
                (pending, taken_bytes) = (0, taken_bytes + out.len() as u64);
                out.clear();
            }
            let more = copied + pending < left.lines
                && taken_bytes + (out.len() as u64) < left.bytes
                && end < len;
            cut_short = !more && end < len;
            more
        })?;
        if let Some(e) = failed {
            return Err(e);
        }
        self.append_lines(&out, pending)?;
        copied += pending;
        taken_bytes += out.len() as u64;
        left.lines = left.lines.saturating_sub(copied);
        left.bytes = left.bytes.saturating_sub(taken_bytes);
        if bad > 0 {
            tracing::warn!(file = %path.display(), lines = bad, "spool lines that do not parse were skipped (cut off by a kill?)");
        }
        if cut_short {
            // Ours first, then the marker: a kill in between adopts those rows twice.
            write_done(&marker, done_lines + seen, stop)?;
            tracing::info!(file = %path.display(), rows = copied, "adopted part of the spend rows of a replica that stopped without writing them; the rest follows");
        } else {
            if stop < len {
                tracing::warn!(file = %path.display(), bytes = len - stop, "a cut-off last spool line was skipped");
            }
            // Emptied before it is unlocked: a replica that opened it meanwhile and gets
            // the lock after us finds nothing to adopt twice.
            orphan.set_len(0)?;
            std::fs::remove_file(path)?;
            let _ = std::fs::remove_file(&marker);
            tracing::info!(file = %path.display(), rows = copied, "adopted the spend rows of a replica that stopped without writing them");
        }
        Ok(copied)
    }

    /// Appends rows; returns how many of them, from the first, joined the memory window
    /// (the others are on disk only until `load`).
    pub(crate) fn append(&mut self, rows: &[SpendRow]) -> io::Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut out = Vec::with_capacity(rows.len() * 256);
        let mut ends = Vec::with_capacity(rows.len());
        for r in rows {
            serde_json::to_writer(&mut out, r).map_err(io::Error::other)?;
            out.push(b'\n');
            ends.push(self.len + out.len() as u64);
        }
        let first = self.append_lines(&out, rows.len() as u64)?;
        let mut accepted = 0;
        for (seq, end) in (first..).zip(ends) {
            // Only the next line after the window joins it, while there is room: the
            // window stays one contiguous run of lines, written in order.
            if seq != self.memory_end || self.memory_end - self.done >= self.max_memory {
                break;
            }
            self.memory_end += 1;
            self.memory_offset = end;
            self.window_ends.push_back(end);
            accepted += 1;
        }
        Ok(accepted)
    }

    /// Appends `n` lines already serialised; returns the first one's number.
    fn append_lines(&mut self, lines: &[u8], n: u64) -> io::Result<u64> {
        if n == 0 {
            return Ok(self.total);
        }
        // One write: a kill mid-way leaves at most one cut line, which adoption skips.
        if let Err(e) = self.file.write_all(lines) {
            // A partial line would shift every later line's number: cut it off.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += lines.len() as u64;
        let first = self.total;
        self.total += n;
        Ok(first)
    }

    /// Lines on disk only (not in memory, not written).
    pub(crate) fn disk_only(&self) -> u64 {
        self.total - self.memory_end
    }

    /// Lines not yet in the database.
    pub(crate) fn unwritten(&self) -> u64 {
        self.total - self.done
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// The first `n` lines of the memory window are in the database. Truncates the file
    /// once every line is; compacts a large done prefix.
    pub(crate) fn written(&mut self, n: u64) -> io::Result<()> {
        let advance =
            (n + std::mem::take(&mut self.bad_in_window)).min(self.memory_end - self.done);
        for _ in 0..advance {
            if let Some(end) = self.window_ends.pop_front() {
                self.done_offset = end;
            }
        }
        self.done += advance;
        if self.done == self.total {
            if self.start != self.total {
                // Marker first: a kill before the truncation replays rows, never skips.
                self.write_marker(0, 0)?;
                self.file.set_len(0)?;
                self.start = self.total;
                (self.len, self.done_offset, self.memory_offset) = (0, 0, 0);
                self.window_ends.clear();
            }
        } else if self.done - self.start >= COMPACT_LINES
            && self.done_offset >= self.len - self.done_offset
        {
            self.compact()?;
        } else {
            self.write_marker(self.done - self.start, self.done_offset)?;
        }
        Ok(())
    }

    fn write_marker(&self, lines: u64, bytes: u64) -> io::Result<()> {
        self.done_file.write_all_at(&marker_bytes(lines, bytes), 0)
    }

    /// Copies the lines not yet done to a new file, a chunk at a time, and drops the old
    /// one. A kill in between leaves both (the rest is then written twice).
    fn compact(&mut self) -> io::Result<()> {
        let (path, mut file, done_file) = new_file(&self.dir)?;
        let mut buf = vec![0u8; CHUNK];
        let mut at = self.done_offset;
        while at < self.len {
            let want = ((self.len - at) as usize).min(CHUNK);
            let got = self.file.read_at(&mut buf[..want], at)?;
            if got == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "spool file shrank",
                ));
            }
            file.write_all(&buf[..got])?;
            at += got as u64;
        }
        let shift = self.done_offset;
        let old = std::mem::replace(&mut self.path, path);
        self.file = file;
        self.done_file = done_file;
        self.len -= shift;
        self.memory_offset -= shift;
        for end in &mut self.window_ends {
            *end -= shift;
        }
        self.done_offset = 0;
        self.start = self.done;
        std::fs::remove_file(&old)?;
        let _ = std::fs::remove_file(done_path(&old));
        Ok(())
    }

    /// Loads up to `max` disk-only lines into the window (as many as it has room for),
    /// reading from where it ends.
    pub(crate) fn load(&mut self, max: usize) -> io::Result<Vec<SpendRow>> {
        let room = self.max_memory - (self.memory_end - self.done);
        let max = max.min(usize::try_from(room).unwrap_or(usize::MAX));
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut rows = Vec::new();
        let mut bad = 0u64;
        let (file, window_ends) = (&self.file, &mut self.window_ends);
        let stop = scan_lines(file, self.memory_offset, self.len, |line, end| {
            match line.and_then(|b| serde_json::from_slice::<SpendRow>(b).ok()) {
                Some(r) => rows.push(r),
                None => bad += 1,
            }
            window_ends.push_back(end);
            rows.len() < max
        })?;
        self.memory_end += rows.len() as u64 + bad;
        self.memory_offset = stop;
        if rows.is_empty() && bad == 0 && self.memory_end < self.total {
            // Lines counted but not in the file (it shrank under us): give them up rather
            // than ask for them forever.
            let lost = self.total - self.memory_end;
            tracing::error!(
                lines = lost,
                "spool lines missing from the file were skipped"
            );
            bad = lost;
            self.memory_end = self.total;
            self.memory_offset = self.len;
            window_ends.extend(std::iter::repeat_n(self.len, lost as usize));
        }
        // Unparseable lines count as done: they can never be written.
        if bad > 0 {
            tracing::warn!(lines = bad, "spool lines that do not parse were skipped");
            self.bad_in_window += bad;
            if rows.is_empty() {
                self.written(0)?;
            }
        }
        Ok(rows)
    }

    /// The writer stopped: removes the file if nothing in it is unwritten (a non-empty one
    /// stays for the next start), and takes no more rows.
    pub(crate) fn close(&mut self) {
        self.closed = true;
        if self.total == self.done {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(done_path(&self.path));
        }
    }
}

/// A new, locked spool file in `dir` and its done marker. It is created and locked under
/// a name adopters ignore, then renamed: no adopter can ever see it unlocked.
fn new_file(dir: &Path) -> io::Result<(PathBuf, File, File)> {
    // Unique among live processes (pid) and within one (a counter).
    static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "spend-{}-{}-{}.jsonl",
        std::process::id(),
        chrono::Utc::now().timestamp_millis(),
        OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let path = dir.join(&name);
    let fresh = dir.join(format!(".{name}.new"));
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .read(true)
        .open(&fresh)?;
    file.try_lock().map_err(io::Error::other)?;
    let done_file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(done_path(&path))?;
    std::fs::rename(&fresh, &path)?;
    Ok((path, file, done_file))
}

fn done_path(spool: &Path) -> PathBuf {
    let mut p = spool.as_os_str().to_owned();
    p.push(".done");
    PathBuf::from(p)
}

fn marker_bytes(lines: u64, bytes: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&lines.to_le_bytes());
    out[8..].copy_from_slice(&bytes.to_le_bytes());
    out
}

fn write_done(path: &Path, lines: u64, bytes: u64) -> io::Result<()> {
    std::fs::write(path, marker_bytes(lines, bytes))
}

/// An orphan's marker: done lines and, when the marker has it, their byte length (an
/// older 8-byte marker has only the count). 0 (replay everything) when missing or torn.
fn read_done(path: &Path) -> (u64, Option<u64>) {
    let Ok(bytes) = std::fs::read(path) else {
        return (0, Some(0));
    };
    let word = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    match (word(0), word(8)) {
        (Some(lines), Some(offset)) => (lines, Some(offset)),
        (Some(lines), None) => (lines, None),
        _ => (0, Some(0)),
    }
}

/// The byte offset just past the first `n` lines.
fn skip_lines(file: &File, n: u64) -> io::Result<u64> {
    if n == 0 {
        return Ok(0);
    }
    let len = file.metadata()?.len();
    let mut seen = 0;
    scan_lines(file, 0, len, |_, _| {
        seen += 1;
        seen < n
    })
}

/// Hands each complete line of `file` in `[from, to)` to `each` (without its newline;
/// `None` for a line over `MAX_LINE`) with the offset just past it, until `each` returns
/// false. Reads `CHUNK` bytes at a time and holds at most one line besides. Returns the
/// offset past the last line handed out: a cut-off tail is never handed out.
fn scan_lines(
    file: &File,
    from: u64,
    to: u64,
    mut each: impl FnMut(Option<&[u8]>, u64) -> bool,
) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut line: Vec<u8> = Vec::new();
    let mut too_long = false;
    let (mut pos, mut consumed) = (from, from);
    while pos < to {
        let want = ((to - pos) as usize).min(CHUNK);
        let got = file.read_at(&mut buf[..want], pos)?;
        if got == 0 {
            break; // shorter than it was said to be
        }
        let chunk = &buf[..got];
        let chunk_start = pos;
        pos += got as u64;
        let mut i = 0;
        while let Some(nl) = chunk[i..].iter().position(|&b| b == b'\n') {
            let piece = &chunk[i..i + nl];
            let end = chunk_start + (i + nl + 1) as u64;
            let go = if too_long || line.len() + piece.len() > MAX_LINE {
                each(None, end)
            } else if line.is_empty() {
                each(Some(piece), end)
            } else {
                line.extend_from_slice(piece);
                each(Some(&line), end)
            };
            (too_long, consumed) = (false, end);
            line.clear();
            if !go {
                return Ok(consumed);
            }
            i += nl + 1;
        }
        let rest = &chunk[i..];
        if too_long || line.len() + rest.len() > MAX_LINE {
            too_long = true;
            line.clear();
        } else {
            line.extend_from_slice(rest);
        }
    }
    Ok(consumed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> (Spool, u64) {
        Spool::open(dir, u64::MAX, AdoptCap::default()).unwrap()
    }

    #[test]
    fn a_done_prefix_under_steady_load_is_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = open(dir.path());
        let mut seq = 0;
        // Never idle: one row stays unwritten after every write.
        assert_eq!(s.append(&[row(0)]).unwrap(), 1);
        for i in 1..=COMPACT_LINES + 5 {
            assert_eq!(s.append(&[row(i)]).unwrap(), 1);
            s.written(1).unwrap();
            seq = i;
        }
        assert_eq!(s.unwritten(), 1);
        let size = std::fs::metadata(&s.path).unwrap().len();
        assert!(size < 5_000, "the file was compacted: {size} bytes");
        // The survivor of a kill now: only the one unwritten row comes back.
        let path = s.path.clone();
        drop(s);
        let (_b, adopted) = open(dir.path());
        assert_eq!(adopted, 1, "row {seq} only");
        assert!(!path.exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 2, "the new spool and its marker only");
    }

    fn row(i: u64) -> SpendRow {
        SpendRow {
            request_id: format!("r{i}"),
            key_hash: "k".into(),
            model: "m".into(),
            deployment: None,
            prompt_tokens: i,
            completion_tokens: 0,
            cost: 0.0,
            latency_ms: 1,
            status: "success".into(),
            mcp_calls: serde_json::Value::Null,
            cache_hit: false,
            created_at: chrono::Utc::now(),
        }
    }

    fn ids(rows: &[SpendRow]) -> Vec<u64> {
        rows.iter().map(|r| r.prompt_tokens).collect()
    }

    #[test]
    fn rows_survive_a_dead_owner_and_are_adopted_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, adopted) = open(dir.path());
        assert_eq!(adopted, 0);
        assert_eq!(a.append(&[row(1), row(2), row(3)]).unwrap(), 3);
        a.written(1).unwrap();
        // A cut-off last line, as a kill in the middle of a write could leave.
        a.file.write_all(b"{\"request_id\":\"r4\",\"key").unwrap();
        // The owner dies: its lock goes with its file handle.
        let path = a.path.clone();
        drop(a);
        let (mut b, adopted) = open(dir.path());
        assert!(!path.exists(), "the orphan file is removed once adopted");
        // Line 1 was written, and the marker says so: only the other two come back.
        assert_eq!(adopted, 2);
        assert_eq!(b.disk_only(), 2);
        let loaded = b.load(10).unwrap();
        assert_eq!(ids(&loaded), [2, 3]);
        b.written(2).unwrap();
        assert_eq!(b.unwritten(), 0);
        assert_eq!(
            std::fs::metadata(&b.path).unwrap().len(),
            0,
            "truncated when all written"
        );
        let (_c, adopted) = open(dir.path());
        assert_eq!(adopted, 0, "a live replica's spool is never adopted");
    }

    #[test]
    fn disk_only_rows_load_in_order_after_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path(), 2, AdoptCap::default()).unwrap();
        // Memory holds r0, r1; the rest wait on disk.
        assert_eq!(s.append(&(0..5).map(row).collect::<Vec<_>>()).unwrap(), 2);
        assert_eq!(s.disk_only(), 3);
        s.written(2).unwrap();
        // The window has room again, but a new row is not next after it: disk only.
        assert_eq!(s.append(&[row(5)]).unwrap(), 0);
        assert_eq!(
            ids(&s.load(10).unwrap()),
            [2, 3],
            "at most the window's size"
        );
        s.written(2).unwrap();
        assert_eq!(ids(&s.load(10).unwrap()), [4, 5]);
        s.written(2).unwrap();
        assert_eq!((s.unwritten(), s.disk_only()), (0, 0));
        assert_eq!(std::fs::metadata(&s.path).unwrap().len(), 0);
        assert_eq!(read_done(&done_path(&s.path)), (0, Some(0)));
        // Numbering goes on after a truncation; the file starts over.
        assert_eq!(s.append(&[row(7)]).unwrap(), 1);
        s.written(1).unwrap();
        assert_eq!(s.append(&[row(8), row(9), row(10)]).unwrap(), 2);
        assert_eq!(ids(&s.load(5).unwrap()), [] as [u64; 0], "window full");
        s.written(2).unwrap();
        assert_eq!(ids(&s.load(5).unwrap()), [10]);
    }

    /// A corrupt line in the middle and a cut-off one at the end of a dead replica's
    /// file: both are skipped (and logged), every other row is adopted, and the
    /// adopter's own loading never stalls on them.
    #[test]
    fn corrupt_and_cut_off_lines_are_skipped_and_hold_nothing_up() {
        let dir = tempfile::tempdir().unwrap();
        let orphan = dir.path().join("spend-1-0-0.jsonl");
        let mut text = Vec::new();
        for i in 0..3 {
            text.extend(serde_json::to_vec(&row(i)).unwrap());
            text.push(b'\n');
        }
        text.extend(b"{not json at all}\n");
        text.extend(vec![b'x'; MAX_LINE + 10]); // an endless line, then its end
        text.push(b'\n');
        text.extend(serde_json::to_vec(&row(3)).unwrap());
        text.push(b'\n');
        text.extend(br#"{"request_id":"r4","key_ha"#);
        std::fs::write(&orphan, &text).unwrap();
        let (mut s, adopted) = open(dir.path());
        assert_eq!(adopted, 4);
        assert!(!orphan.exists());
        assert_eq!(ids(&s.load(100).unwrap()), [0, 1, 2, 3]);
        s.written(4).unwrap();
        assert_eq!((s.unwritten(), s.disk_only()), (0, 0));

        // The same damage in this replica's own file (a disk error, say): loading skips
        // it and goes on with the rows after it.
        let (mut own, _) = Spool::open(dir.path(), 1, AdoptCap::default()).unwrap();
        assert_eq!(own.append(&[row(10)]).unwrap(), 1);
        own.file.write_all(b"garbage\n").unwrap();
        own.len += 8;
        own.total += 1;
        assert_eq!(own.append(&[row(11)]).unwrap(), 0);
        own.written(1).unwrap();
        assert_eq!(ids(&own.load(10).unwrap()), [11], "past the bad line");
        own.written(1).unwrap();
        assert_eq!(own.unwritten(), 0, "the bad line counts as done");
    }

    /// A pass adopts at most its cap; the rest stays in the orphan (marker moved on) for
    /// the next pass, and nothing is adopted twice or lost.
    #[test]
    fn adoption_is_capped_per_pass_and_resumes_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, _) = open(dir.path());
        let rows: Vec<_> = (0..1000).map(row).collect();
        a.append(&rows).unwrap();
        a.written(100).unwrap();
        drop(a);
        let cap = AdoptCap {
            lines: 300,
            bytes: u64::MAX,
        };
        let (mut b, adopted) = Spool::open(dir.path(), u64::MAX, cap).unwrap();
        assert_eq!(adopted, 300);
        assert_eq!(b.adopt(cap).unwrap(), 300);
        assert_eq!(b.adopt(cap).unwrap(), 300);
        assert_eq!(b.adopt(cap).unwrap(), 0, "all taken");
        let loaded = b.load(usize::MAX).unwrap();
        assert_eq!(ids(&loaded), (100..1000).collect::<Vec<_>>());
        // A byte cap works the same way.
        let (mut c, _) = open(dir.path());
        c.append(&rows).unwrap();
        drop(c);
        let by_bytes = AdoptCap {
            lines: u64::MAX,
            bytes: 3 * CHUNK as u64,
        };
        let mut total = 0;
        let mut passes = 0;
        loop {
            let n = b.adopt(by_bytes).unwrap();
            if n == 0 {
                break;
            }
            total += n;
            passes += 1;
        }
        assert_eq!(total, 1000);
        assert!(passes > 1, "{passes} passes");
    }

    /// A marker from before byte offsets were kept (8 bytes, a line count) still works.
    #[test]
    fn an_old_line_count_marker_is_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, _) = open(dir.path());
        a.append(&(0..5).map(row).collect::<Vec<_>>()).unwrap();
        let path = a.path.clone();
        drop(a);
        std::fs::write(done_path(&path), 2u64.to_le_bytes()).unwrap();
        let (mut b, adopted) = open(dir.path());
        assert_eq!(adopted, 3);
        assert_eq!(ids(&b.load(10).unwrap()), [2, 3, 4]);
    }
}
