//! Key change signals between replicas: a `LISTEN` on the channel that the key table's
//! trigger notifies (migration 5), and on the one spend batches announce their keys' new
//! spend on (migration 7). Only Postgres has them; SQLite serves one process.
//!
//! A spend announcement is text: a header line `gh1 <origin>` (the announcing store, in
//! hex, so a store skips its own), then one `<key hash> <spend>` line per key, at most
//! `PAYLOAD_MAX` bytes per notification (Postgres allows 8000). A payload that does not
//! parse is taken as "something changed": a re-read is always safe.

use sqlx::postgres::{PgListener, PgPool};

use crate::StoreError;
use crate::migrations::{KEY_CHANNEL, SPEND_CHANNEL};

/// Bytes of one spend announcement at most (below Postgres's 8000-byte limit).
const PAYLOAD_MAX: usize = 7_900;
const PAYLOAD_VERSION: &str = "gh1";

/// What the listener saw.
#[derive(Debug, Clone, PartialEq)]
pub enum KeySignal {
    /// Some key row changed (on any replica, this one included): re-read.
    Changed,
    /// The connection dropped and was re-established: notifications sent meanwhile are
    /// lost, so the caller must re-read as if something changed.
    Reconnected,
    /// Another replica's spend batch committed: these keys' spend in the database now
    /// (key hash, spend). Nothing else about them changed.
    Spend(Vec<(String, f64)>),
}

/// Holds one connection of the store's pool for as long as it lives.
#[derive(Debug)]
pub struct KeyChangeListener {
    inner: PgListener,
    /// The store this listener belongs to: its own announcements are skipped.
    origin: u64,
}

impl KeyChangeListener {
    pub(crate) async fn connect(pool: &PgPool, origin: u64) -> Result<Self, StoreError> {
        let mut inner = PgListener::connect_with(pool).await?;
        inner.listen_all([KEY_CHANNEL, SPEND_CHANNEL]).await?;
        Ok(KeyChangeListener { inner, origin })
    }

    /// Waits for the next signal. An error means the listener is broken: drop it and
    /// connect a new one after a pause.
    pub async fn next(&mut self) -> Result<KeySignal, StoreError> {
        loop {
            let Some(n) = self.inner.try_recv().await? else {
                return Ok(KeySignal::Reconnected);
            };
            if let Some(signal) = self.classify(n.channel(), n.payload()) {
                return Ok(signal);
            }
        }
    }

    /// The next notification already received, without waiting.
    pub fn next_buffered(&mut self) -> Option<KeySignal> {
        while let Some(n) = self.inner.next_buffered() {
            if let Some(signal) = self.classify(n.channel(), n.payload()) {
                return Some(signal);
            }
        }
        None
    }

    /// `None` for this store's own announcement.
    fn classify(&self, channel: &str, payload: &str) -> Option<KeySignal> {
        if channel != SPEND_CHANNEL {
            return Some(KeySignal::Changed);
        }
        match parse_spend(payload) {
            Some((origin, _)) if origin == self.origin => None,
            Some((_, spent)) => Some(KeySignal::Spend(spent)),
            None => Some(KeySignal::Changed),
        }
    }
}

/// The announcements of one spend batch from store `origin`.
pub(crate) fn spend_payloads(origin: u64, spent: &[(&str, f64)]) -> Vec<String> {
    let header = format!("{PAYLOAD_VERSION} {origin:x}\n");
    let mut out = Vec::new();
    let mut payload = header.clone();
    for (hash, spend) in spent {
        // `{}` of an f64 is its shortest exact form: parsed back, it is the same number.
        let line = format!("{hash} {spend}\n");
        if payload.len() + line.len() > PAYLOAD_MAX && payload.len() > header.len() {
            out.push(std::mem::replace(&mut payload, header.clone()));
        }
        payload.push_str(&line);
    }
    if payload.len() > header.len() {
        out.push(payload);
    }
    out
}

/// The origin and entries of a spend announcement; `None` if it is not one.
fn parse_spend(payload: &str) -> Option<(u64, Vec<(String, f64)>)> {
    let mut lines = payload.lines();
    let (version, origin) = lines.next()?.split_once(' ')?;
    if version != PAYLOAD_VERSION {
        return None;
    }
    let origin = u64::from_str_radix(origin, 16).ok()?;
    let mut spent = Vec::new();
    for line in lines {
        let (hash, spend) = line.split_once(' ')?;
        let spend: f64 = spend.parse().ok()?;
        if hash.is_empty() || !spend.is_finite() {
            return None;
        }
        spent.push((hash.to_owned(), spend));
    }
    Some((origin, spent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_round_trip_and_split_below_the_limit() {
        let hashes: Vec<String> = (0..300).map(|i| format!("{i:064x}")).collect();
        let spent: Vec<(&str, f64)> = hashes
            .iter()
            .enumerate()
            .map(|(i, h)| (h.as_str(), 0.1 * i as f64 + 1e-12))
            .collect();
        let payloads = spend_payloads(0xabc, &spent);
        assert!(payloads.len() > 1);
        let mut back = Vec::new();
        for p in &payloads {
            assert!(p.len() <= PAYLOAD_MAX, "{}", p.len());
            let (origin, entries) = parse_spend(p).unwrap();
            assert_eq!(origin, 0xabc);
            back.extend(entries);
        }
        let want: Vec<(String, f64)> = spent.iter().map(|(h, s)| (h.to_string(), *s)).collect();
        assert_eq!(back, want, "exact values, in order");
        assert!(spend_payloads(1, &[]).is_empty());
    }

    #[test]
    fn anything_else_is_not_an_announcement() {
        for bad in [
            "",
            "gh1",
            "gh2 1\nabc 1",
            "gh1 zz\nabc 1",
            "gh1 1\nabc",
            "gh1 1\nabc NaN",
            "gh1 1\nabc inf",
            "gh1 1\n 1",
        ] {
            assert_eq!(parse_spend(bad), None, "{bad:?}");
        }
        assert_eq!(parse_spend("gh1 ff\n"), Some((255, vec![])));
    }
}
