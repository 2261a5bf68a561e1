//! Reading a request head: a plain GET this path answers, or hyper's to answer.

use axum::body::Body;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Method, Request, Version};

use super::MAX_HEADERS;

/// A request head read from the connection.
pub(super) enum Head {
    /// A GET this module answers: the request, the head's length, whether the client
    /// asked to close the connection after it.
    Get(Box<Request<Body>>, usize, bool),
    /// A head that fails a check of [`super::check`]: why, the head's length. Answered
    /// with 400 and the connection closed.
    Bad(&'static str, usize),
    /// More bytes are needed.
    Partial,
    /// Hyper's to answer.
    Hyper,
}

/// Parses the head at the start of `buf`, if it is a GET this module takes.
pub(super) fn parse(buf: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Head::Partial,
        Err(_) => return Head::Hyper,
    };
    let (Some("GET"), Some(1), Some(path)) = (parsed.method, parsed.version, parsed.path) else {
        return Head::Hyper;
    };
    if !path.starts_with('/') {
        return Head::Hyper;
    }
    if let Err(why) = super::check::check_target(path) {
        return Head::Bad(why, len);
    }
    let Ok(mut req) = Request::builder()
        .method(Method::GET)
        .uri(path)
        .version(Version::HTTP_11)
        .body(Body::empty())
    else {
        return Head::Hyper;
    };
    let mut close = false;
    for h in parsed.headers.iter() {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_bytes(h.value),
        ) else {
            return Head::Hyper;
        };
        match name {
            // `Content-Length: 0` once; any other length, or a second one, is hyper's
            // (which folds equal duplicates into one and refuses different ones).
            header::CONTENT_LENGTH if h.value != b"0" || req.headers().contains_key(&name) => {
                return Head::Hyper;
            }
            header::TRANSFER_ENCODING | header::UPGRADE | header::EXPECT => return Head::Hyper,
            header::CONNECTION => {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        return Head::Hyper;
                    }
                }
            }
            _ => {}
        }
        req.headers_mut().append(name, value);
    }
    Head::Get(Box::new(req), len, close)
}
