//! AWS Signature Version 4 for Bedrock runtime requests (header-based signing).
//!
//! Implemented here on `sha2` rather than with the `aws-sigv4` crate: that crate pulls the
//! AWS smithy runtime (`aws-smithy-runtime-api`, `aws-smithy-http`, `aws-credential-types`,
//! their `http` 0.2 shims, ...) for what is ~150 lines of a fully specified algorithm,
//! and the project builds on two cores. HMAC (RFC 2104) is written out for the same
//! reason. The signer is tested against AWS's published examples.
//!
//! Canonical URI: Bedrock is not S3, so the path (already percent-encoded, e.g. the `:`
//! of a model id as `%3A`) is encoded once more, as the AWS SDKs do.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Long-term or temporary AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Set for temporary (STS) credentials; sent as `x-amz-security-token`.
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // Never print the secret or the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("cannot sign a request to {0:?}: not an absolute http(s) URL")]
    Url(String),
}

/// What to sign: the request as it will go on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    /// Absolute URL, path already percent-encoded.
    pub url: &'a str,
    /// Extra headers to sign besides `host` and `x-amz-date` (e.g. `content-type`).
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
}

/// Signs `req` at `unix_secs` for `region`/`service`. Returns the headers to add:
/// `x-amz-date`, `x-amz-security-token` (temporary credentials) and `authorization`.
pub fn sign(
    req: &Request<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    unix_secs: u64,
) -> Result<Vec<(&'static str, String)>, SigV4Error> {
    let (host, path, query) = split_url(req.url)?;
    let amz_date = amz_date(unix_secs);
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), normalize_value(v)))
        .collect();
    headers.push(("host".to_owned(), host.to_owned()));
    headers.push(("x-amz-date".to_owned(), amz_date.clone()));
    if let Some(token) = &creds.session_token {
        headers.push(("x-amz-security-token".to_owned(), token.clone()));
    }
    headers.sort();
    let canonical_headers: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(path),
        canonical_query(query),
        canonical_headers,
        signed_headers,
        hex::encode(Sha256::digest(req.payload)),
    );
    let signature = signature(&canonical_request, &amz_date, creds, region, service);
    let mut out = vec![("x-amz-date", amz_date.clone())];
    if let Some(token) = &creds.session_token {
        out.push(("x-amz-security-token", token.clone()));
    }
    out.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/{region}/{service}/aws4_request, SignedHeaders={signed_headers}, Signature={signature}",
            creds.access_key_id,
            &amz_date[..8],
        ),
    ));
    Ok(out)
}

/// The signature for a finished canonical request (exposed for the published examples).
pub fn signature(
    canonical_request: &str,
    amz_date: &str,
    creds: &Credentials,
    region: &str,
    service: &str,
) -> String {
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac(
        format!("AWS4{}", creds.secret_access_key).as_bytes(),
        date.as_bytes(),
    );
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    let k_signing = hmac(&k_service, b"aws4_request");
    hex::encode(hmac(&k_signing, string_to_sign.as_bytes()))
}

/// HMAC-SHA256, from the `hmac` crate.
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of every length, so `new_from_slice` cannot fail; were it to, an
    // all-zero MAC only makes AWS refuse the signature.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

/// `https://host[:port]/path?query` -> (host header value, path, query).
fn split_url(url: &str) -> Result<(&str, &str, &str), SigV4Error> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| SigV4Error::Url(url.to_owned()))?;
    let (authority, path_query) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if authority.is_empty() || !matches!(scheme, "http" | "https") {
        return Err(SigV4Error::Url(url.to_owned()));
    }
    // Default ports are not part of the Host header the client sends.
    let host = match scheme {
        "https" => authority.strip_suffix(":443").unwrap_or(authority),
        _ => authority.strip_suffix(":80").unwrap_or(authority),
    };
    let path_query = path_query.split('#').next().unwrap_or(path_query);
    let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
    Ok((host, path, query))
}

/// RFC 3986 encoding of everything but unreserved characters (and `/` when asked).
fn uri_encode(input: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(input.len());
    for b in input.bytes() {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        uri_encode(path, true)
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_at = |j: usize| bytes.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (bytes[i], hex_at(i + 1), hex_at(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trimmed, with runs of spaces collapsed to one.
fn normalize_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `YYYYMMDD'T'HHMMSS'Z'` for a Unix time (UTC).
pub fn amz_date(unix_secs: u64) -> String {
    let days = i64::try_from(unix_secs / 86_400).unwrap_or(0);
    let secs = unix_secs % 86_400;
    // Days since 1970-01-01 -> civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example_creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            session_token: None,
        }
    }

    #[test]
    fn dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        // 2015-08-30T12:36:00Z, the time of AWS's signing test suite.
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
    }

    /// AWS signing test suite, `get-vanilla`.
    #[test]
    fn aws_test_suite_get_vanilla() {
        let headers = sign(
            &Request {
                method: "GET",
                url: "https://example.amazonaws.com/",
                headers: &[],
                payload: b"",
            },
            &example_creds(),
            "us-east-1",
            "service",
            1_440_938_160,
        )
        .unwrap_or_default();
        assert_eq!(
            headers.last().map(|(_, v)| v.as_str()),
            Some(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
            )
        );
    }

    /// The S3 `GET /test.txt` example of the SigV4 documentation (canonical request given).
    #[test]
    fn aws_documented_s3_example() {
        let canonical = "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\nx-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned(),
            session_token: None,
        };
        assert_eq!(
            signature(canonical, "20130524T000000Z", &creds, "us-east-1", "s3"),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn model_ids_are_encoded_twice_and_tokens_signed() {
        let creds = Credentials {
            session_token: Some("tok".to_owned()),
            ..example_creds()
        };
        let headers = sign(
            &Request {
                method: "POST",
                url: "https://bedrock-runtime.us-west-2.amazonaws.com:443/model/anthropic.claude-v2%3A1/converse",
                headers: &[("Content-Type", "application/json")],
                payload: b"{}",
            },
            &creds,
            "us-west-2",
            "bedrock",
            1_440_938_160,
        )
        .unwrap_or_default();
        let auth = &headers.last().map(|(_, v)| v.clone()).unwrap_or_default();
        assert!(auth.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"));
        assert!(headers.contains(&("x-amz-security-token", "tok".to_owned())));
        assert_eq!(
            canonical_uri("/model/anthropic.claude-v2%3A1/converse"),
            "/model/anthropic.claude-v2%253A1/converse"
        );
        assert_eq!(canonical_query("b=2&a=x%20y&a=1"), "a=1&a=x%20y&b=2");
    }
}
