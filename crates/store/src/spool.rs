//! The spend writer's local spool: every spend row not yet in the database is also in a
//! file on local disk, so neither a database outage longer than memory allows nor a
//! SIGKILL loses it. A replica starting later adopts the files of replicas that died.
//!
//! One file per writer, `spend-<pid>-<ms>-<n>.jsonl`, one JSON row per line, held under an
//! exclusive file lock while its process lives; a file whose lock can be taken belongs to
//! nobody and is adopted. A row is appended when it is logged, before it is queued, so a
//! row is on disk from the moment its request is over. Lines are numbered from the
//! spool's start (not the file's): `[.., done)` are in the database, `[done, memory_end)`
//! are also in the writer's memory, `[memory_end, total)` are on disk only (the queue or
//! memory was full, or they were adopted). How many of the file's lines are done is kept
//! in a side file, `<name>.done` (8 bytes, rewritten after every write to the database),
//! so an adopter skips them. When every line is done the file is truncated; under load
//! that never pauses, the done prefix is compacted away every `COMPACT_LINES` lines (the
//! rest is copied to a new file). Writes are not fsynced: a killed process loses nothing
//! (the kernel has the data), a power cut may lose the last seconds. Each step is
//! ordered so a kill between two of them can write a row twice, never lose one.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Done lines at the front of the file beyond which it is compacted.
const COMPACT_LINES: u64 = 10_000;

use crate::SpendRow;

#[derive(Debug)]
pub(crate) struct Spool {
    path: PathBuf,
    file: File,
    /// `<path>.done`: how many of the file's lines are in the database.
    done_file: File,
    /// Number of the file's first line.
    start: u64,
    /// Bytes in the file (to cut off a failed append's partial line).
    len: u64,
    total: u64,
    done: u64,
    memory_end: u64,
    /// Lines of the memory window that did not parse: done with the next write.
    bad_in_window: u64,
}

impl Spool {
    /// Creates this process's spool in `dir` and adopts every unlocked spool there.
    /// Returns the spool and how many rows it adopted (all on disk only, to be loaded).
    pub(crate) fn open(dir: &Path) -> io::Result<(Spool, u64)> {
        std::fs::create_dir_all(dir)?;
        let (path, file, done_file) = new_file(dir)?;
        let mut spool = Spool {
            path,
            file,
            done_file,
            start: 0,
            len: 0,
            total: 0,
            done: 0,
            memory_end: 0,
            bad_in_window: 0,
        };
        let adopted = spool.adopt(dir)?;
        Ok((spool, adopted))
    }

