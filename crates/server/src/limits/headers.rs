//! LiteLLM's rate-limit response headers.
//!
//! LiteLLM sends the OpenAI-style `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`
//! for a key with limits, and its v3 limiter adds `x-ratelimit-api_key-{remaining,limit}-*`
//! copies; clients and dashboards read either, so both are written. Resets are whole
//! seconds until one more request (or token) fits. A refusal adds `retry-after`.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{Quota, RateStatus, Refusal};

struct Names {
    limit: HeaderName,
    remaining: HeaderName,
    reset: HeaderName,
    key_limit: HeaderName,
    key_remaining: HeaderName,
}

const REQUESTS: Names = Names {
    limit: HeaderName::from_static("x-ratelimit-limit-requests"),
    remaining: HeaderName::from_static("x-ratelimit-remaining-requests"),
    reset: HeaderName::from_static("x-ratelimit-reset-requests"),
    key_limit: HeaderName::from_static("x-ratelimit-api_key-limit-requests"),
    key_remaining: HeaderName::from_static("x-ratelimit-api_key-remaining-requests"),
};

const TOKENS: Names = Names {
    limit: HeaderName::from_static("x-ratelimit-limit-tokens"),
    remaining: HeaderName::from_static("x-ratelimit-remaining-tokens"),
    reset: HeaderName::from_static("x-ratelimit-reset-tokens"),
    key_limit: HeaderName::from_static("x-ratelimit-api_key-limit-tokens"),
    key_remaining: HeaderName::from_static("x-ratelimit-api_key-remaining-tokens"),
};

/// Write the `x-ratelimit-*` headers for the limits the key has (none for an unlimited key).
pub fn headers(out: &mut HeaderMap, status: &RateStatus) {
    if let Some(quota) = &status.requests {
        write(out, &REQUESTS, quota);
    }
    if let Some(quota) = &status.tokens {
        write(out, &TOKENS, quota);
    }
}

/// Write the headers of a 429: the `x-ratelimit-*` status plus `retry-after`.
pub fn refusal_headers(out: &mut HeaderMap, refusal: &Refusal) {
    headers(out, &refusal.status);
    out.insert(
        http::header::RETRY_AFTER,
        HeaderValue::from(refusal.retry_after_secs()),
    );
}

fn write(out: &mut HeaderMap, names: &Names, quota: &Quota) {
    out.insert(names.limit.clone(), HeaderValue::from(quota.limit));
    out.insert(names.remaining.clone(), HeaderValue::from(quota.remaining));
    out.insert(
        names.reset.clone(),
        HeaderValue::from(ceil_secs(quota.reset_after)),
    );
    out.insert(names.key_limit.clone(), HeaderValue::from(quota.limit));
    out.insert(
        names.key_remaining.clone(),
        HeaderValue::from(quota.remaining),
    );
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::super::LimitKind;
    use super::*;

    fn get<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
        h.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn unlimited_keys_get_no_headers() {
        let mut h = HeaderMap::new();
        headers(&mut h, &RateStatus::default());
        assert!(h.is_empty());
    }

    #[test]
    fn admitted_request_reports_requests_and_tokens() {
        let status = RateStatus {
            requests: Some(Quota {
                limit: 10,
                remaining: 7,
                reset_after: Duration::ZERO,
            }),
            tokens: Some(Quota {
                limit: 1_000,
                remaining: 250,
                reset_after: Duration::from_millis(1_200),
            }),
        };
        let mut h = HeaderMap::new();
        headers(&mut h, &status);
        assert_eq!(get(&h, "x-ratelimit-limit-requests"), Some("10"));
        assert_eq!(get(&h, "x-ratelimit-remaining-requests"), Some("7"));
        assert_eq!(get(&h, "x-ratelimit-reset-requests"), Some("0"));
        assert_eq!(get(&h, "x-ratelimit-limit-tokens"), Some("1000"));
        assert_eq!(get(&h, "x-ratelimit-remaining-tokens"), Some("250"));
        assert_eq!(get(&h, "x-ratelimit-reset-tokens"), Some("2"));
        assert_eq!(get(&h, "x-ratelimit-api_key-remaining-requests"), Some("7"));
        assert_eq!(get(&h, "x-ratelimit-api_key-limit-tokens"), Some("1000"));
        assert!(h.get("retry-after").is_none());
    }

    #[test]
    fn refusal_adds_retry_after_in_whole_seconds() {
        let refusal = Refusal {
            limit: LimitKind::Rpm,
            limit_value: 10,
            remaining: 0,
            reset_after: Duration::from_millis(4_100),
            status: RateStatus {
                requests: Some(Quota {
                    limit: 10,
                    remaining: 0,
                    reset_after: Duration::from_millis(4_100),
                }),
                tokens: None,
            },
        };
        let mut h = HeaderMap::new();
        refusal_headers(&mut h, &refusal);
        assert_eq!(get(&h, "retry-after"), Some("5"));
        assert_eq!(get(&h, "x-ratelimit-remaining-requests"), Some("0"));
        assert_eq!(get(&h, "x-ratelimit-reset-requests"), Some("5"));
        assert!(h.get("x-ratelimit-limit-tokens").is_none());
    }
}
