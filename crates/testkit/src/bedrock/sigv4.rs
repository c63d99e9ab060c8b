//! Verifying AWS Signature Version 4 on incoming requests, as Bedrock does: the
//! `Authorization` header is parsed, the canonical request rebuilt from what arrived
//! (method, path encoded once more, sorted query, the signed headers, body hash) and the
//! signature recomputed with the mock's known secret.

use axum::http::{HeaderMap, Method, Uri};
use sha2::{Digest, Sha256};

use super::errors::ApiError;
use super::{AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY};

/// How far `x-amz-date` may be from the mock's clock (AWS allows 5 minutes; the mock is
/// lenient for slow test machines).
const MAX_SKEW_SECS: i64 = 15 * 60;

fn denied(kind: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: 403,
        kind,
        message: message.into(),
    }
}

/// Accepts a SigV4-signed request with the mock's test credentials, or a Bedrock API
/// key (`Authorization: Bearer <api_key>`) when the mock has an `api_key`.
pub(crate) fn verify(
    api_key: Option<&str>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: u64,
) -> Result<(), ApiError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(auth) = header("authorization") else {
        return Err(denied(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return match api_key {
            Some(expected) if expected == token => Ok(()),
            _ => Err(denied(
                "UnrecognizedClientException",
                "Invalid API Key format: Must start with pre-defined prefix",
            )),
        };
    }
    let Some(params) = auth.strip_prefix("AWS4-HMAC-SHA256 ") else {
        return Err(denied(
            "IncompleteSignatureException",
            format!(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={auth}"
            ),
        ));
    };
    let field = |name: &str| {
        params
            .split(',')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
    };
    let (Some(credential), Some(signed_headers), Some(signature)) = (
        field("Credential"),
        field("SignedHeaders"),
        field("Signature"),
    ) else {
        return Err(denied(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.",
        ));
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return Err(denied(
            "IncompleteSignatureException",
            format!("Credential is malformed: {credential}"),
        ));
    };
    if *key_id != AWS_ACCESS_KEY_ID {
        return Err(denied(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    if *service != "bedrock" {
        return Err(denied(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: 'bedrock', not '{service}'."),
        ));
    }
    let Some(amz_date) = header("x-amz-date") else {
        return Err(denied(
            "IncompleteSignatureException",
            "x-amz-date header is required",
        ));
    };
    if !amz_date.starts_with(date) {
        return Err(denied(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
        ));
    }
    match parse_amz_date(amz_date) {
        Some(t) if (t - now_secs as i64).abs() <= MAX_SKEW_SECS => {}
        _ => {
            return Err(denied(
                "InvalidSignatureException",
                format!("Signature expired: {amz_date} is now earlier or later than allowed."),
            ));
        }
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    if !names.contains(&"host") || !names.contains(&"x-amz-date") {
        return Err(denied(
            "InvalidSignatureException",
            "'Host' and 'X-Amz-Date' must be signed headers.",
        ));
    }
    if headers.contains_key("x-amz-security-token") && !names.contains(&"x-amz-security-token") {
        return Err(denied(
            "InvalidSignatureException",
            "x-amz-security-token must be a signed header.",
        ));
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(denied(
                "InvalidSignatureException",
                format!("Signed header {name} is missing from the request."),
            ));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let canonical_request = format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        encode(uri.path(), true),
        canonical_query(uri.query().unwrap_or("")),
        hex(&Sha256::digest(body)),
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(
        format!("AWS4{AWS_SECRET_ACCESS_KEY}").as_bytes(),
        date.as_bytes(),
    );
    for part in [
        region.as_bytes(),
        service.as_bytes(),
        b"aws4_request".as_slice(),
    ] {
        key = hmac(&key, part);
    }
    let expected = hex(&hmac(&key, string_to_sign.as_bytes()));
    if expected != signature {
        return Err(denied(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(())
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    // Keys of any length are valid for HMAC; an empty MAC would only fail the check.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

fn encode(s: &str, keep_slash: bool) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn canonical_query(query: &str) -> String {
    let decode = |s: &str| {
        let mut out = Vec::new();
        let b = s.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && let Some(v) = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k), false), encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `20250101T120000Z` -> Unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    if s.len() != 16 || !s.ends_with('Z') || s.as_bytes()[8] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    // Days from civil (H. Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_amz_date("20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date("2015-08-30"), None);
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
