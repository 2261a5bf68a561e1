//! What an HTTP live target's answers mean: an error kind for each status, and messages
//! that quote the answer (trimmed, scrubbed of the target's secrets) and say whether
//! anything was written.

use reqwest::{Method, StatusCode};

use crate::error::{Error, Hint, Step};
use crate::store::redact_url;

/// How many characters of an error response's body a message shows.
const SNIPPET_LEN: usize = 200;

/// What a failed request left undone, for messages: a read reads nothing, any other
/// method writes nothing.
pub(super) fn nothing_done(method: &Method) -> &'static str {
    if method == Method::GET {
        "nothing was read"
    } else {
        "nothing was written"
    }
}

/// The start of an answer's body, scrubbed, without control characters, trimmed.
pub(super) fn snippet(body: &[u8], scrub: &dyn Fn(&str) -> String) -> String {
    // Scrubbed before it is cut, so that a secret across the cut goes too.
    let head = String::from_utf8_lossy(&body[..body.len().min(SNIPPET_LEN + 4096)]);
    let text: String = scrub(&head)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = text.chars().take(SNIPPET_LEN).collect();
    if cut.len() < text.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

/// The error for a request that could not be sent or answered (`cause` scrubbed).
pub(super) fn send_error(
    doing: &str,
    url: &reqwest::Url,
    e: &reqwest::Error,
    cause: &str,
    timeout: std::time::Duration,
) -> Error {
    let url = redact_url(url.as_str());
    if e.is_timeout() {
        Error::unavailable(format!(
            "{doing} {url} timed out after {timeout:?}; check that the endpoint is up, or raise \
             the live target's timeout"
        ))
    } else if e.is_connect() {
        Error::unavailable(format!("cannot connect to {url} ({doing}): {cause}")).with_next(
            Hint::steps(
                "check that the endpoint is up and reachable (the setup check tries every live \
                 target)",
                [Step::Doctor],
            ),
        )
    } else {
        Error::unavailable(format!("{doing} {url} failed: {cause}"))
    }
}

/// The error for a live target's answer with a status that is not a success.
/// `renewed`: a 401 came again after signing in afresh.
pub(super) fn status_error(
    method: &Method,
    url: &reqwest::Url,
    status: StatusCode,
    quoted: &str,
    renewed: bool,
) -> Error {
    let url = redact_url(url.as_str());
    let nothing = nothing_done(method);
    let answered = if quoted.is_empty() {
        format!("{method} {url} answered {status}")
    } else {
        format!("{method} {url} answered {status}: {quoted}")
    };
    let write = method != Method::GET;
    match status {
        // Only these say live holds nothing; every other failure is "unreadable".
        StatusCode::NOT_FOUND | StatusCode::GONE => Error::live_missing(format!(
            "the live object does not exist: {answered}; {nothing}"
        )),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            let again = if renewed {
                " (again, with a token just issued by its sign-in)"
            } else {
                ""
            };
            Error::config(format!(
                "{answered}{again}; {nothing}: the live target did not accept the credentials; \
                 check the live target's bearer token, secret headers or sign-in (oauth), and \
                 that they may {}",
                if write { "write" } else { "read" }
            ))
        }
        StatusCode::CONFLICT | StatusCode::PRECONDITION_FAILED => Error::live_conflict(format!(
            "the live target refused the write as conflicting with its current state: \
             {answered}; {nothing}"
        )),
        StatusCode::PAYLOAD_TOO_LARGE => Error::too_large(format!("{answered}; {nothing}")),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            Error::unavailable(format!("{answered}; retry later"))
        }
        _ if write => Error::live_refused(format!(
            "the live target refused the configuration: {answered}"
        )),
        _ => Error::live_refused(format!("the live target refused the request: {answered}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn each_status_has_its_kind() {
        let url = reqwest::Url::parse("http://h/api/v1/workflows/7?key=abc").unwrap();
        for (method, status, kind, says) in [
            (
                Method::PUT,
                400,
                ErrorKind::LiveRefused,
                "refused the configuration",
            ),
            (
                Method::GET,
                400,
                ErrorKind::LiveRefused,
                "refused the request",
            ),
            (
                Method::PUT,
                422,
                ErrorKind::LiveRefused,
                "refused the configuration",
            ),
            (
                Method::PUT,
                404,
                ErrorKind::LiveMissing,
                "nothing was written",
            ),
            (Method::GET, 410, ErrorKind::LiveMissing, "nothing was read"),
            (Method::PUT, 409, ErrorKind::LiveConflict, "conflicting"),
            (
                Method::POST,
                412,
                ErrorKind::LiveConflict,
                "nothing was written",
            ),
            (Method::PUT, 401, ErrorKind::Config, "nothing was written"),
            (Method::GET, 403, ErrorKind::Config, "nothing was read"),
            (Method::PUT, 413, ErrorKind::TooLarge, "413"),
            (Method::GET, 503, ErrorKind::Unavailable, "retry later"),
            (Method::GET, 429, ErrorKind::Unavailable, "retry later"),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            let e = status_error(&method, &url, status, "{\"message\":\"no\"}", false);
            assert_eq!(e.kind(), kind, "{method} {status}: {e}");
            assert!(e.message().contains(says), "{method} {status}: {e}");
            assert!(e.message().contains("{\"message\":\"no\"}"), "{e}");
            assert!(!e.message().contains("abc"), "{e}");
        }
    }

    #[test]
    fn snippets_are_scrubbed_trimmed_and_cut() {
        let scrub = |s: &str| s.replace("K3Y-S3CRET", "<redacted>");
        assert_eq!(snippet(b"  \n {\"a\":\n 1}\r\n", &scrub), "{\"a\": 1}");
        let long = format!("{}K3Y-S3CRET", "x".repeat(195));
        let s = snippet(long.as_bytes(), &scrub);
        assert!(!s.contains("K3Y"), "{s}");
        assert!(s.ends_with("..."), "{s}");
        assert_eq!(s.chars().count(), SNIPPET_LEN + 3);
    }
}
