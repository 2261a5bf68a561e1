//! Entity tags: quoting, and the `If-Match` / `If-None-Match` comparisons of RFC 9110
//! (section 13.1), in one place for the release pointer and every HTTP route.
//!
//! Stores give etags quoted (S3) or bare (the directory store); people type them bare.
//! So every comparison here accepts a tag with or without its quotes.

/// The etag as an HTTP entity tag: quoted, unless it already is (or is weak).
#[must_use]
pub fn quote(tag: &str) -> String {
    if tag.starts_with('"') || tag.starts_with("W/") {
        tag.to_string()
    } else {
        format!("\"{tag}\"")
    }
}

/// The opaque part of an entity tag: without a weak `W/` prefix, quotes or spaces.
#[must_use]
pub fn unquote(tag: &str) -> &str {
    let tag = tag.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag)
}

/// Whether two entity tags are the same by weak comparison: their opaque parts are
/// equal, whether either is weak or quoted.
#[must_use]
pub fn weak_eq(a: &str, b: &str) -> bool {
    unquote(a) == unquote(b)
}

/// One member of an entity-tag list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Member<'a> {
    weak: bool,
    opaque: &'a str,
}

/// The members of a list header value (`"a", W/"b", c`), `None` for `*`. A quoted tag
/// may hold commas; a bare one ends at the next comma.
fn members(list: &str) -> Option<Vec<Member<'_>>> {
    if list.trim() == "*" {
        return None;
    }
    let mut out = Vec::new();
    let mut rest = list;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return Some(out);
        }
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        let (opaque, after) = match rest.strip_prefix('"') {
            Some(inner) => match inner.find('"') {
                Some(end) => (&inner[..end], &inner[end + 1..]),
                None => (inner, ""),
            },
            None => match rest.find(',') {
                Some(end) => (rest[..end].trim_end(), &rest[end..]),
                None => (rest.trim_end(), ""),
            },
        };
        out.push(Member { weak, opaque });
        rest = after;
    }
}

/// Whether an `If-None-Match` value matches the current `etag` (RFC 9110 13.1.2):
/// `*`, or any listed tag equal by weak comparison.
#[must_use]
pub fn none_match(list: &str, etag: &str) -> bool {
    let current = unquote(etag);
    members(list).is_none_or(|m| m.iter().any(|t| t.opaque == current))
}

/// Whether an `If-Match` value matches the current `etag` (RFC 9110 13.1.1): `*` when
/// there is a current representation, or any listed tag equal by strong comparison (a
/// weak tag never matches).
#[must_use]
pub fn if_match(list: &str, etag: &str) -> bool {
    let current = etag.trim();
    if current.starts_with("W/") {
        return false;
    }
    let current = unquote(current);
    members(list).is_none_or(|m| m.iter().any(|t| !t.weak && t.opaque == current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("abc"), "\"abc\"");
        assert_eq!(quote("\"abc\""), "\"abc\"");
        assert_eq!(quote("W/\"abc\""), "W/\"abc\"");
        assert_eq!(unquote("\"abc\""), "abc");
        assert_eq!(unquote(" W/\"abc\" "), "abc");
        assert_eq!(unquote("abc"), "abc");
        assert!(weak_eq("\"abc\"", "abc"));
        assert!(weak_eq("W/\"abc\"", "\"abc\""));
        assert!(!weak_eq("\"abc\"", "\"abd\""));
    }

    #[test]
    fn if_none_match_forms() {
        let tag = "\"abc\"";
        assert!(none_match("\"abc\"", tag));
        assert!(none_match("W/\"abc\"", tag));
        assert!(none_match("\"x\", \"abc\"", tag));
        assert!(none_match("\"x\",W/\"abc\"", tag));
        assert!(none_match("*", tag));
        assert!(none_match("abc", tag));
        assert!(none_match("abc", "abc"));
        assert!(!none_match("\"abcd\"", tag));
        assert!(!none_match("", tag));
        assert!(
            !none_match("\"a,bc\"", tag),
            "a comma inside quotes is part of the tag"
        );
        assert!(none_match("\"a,bc\"", "\"a,bc\""));
    }

    #[test]
    fn if_match_is_strong() {
        let tag = "\"abc\"";
        assert!(if_match("\"abc\"", tag));
        assert!(if_match("abc", tag));
        assert!(if_match("\"x\", \"abc\"", tag));
        assert!(if_match("*", tag));
        assert!(
            !if_match("W/\"abc\"", tag),
            "weak tags never match If-Match"
        );
        assert!(!if_match("\"abc\"", "W/\"abc\""));
        assert!(!if_match("\"abd\"", tag));
        assert!(!if_match("", tag));
    }
}
