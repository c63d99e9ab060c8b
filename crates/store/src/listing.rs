//! Read-only listings for operators (the admin UI): spend logs and tool-call audit with
//! filters, one page at a time, and per-minute totals for charts.
//!
//! Pages are keyset-paginated on `(created_at, id)`, newest first: the next page starts
//! strictly after the last row shown, so page 1,000 of a 1,000,000-row table costs what
//! page 1 does (an OFFSET would read and throw away every row before it). Each filter has
//! an index that starts with its column and ends with `(created_at, id)` (migration 3).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::{AuditRow, SpendRow, StoreError};

/// Where a page starts: the `(created_at, id)` of the last row of the previous page.
/// Rendered as `<ms>.<id>` in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at_ms: i64,
    pub id: i64,
}

impl Cursor {
    pub fn parse(s: &str) -> Option<Cursor> {
        let (ms, id) = s.split_once('.')?;
        Some(Cursor {
            created_at_ms: ms.parse().ok()?,
            id: id.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.created_at_ms, self.id)
    }
}

/// Which spend rows by outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusFilter {
    /// Exactly this status (`success`, `error:timeout`, ...).
    Is(String),
    /// Anything but `success` (served by a partial index: errors are few).
    Errors,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpendQuery {
    pub key_hash: Option<String>,
    pub model: Option<String>,
    pub status: Option<StatusFilter>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
    pub after: Option<Cursor>,
    /// At most 500 rows per page.
    pub limit: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditQuery {
    pub key_hash: Option<String>,
    pub server: Option<String>,
    /// Indexed together with `server`.
    pub tool: Option<String>,
    pub outcome: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<Cursor>,
    pub limit: u32,
}

/// One page, newest first; `next` is set when more rows follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<Cursor>,
}

/// Totals of one time bucket of spend rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpendBucket {
    pub start: DateTime<Utc>,
    pub requests: u64,
    pub errors: u64,
    pub cost: f64,
    pub latency_ms_avg: f64,
}

/// The largest page a listing returns.
pub const MAX_PAGE: u32 = 500;

/// Listings over the logs, implemented by both backends.
#[async_trait]
pub trait LogReader: Send + Sync {
    /// Spend rows matching `q`, newest first.
    async fn spend_page(&self, q: &SpendQuery) -> Result<Page<SpendRow>, StoreError>;

    /// Audit rows matching `q`, newest first.
    async fn audit_page(&self, q: &AuditQuery) -> Result<Page<AuditRow>, StoreError>;

    /// Spend since `from` summed per `bucket_secs` (whole minutes, at least one; oldest
    /// first; empty buckets absent). Read from the per-minute rollup the spend writer
    /// keeps beside the rows, so the cost is the number of minutes, not of requests.
    async fn spend_buckets(
        &self,
        from: DateTime<Utc>,
        bucket_secs: u32,
    ) -> Result<Vec<SpendBucket>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            created_at_ms: 1_700_000_000_000,
            id: 42,
        };
        assert_eq!(Cursor::parse(&c.to_string()), Some(c));
        assert_eq!(Cursor::parse("12"), None);
        assert_eq!(Cursor::parse("a.b"), None);
        assert_eq!(Cursor::parse("1.2.3"), None);
    }
}