    /// Copies the rows of dead processes' spools into this one, then removes those files.
    fn adopt(&mut self, dir: &Path) -> io::Result<u64> {
        let mut adopted = 0;
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let ours = path == self.path;
            let spool_file = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("spend-") && n.ends_with(".jsonl"));
            if ours || !spool_file {
                continue;
            }
            // Gone already (another replica adopted it first) or unreadable: not ours.
            let Ok(orphan) = OpenOptions::new().read(true).write(true).open(&path) else {
                continue;
            };
            if orphan.try_lock().is_err() {
                continue; // a live replica's, or being adopted right now
            }
            let done_path = done_path(&path);
            let skip = read_done(&done_path);
            let (rows, bad) = read_rows(&orphan, skip, usize::MAX)?;
            if bad > 0 {
                tracing::warn!(file = %path.display(), lines = bad, "spool lines that do not parse were skipped (cut off by a kill?)");
            }
            self.append(&rows)?;
            adopted += rows.len() as u64;
            // Emptied before it is unlocked: a replica that opened it meanwhile and gets
            // the lock after us finds nothing to adopt twice.
            orphan.set_len(0)?;
            std::fs::remove_file(&path)?;
            let _ = std::fs::remove_file(&done_path);
            tracing::info!(file = %path.display(), rows = rows.len(), "adopted the spend rows of a replica that stopped without writing them");
        }
        Ok(adopted)
    }

    /// Appends rows (disk only until `accept` moves one into the memory window).
    pub(crate) fn append(&mut self, rows: &[SpendRow]) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(rows.len() * 256);
        for r in rows {
            out.extend_from_slice(&line(r)?);
        }
        self.append_lines(&out, rows.len() as u64).map(|_| ())
    }

    /// Appends `n` lines already serialised (`line`); returns the first one's number.
    pub(crate) fn append_lines(&mut self, lines: &[u8], n: u64) -> io::Result<u64> {
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

    /// Line `seq` reached the writer's memory: it joins the window if it is the next
    /// line after it (anything else stays on disk only, to be loaded in order).
    pub(crate) fn accept(&mut self, seq: u64) -> bool {
        if seq == self.memory_end && seq < self.total {
            self.memory_end += 1;
            true
        } else {
            false
        }
    }

    /// Lines on disk only (not in memory, not written).
    pub(crate) fn disk_only(&self) -> u64 {
        self.total - self.memory_end
    }

    /// Lines not yet in the database.
    pub(crate) fn unwritten(&self) -> u64 {
        self.total - self.done
    }

    /// The first `n` lines of the memory window are in the database. Truncates the file
    /// once every line is.
    pub(crate) fn written(&mut self, n: u64) -> io::Result<()> {
        self.done = (self.done + n + std::mem::take(&mut self.bad_in_window)).min(self.memory_end);
        if self.done == self.total {
            if self.start != self.total {
                // Marker first: a kill before the truncation replays rows, never skips.
                self.done_file.write_all_at(&0u64.to_le_bytes(), 0)?;
                self.file.set_len(0)?;
                self.len = 0;
                self.start = self.total;
            }
        } else if self.done - self.start >= COMPACT_LINES {
            self.compact()?;
        } else {
            self.done_file
                .write_all_at(&(self.done - self.start).to_le_bytes(), 0)?;
        }
        Ok(())
    }

    /// Copies the lines not yet done to a new file and drops the old one. A kill in
    /// between leaves both (the rest is then written twice).
    fn compact(&mut self) -> io::Result<()> {
        let mut reader = BufReader::new(self.file.try_clone()?);
        std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(0))?;
        let mut skipped = 0;
        let mut scratch = Vec::new();
        while skipped < self.done - self.start {
            scratch.clear();
            if reader.read_until(b'\n', &mut scratch)? == 0 {
                break;
            }
            skipped += 1;
        }
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let (path, mut file, done_file) = new_file(dir)?;
        file.write_all(&rest)?;
        let old = std::mem::replace(&mut self.path, path);
        self.file = file;
        self.done_file = done_file;
        self.len = rest.len() as u64;
        self.start = self.done;
        std::fs::remove_file(&old)?;
        let _ = std::fs::remove_file(done_path(&old));
        Ok(())
    }

    /// Loads up to `max` disk-only lines into memory (called when memory is empty).
    pub(crate) fn load(&mut self, max: usize) -> io::Result<Vec<SpendRow>> {
        let (rows, bad) = read_rows(&self.file, self.memory_end - self.start, max)?;
        // Unparseable lines count as done: they can never be written.
        self.memory_end += rows.len() as u64 + bad;
        if bad > 0 {
            tracing::warn!(lines = bad, "spool lines that do not parse were skipped");
            self.bad_in_window += bad;
            if rows.is_empty() {
                self.written(0)?;
            }
        }
        Ok(rows)
    }

    /// Removes the (empty) file at a clean stop; a non-empty one stays for the next start.
    pub(crate) fn close(self) {
        if self.total == self.done {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(done_path(&self.path));
        }
    }
}

/// A new, locked spool file in `dir` and its done marker.
fn new_file(dir: &Path) -> io::Result<(PathBuf, File, File)> {
    // Unique among live processes (pid) and within one (a counter).
    static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = format!(
        "spend-{}-{}-{}.jsonl",
        std::process::id(),
        chrono::Utc::now().timestamp_millis(),
        OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let path = dir.join(name);
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .read(true)
        .open(&path)?;
    file.try_lock().map_err(io::Error::other)?;
    let done_file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(done_path(&path))?;
    Ok((path, file, done_file))
}

fn done_path(spool: &Path) -> PathBuf {
    let mut p = spool.as_os_str().to_owned();
    p.push(".done");
    PathBuf::from(p)
}

/// The done count of an orphan's marker; 0 (replay everything) when missing or torn.
fn read_done(path: &Path) -> u64 {
    match std::fs::read(path) {
        Ok(bytes) => bytes
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, u64::from_le_bytes),
        Err(_) => 0,
    }
}

/// One row as a spool line.
pub(crate) fn line(row: &SpendRow) -> io::Result<Vec<u8>> {
    let mut out = serde_json::to_vec(row).map_err(io::Error::other)?;
    out.push(b'\n');
    Ok(out)
}

