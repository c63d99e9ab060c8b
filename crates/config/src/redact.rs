//! Secrets in URLs, made safe to print.
//!
//! Operators put credentials in URLs: `http://user:pass@host` as an `api_base`, a
//! database URL with a password, Gemini's `?key=`. Such URLs end up in `/health`, in
//! error messages (an HTTP client's error names the URL it failed on) and in logs; each of
//! those places passes its text through [`text`] (or a single URL through [`url`]).

use std::borrow::Cow;

/// Query parameters whose value is a credential (compared case-insensitively).
const SECRET_PARAMS: &[&str] = &[
    "key",
    "api_key",
    "api-key",
    "apikey",
    "access_token",
    "token",
    "auth",
    "password",
    "secret",
    "client_secret",
    "code",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

const MASK: &str = "***";

/// `url` with its `user:password@` and secret query values replaced by `***`.
pub fn url(url: &str) -> String {
    match redact_url(url) {
        Cow::Borrowed(_) => url.to_owned(),
        Cow::Owned(s) => s,
    }
}

/// `text` with every URL in it redacted as [`url`] does; borrowed when nothing changes.
pub fn text(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    let mut done = 0;
    let mut search = 0;
    while let Some(found) = text[search..].find("://") {
        let sep = search + found;
        let start = text[..sep]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let end = text[sep..]
            .find(|c: char| c.is_whitespace() || c.is_control() || ENDS_URL.contains(&c))
            .map_or(text.len(), |i| sep + i);
        if let Cow::Owned(redacted) = redact_url(&text[start..end]) {
            out.push_str(&text[done..start]);
            out.push_str(&redacted);
            done = end;
        }
        search = end.max(sep + 3);
    }
    if done == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[done..]);
    Cow::Owned(out)
}

/// Characters that cannot be part of a URL as printed in prose, JSON or a log line.
const ENDS_URL: &[char] = &[
    '"', '\'', '\\', '<', '>', '`', '(', ')', '[', ']', '{', '}', ',',
];

fn redact_url(url: &str) -> Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Cow::Borrowed(url);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let userinfo = authority.rfind('@');
    let (query_start, query_end) = match tail.find('?') {
        Some(q) => (q + 1, tail[q..].find('#').map_or(tail.len(), |h| q + h)),
        None => (tail.len(), tail.len()),
    };
    let query = &tail[query_start..query_end];
    let secret_query = query.split('&').any(is_secret_pair);
    if userinfo.is_none() && !secret_query {
        return Cow::Borrowed(url);
    }
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    out.push_str("://");
    match userinfo {
        Some(at) => {
            out.push_str(MASK);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    out.push_str(&tail[..query_start]);
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if is_secret_pair(pair) => {
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(pair),
        }
    }
    out.push_str(&tail[query_end..]);
    Cow::Owned(out)
}

fn is_secret_pair(pair: &str) -> bool {
    pair.split_once('=').is_some_and(|(name, value)| {
        !value.is_empty()
            && value != MASK
            && SECRET_PARAMS.iter().any(|s| s.eq_ignore_ascii_case(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_secret_query_values_are_masked() {
        assert_eq!(url("http://u:p@h:1/x"), "http://***@h:1/x");
        assert_eq!(url("http://h/x@y"), "http://h/x@y");
        assert_eq!(
            url("https://g.example/v1/models/m:generate?alt=sse&key=AIzaSECRET#f"),
            "https://g.example/v1/models/m:generate?alt=sse&key=***#f"
        );
        assert_eq!(
            url("postgres://gh:hunter2@db:5432/gh?sslmode=require&password=x"),
            "postgres://***@db:5432/gh?sslmode=require&password=***"
        );
        assert_eq!(
            url("http://h/p?monkey=1&keys=2"),
            "http://h/p?monkey=1&keys=2"
        );
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn urls_inside_text_are_masked_and_the_rest_kept() {
        let msg = "error sending request for url (http://user:pass@10.0.0.1:8000/v1/chat) \
                   then \"https://h/x?API_KEY=abc\", and ftp://plain/ok";
        assert_eq!(
            text(msg),
            "error sending request for url (http://***@10.0.0.1:8000/v1/chat) \
             then \"https://h/x?API_KEY=***\", and ftp://plain/ok"
        );
        assert!(matches!(text("no urls here"), Cow::Borrowed(_)));
        assert!(matches!(text("http://clean/x"), Cow::Borrowed(_)));
        // Degenerate input never panics and stays bounded.
        for s in [
            "://",
            "a://@",
            "://?key=",
            "x://y?&&=&key=1",
            "é://ü@ß?key=ñ",
            ":///:///",
        ] {
            let _ = text(s);
        }
        assert_eq!(text("x://u@h"), "x://***@h");
    }
}
