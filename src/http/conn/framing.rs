//! Request targets on hyper's path, as sent: hyper's parser (the `http` crate's `Uri`)
//! drops a fragment from the target (`GET /a#b` is served as `/a`), so the request
//! handed to the router cannot show it. [`Framing`] follows the HTTP/1.1 message framing
//! of the bytes hyper reads (heads, then bodies by `Content-Length` or chunked coding),
//! and notes for each request head, in order, whether its target has a fragment; the
//! service takes these notes one per request it is called for ([`Framing::next`]), and
//! answers a fragment with the same 400 as jetvault's own path ([`super::check`]).
//!
//! Framing it does not follow exactly as hyper does (both `Transfer-Encoding` and
//! `Content-Length`, two lengths, a coding other than chunked, an upgrade, a head it
//! can't parse) makes it stop: every later request is then served unchecked, as
//! before. hyper refuses most of these itself and closes the connection.

use std::collections::VecDeque;
use std::sync::Mutex;

/// The longest head followed; a longer one stops the tracking (hyper allows ~400 KB).
const MAX_TRACKED_HEAD: usize = 512 * 1024;
/// Headers parsed per head; hyper refuses more than 100 with a 431.
const MAX_TRACKED_HEADERS: usize = 128;

/// Where the bytes read so far end, in the message framing.
#[derive(Debug, PartialEq, Eq)]
enum State {
    /// In a request head (its bytes so far are in `head`).
    Head,
    /// In a body of this many more bytes.
    Body(u64),
    /// In a chunk-size line (its bytes so far are in `head`).
    ChunkSize,
    /// In a chunk of this many more bytes.
    ChunkData(u64),
    /// In the line end after a chunk's data.
    ChunkEnd,
    /// In the trailer section after the last chunk (bytes of the current line in `head`).
    Trailers,
    /// Framing not followed any more.
    Lost,
}

#[derive(Debug)]
struct Inner {
    state: State,
    head: Vec<u8>,
    /// For each request head read and not yet taken: whether its target has a fragment.
    fragments: VecDeque<bool>,
}

/// The framing of one connection's requests on hyper's path; shared by its stream
/// (which feeds it what hyper reads) and its service (which takes the notes).
#[derive(Debug)]
pub(super) struct Framing(Mutex<Inner>);

impl Default for Framing {
    fn default() -> Self {
        Self(Mutex::new(Inner {
            state: State::Head,
            head: Vec::new(),
            fragments: VecDeque::new(),
        }))
    }
}

impl Framing {
    /// Follows `bytes`, the next bytes hyper reads from the connection.
    pub(super) fn feed(&self, bytes: &[u8]) {
        let mut inner = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.feed(bytes);
    }

    /// Whether the target of the next request hyper serves had a fragment: `None` once
    /// the framing is not followed.
    pub(super) fn next(&self) -> Option<bool> {
        let mut inner = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.fragments.pop_front()
    }
}