/// Rows from the file's line `skip` on, at most `max`; also how many lines did not parse.
fn read_rows(file: &File, skip: u64, max: usize) -> io::Result<(Vec<SpendRow>, u64)> {
    let mut reader = BufReader::new(file.try_clone()?);
    std::io::Seek::seek(&mut reader, std::io::SeekFrom::Start(0))?;
    let mut rows = Vec::new();
    let mut bad = 0;
    let mut line = String::new();
    let mut index = 0u64;
    while rows.len() < max {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        index += 1;
        if index <= skip {
            continue;
        }
        match serde_json::from_str::<SpendRow>(line.trim_end()) {
            Ok(r) => rows.push(r),
            Err(_) => bad += 1,
        }
    }
    Ok((rows, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_done_prefix_under_steady_load_is_compacted_away() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path()).unwrap();
        let mut seq = 0;
        // Never idle: one row stays unwritten after every write.
        s.append(&[row(0)]).unwrap();
        assert!(s.accept(0));
        for i in 1..=COMPACT_LINES + 5 {
            s.append(&[row(i)]).unwrap();
            assert!(s.accept(i));
            s.written(1).unwrap();
            seq = i;
        }
        assert_eq!(s.unwritten(), 1);
        let size = std::fs::metadata(&s.path).unwrap().len();
        assert!(size < 5_000, "the file was compacted: {size} bytes");
        // The survivor of a kill now: only the one unwritten row comes back.
        let path = s.path.clone();
        drop(s);
        let (_b, adopted) = Spool::open(dir.path()).unwrap();
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

    #[test]
    fn rows_survive_a_dead_owner_and_are_adopted_once() {
        let dir = tempfile::tempdir().unwrap();
        let (mut a, adopted) = Spool::open(dir.path()).unwrap();
        assert_eq!(adopted, 0);
        a.append(&[row(1), row(2), row(3)]).unwrap();
        assert!(a.accept(0) && a.accept(1) && a.accept(2));
        a.written(1).unwrap();
        // A cut-off last line, as a kill in the middle of a write could leave.
        a.file.write_all(b"{\"request_id\":\"r4\",\"key").unwrap();
        // The owner dies: its lock goes with its file handle.
        let path = a.path.clone();
        drop(a);
        let (mut b, adopted) = Spool::open(dir.path()).unwrap();
        assert!(!path.exists(), "the orphan file is removed once adopted");
        // Line 1 was written, and the marker says so: only the other two come back.
        assert_eq!(adopted, 2);
        assert_eq!(b.disk_only(), 2);
        let loaded = b.load(10).unwrap();
        let ids: Vec<_> = loaded.iter().map(|r| r.request_id.as_str()).collect();
        assert_eq!(ids, ["r2", "r3"]);
        b.written(2).unwrap();
        assert_eq!(b.unwritten(), 0);
        assert_eq!(
            std::fs::metadata(&b.path).unwrap().len(),
            0,
            "truncated when all written"
        );
        let (_c, adopted) = Spool::open(dir.path()).unwrap();
        assert_eq!(adopted, 0, "a live replica's spool is never adopted");
    }

    #[test]
    fn disk_only_rows_load_in_order_after_memory() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Spool::open(dir.path()).unwrap();
        s.append(&(0..5).map(row).collect::<Vec<_>>()).unwrap();
        // Memory holds r0, r1; r3 arrives out of turn (r2 never reached the writer).
        assert!(s.accept(0) && s.accept(1));
        assert!(!s.accept(3));
        assert_eq!(s.disk_only(), 3);
        s.written(2).unwrap();
        let next = s.load(2).unwrap();
        assert_eq!(
            next.iter().map(|r| r.prompt_tokens).collect::<Vec<_>>(),
            [2, 3]
        );
        s.written(2).unwrap();
        let last = s.load(2).unwrap();
        assert_eq!(last.len(), 1);
        s.written(1).unwrap();
        assert_eq!((s.unwritten(), s.disk_only()), (0, 0));
        assert_eq!(std::fs::metadata(&s.path).unwrap().len(), 0);
        assert_eq!(read_done(&done_path(&s.path)), 0);
        // Numbering goes on after a truncation; the file starts over.
        s.append(&[row(7)]).unwrap();
        assert!(s.accept(5));
        s.written(1).unwrap();
        s.append(&[row(8), row(9)]).unwrap();
        assert!(!s.accept(7), "line 6 comes first");
        assert_eq!(
            s.load(5)
                .unwrap()
                .iter()
                .map(|r| r.prompt_tokens)
                .collect::<Vec<_>>(),
            [8, 9]
        );
    }
}
