//! The checks RFC 9112 asks of a server before it acts on a request, made the same way on
//! both paths: one valid `Host` (section 3.2), a request target without a fragment
//! (section 3.2: the target's forms have none). A request that fails them gets a 400,
//! in the API's error format, and the connection is closed after it.

use axum::body::Body;
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::uri::Authority;
use axum::http::{Response, Version};
use axum::response::IntoResponse as _;
use jetvault_core::error::Error;

use crate::http::error::ApiError;

/// Why a request can't be served, if it can't: `Host` missing from an HTTP/1.1 request,
/// sent twice, or not a valid `host[:port]`.
pub(super) fn check_host(version: Version, headers: &HeaderMap) -> Result<(), &'static str> {
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if version >= Version::HTTP_11 => Err("an HTTP/1.1 request needs a Host header"),
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err("more than one Host header"),
        (Some(host), None) if valid_host(host.as_bytes()) => Ok(()),
        (Some(_), None) => Err("the Host header is not a valid host[:port]"),
    }
}

/// `uri-host [ ":" port ]`, or empty (RFC 9112 section 3.2): no user information, no
/// path, a numeric port.
fn valid_host(host: &[u8]) -> bool {
    if host.is_empty() {
        return true;
    }
    if host
        .iter()
        .any(|&b| matches!(b, b'@' | b'/' | b'?' | b'#' | b'\\'))
    {
        return false;
    }
    // The port, after the last colon that is not inside an IPv6 literal's brackets.
    let after_literal = host.iter().rposition(|&b| b == b']').map_or(0, |i| i + 1);
    let port = host[after_literal..]
        .iter()
        .rposition(|&b| b == b':')
        .map(|colon| &host[after_literal + colon + 1..]);
    if port.is_some_and(|p| !p.iter().all(u8::is_ascii_digit)) {
        return false;
    }
    Authority::try_from(host).is_ok_and(|a| !a.host().is_empty())
}

/// Why a request target can't be served, if it can't: a fragment (`#`).
pub(super) fn check_target(target: &str) -> Result<(), &'static str> {
    if target.contains('#') {
        return Err("the request target has a fragment (#)");
    }
    Ok(())
}

/// The answer to a request that fails a check: 400, `Connection: close`.
pub(super) fn bad_request(why: &str) -> Response<Body> {
    let mut res = ApiError::from(Error::invalid(format!("bad request: {why}"))).into_response();
    res.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    res
}

/// Whether `headers` hold a `Connection` header with the `close` option.
pub(super) fn wants_close(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}