impl Inner {
    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            bytes = match self.state {
                State::Lost => return,
                State::Head => self.head_bytes(bytes),
                State::Body(n) | State::ChunkData(n) => {
                    let take = usize::try_from(n).unwrap_or(usize::MAX).min(bytes.len());
                    let left = n - take as u64;
                    self.state = match (&self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), _) => State::Body(left),
                        (_, 0) => State::ChunkEnd,
                        _ => State::ChunkData(left),
                    };
                    &bytes[take..]
                }
                State::ChunkSize | State::ChunkEnd | State::Trailers => self.line_bytes(bytes),
            };
        }
    }

    /// Head bytes: once the head is complete, its note and the framing of its body.
    fn head_bytes<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let before = self.head.len();
        self.head.extend_from_slice(bytes);
        // A head ends with a line end: no need to parse before one came.
        if !bytes.contains(&b'\n') && self.head.len() <= MAX_TRACKED_HEAD {
            return &[];
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_TRACKED_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let len = match req.parse(&self.head) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) if self.head.len() <= MAX_TRACKED_HEAD => return &[],
            _ => return self.lose(),
        };
        let fragment = req.path.is_some_and(|p| p.contains('#'));
        let body = match body_framing(req.method, req.headers) {
            Some(body) => body,
            None => return self.lose(),
        };
        self.fragments.push_back(fragment);
        self.state = body;
        self.head = Vec::new();
        &bytes[len - before..]
    }

    /// Bytes of a chunk-size line, of the line end after a chunk, or of a trailer line.
    fn line_bytes<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let Some(eol) = bytes.iter().position(|&b| b == b'\n') else {
            if self.head.len() + bytes.len() > MAX_TRACKED_HEAD {
                return self.lose();
            }
            self.head.extend_from_slice(bytes);
            return &[];
        };
        self.head.extend_from_slice(&bytes[..eol]);
        let line = std::mem::take(&mut self.head);
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        self.state = match self.state {
            State::ChunkSize => {
                let size = line.split(|&b| b == b';').next().unwrap_or_default();
                let size = std::str::from_utf8(size.trim_ascii())
                    .ok()
                    .and_then(|s| u64::from_str_radix(s, 16).ok());
                match size {
                    Some(0) => State::Trailers,
                    Some(n) => State::ChunkData(n),
                    None => return self.lose(),
                }
            }
            State::ChunkEnd if line.is_empty() => State::ChunkSize,
            State::Trailers if line.is_empty() => State::Head,
            State::Trailers => State::Trailers,
            _ => return self.lose(),
        };
        &bytes[eol + 1..]
    }

    fn lose<'a>(&mut self) -> &'a [u8] {
        self.state = State::Lost;
        self.head = Vec::new();
        &[]
    }
}

/// How the body after a request head is framed, or `None` where this module does not
/// follow it (see the module's documentation).
fn body_framing(method: Option<&str>, headers: &[httparse::Header<'_>]) -> Option<State> {
    if method == Some("CONNECT") {
        return None;
    }
    let (mut length, mut chunked) = (None, false);
    for h in headers {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next()?.trim_ascii();
            if chunked || !last.eq_ignore_ascii_case(b"chunked") {
                return None;
            }
            chunked = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))?
                .parse::<u64>()
                .ok()?;
            if length.is_some() {
                return None;
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            return None;
        }
    }
    match (chunked, length) {
        (true, Some(_)) => None,
        (true, None) => Some(State::ChunkSize),
        (false, Some(n)) if n > 0 => Some(State::Body(n)),
        (false, _) => Some(State::Head),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notes(chunks: &[&[u8]]) -> Vec<Option<bool>> {
        let f = Framing::default();
        for c in chunks {
            f.feed(c);
        }
        std::iter::from_fn(|| f.next().map(Some))
            .chain([None])
            .collect()
    }

    #[test]
    fn each_head_is_noted_in_order_across_bodies() {
        let raw: &[u8] = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 12\r\n\r\nGET /#x HTTP\
            GET /b#c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;ext=1\r\nGET /\r\n6\r\n#x HTT\r\n0\r\nX-T: 1\r\n\r\n\
            GET /d?e=f HTTP/1.1\r\nHost: h\r\n\r\n";
        let want = vec![Some(false), Some(true), Some(false), None];
        assert_eq!(notes(&[raw]), want);
        // The same bytes one at a time.
        let bytes: Vec<&[u8]> = raw.chunks(1).collect();
        assert_eq!(notes(&bytes), want);
    }

    #[test]
    fn framing_it_does_not_follow_stops_the_notes() {
        for raw in [
            &b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            b"POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
            b"POST /a HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
            b"GET /a HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
            b"GET /a\x01 HTTP/1.1\r\n\r\n",
        ] {
            let mut more = raw.to_vec();
            more.extend_from_slice(b"GET /b#c HTTP/1.1\r\n\r\n");
            assert_eq!(
                notes(&[&more]),
                vec![None],
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        // A bad chunk size.
        let raw =
            b"POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nGET /#x HTTP/1.1\r\n\r\n";
        assert_eq!(notes(&[raw]), vec![Some(false), None]);
    }
}
