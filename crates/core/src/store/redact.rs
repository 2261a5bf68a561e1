//! URLs made safe for messages: they lose their userinfo and their query string, where
//! credentials and signed tokens live.

/// `url` without `user:password@`, query string or fragment; a dropped query shows as
/// `?...` so a reader knows there was one.
#[must_use]
pub fn redact_url(url: &str) -> String {
    // "user:pw@host:port" parses as scheme "user" with an opaque path: not a URL here.
    let mut u = match url::Url::parse(url) {
        Ok(u) if !u.cannot_be_a_base() => u,
        _ => return redact_unparsed(url),
    };
    let had_query = u.query().is_some();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    let mut s = u.to_string();
    // The url crate writes "http://host" as "http://host/"; keep what was written.
    let had_path = url
        .split_once("://")
        .is_some_and(|(_, rest)| rest.split(['?', '#']).next().unwrap_or("").contains('/'));
    if !had_path && u.path() == "/" && s.ends_with('/') {
        s.pop();
    }
    if had_query {
        s.push_str("?...");
    }
    s
}

/// The same for text that is not a URL (e.g. an endpoint without a scheme).
fn redact_unparsed(url: &str) -> String {
    let (base, query) = match url.find(['?', '#']) {
        Some(i) => (&url[..i], true),
        None => (url, false),
    };
    let (scheme, rest) = base.split_once("://").map_or(("", base), |(s, r)| (s, r));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) => &rest[at + 1..],
        None => rest,
    };
    let mut s = if scheme.is_empty() {
        rest.to_string()
    } else {
        format!("{scheme}://{rest}")
    };
    if query {
        s.push_str("?...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_and_query() {
        assert_eq!(
            redact_url("http://user:secret@minio:9000/x"),
            "http://minio:9000/x"
        );
        assert_eq!(redact_url("http://127.0.0.1:4566"), "http://127.0.0.1:4566");
        assert_eq!(redact_url("https://h/p@q"), "https://h/p@q");
        assert_eq!(
            redact_url("https://u:p@h/config?key=abc#frag"),
            "https://h/config?..."
        );
        assert_eq!(redact_url("http://h?sig=x"), "http://h?...");
        assert_eq!(redact_url("u:p@127.0.0.1:4566"), "127.0.0.1:4566");
        assert_eq!(redact_url("127.0.0.1:4566/x?t=1"), "127.0.0.1:4566/x?...");
    }
}
