//! HTML building: escaping and the page shell. Every value that did not come from this
//! file goes through [`esc`] (or [`attr`]) — tool names, schemas, aliases and config
//! values are untrusted.

use std::fmt::Write;

/// Escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub fn url_param(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The navigation, in page order: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/ui", "Overview"),
    ("/ui/models", "Models"),
    ("/ui/mcp", "MCP servers"),
    ("/ui/keys", "Keys"),
    ("/ui/spend", "Spend logs"),
    ("/ui/audit", "Tool calls"),
    ("/ui/config", "Config"),
];

/// What every page of a signed-in operator carries.
pub struct Shell<'a> {
    pub title: &'a str,
    /// Which NAV entry is current.
    pub active: &'a str,
    pub csrf: &'a str,
}

impl Shell<'_> {
    pub fn render(&self, body: &str) -> String {
        let mut nav = String::new();
        for (path, label) in NAV {
            let current = if *path == self.active {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(nav, "<a href=\"{path}\"{current}>{label}</a>");
        }
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} · Gatehouse</title><link rel=\"stylesheet\" href=\"/ui/assets/app.css\">\
             <script src=\"/ui/assets/app.js\" defer></script></head><body>\
             <header><span class=\"brand\">Gatehouse</span><nav>{nav}</nav>\
             <form method=\"post\" action=\"/ui/logout\" class=\"logout\">{csrf}\
             <button type=\"submit\">Log out</button></form></header>\
             <main><h1>{title}</h1>{body}</main></body></html>",
            title = esc(self.title),
            csrf = csrf_field(self.csrf),
        )
    }
}

/// The hidden field every form posts back.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// A page outside the signed-in shell (the login page).
pub fn bare(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · Gatehouse</title><link rel=\"stylesheet\" href=\"/ui/assets/app.css\"></head>\
         <body class=\"bare\"><main>{body}</main></body></html>",
        t = esc(title)
    )
}

/// A notice above a page's content.
pub fn notice(kind: &str, text: &str) -> String {
    format!(
        "<p class=\"notice {kind}\" role=\"status\">{}</p>",
        esc(text)
    )
}

/// A table from a header row and already-rendered cells.
pub fn table(head: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">{}</p>", esc(empty));
    }
    let mut out = String::from("<div class=\"scroll\"><table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// An instant as `2026-05-01 12:00:03` (UTC).
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Money with enough digits for per-request costs.
pub fn money(v: f64) -> String {
    if v != 0.0 && v.abs() < 0.01 {
        format!("${v:.6}")
    } else {
        format!("${v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
        assert_eq!(url_param("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
