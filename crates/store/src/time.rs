//! Timestamps and durations. The database stores instants as BIGINT Unix milliseconds so
//! the same SQL and the same comparisons work on SQLite and Postgres.

use chrono::{DateTime, Duration, Months, NaiveDate, Utc};

use crate::StoreError;

pub(crate) fn to_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(crate) fn opt_to_ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(to_ms)
}

pub(crate) fn opt_from_ms(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(from_ms)
}

/// A LiteLLM `budget_duration` ("30s", "15m", "24h", "7d", "2w", "1mo") added to `from`.
/// Months are calendar months, as in LiteLLM.
pub fn add_budget_duration(from: DateTime<Utc>, spec: &str) -> Result<DateTime<Utc>, StoreError> {
    let spec = spec.trim();
    let bad = || {
        StoreError::invalid(
            "budget_duration",
            format!("{spec:?} is not like 30s, 15m, 24h, 7d, 2w or 1mo"),
        )
    };
    let split = spec.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = spec.split_at(split);
    let n: i64 = num.parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    let out = match unit {
        "s" => from.checked_add_signed(Duration::try_seconds(n).ok_or_else(bad)?),
        "m" => from.checked_add_signed(Duration::try_minutes(n).ok_or_else(bad)?),
        "h" => from.checked_add_signed(Duration::try_hours(n).ok_or_else(bad)?),
        "d" => from.checked_add_signed(Duration::try_days(n).ok_or_else(bad)?),
        "w" => from.checked_add_signed(Duration::try_weeks(n).ok_or_else(bad)?),
        "mo" => from.checked_add_months(Months::new(u32::try_from(n).map_err(|_| bad())?)),
        _ => None,
    };
    out.ok_or_else(bad)
}

/// An `expires` value from config or an import: RFC 3339 (`2026-01-31T00:00:00Z`), a naive
/// `YYYY-MM-DDTHH:MM:SS[.f]` (taken as UTC, as LiteLLM writes it) or a date (midnight UTC).
pub fn parse_instant(field: &str, value: &str) -> Result<DateTime<Utc>, StoreError> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    // psql's text form: `2026-01-31 00:00:00.123+00`.
    if let Ok(t) = DateTime::parse_from_str(v, "%Y-%m-%d %H:%M:%S%.f%#z") {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(StoreError::invalid(
        field,
        format!("{v:?} is not an RFC 3339 date-time or YYYY-MM-DD"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_follow_litellm_units() {
        let t0 = parse_instant("t", "2026-01-31T00:00:00Z").unwrap();
        assert_eq!(
            add_budget_duration(t0, "30s").unwrap() - t0,
            Duration::seconds(30)
        );
        assert_eq!(
            add_budget_duration(t0, "2h").unwrap() - t0,
            Duration::hours(2)
        );
        assert_eq!(
            add_budget_duration(t0, "7d").unwrap() - t0,
            Duration::days(7)
        );
        // Calendar month from Jan 31 clamps to the end of February.
        assert_eq!(
            add_budget_duration(t0, "1mo").unwrap(),
            parse_instant("t", "2026-02-28").unwrap()
        );
        assert!(add_budget_duration(t0, "10").is_err());
        assert!(add_budget_duration(t0, "0d").is_err());
        assert!(add_budget_duration(t0, "3y").is_err());
    }

    #[test]
    fn instants_accept_common_forms() {
        let a = parse_instant("e", "2026-03-01T12:00:00+01:00").unwrap();
        let b = parse_instant("e", "2026-03-01T11:00:00").unwrap();
        assert_eq!(a, b);
        assert!(parse_instant("e", "2026-03-01").is_ok());
        assert_eq!(parse_instant("e", "2026-03-01 11:00:00.000+00").unwrap(), b);
        assert!(parse_instant("e", "tomorrow").is_err());
    }
}
