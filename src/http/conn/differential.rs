//! The differential test: one corpus of requests, smuggling probes included, sent to
//! jetvault's path (a fresh connection) and to hyper's (a connection handed over by a
//! HEAD first); the answers, and what the handler saw, must match.
//!
//! A fragment in the target (`GET /a#b`) is a 400 on both: hyper's parser (the `http`
//! crate's) drops it, so on hyper's path [`super::framing`] notes it from the bytes.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::tests::{read_head, start};

/// What the handler saw: method, target, version, headers in order, body length.
async fn echo(req: Request) -> String {
    let mut seen = format!("{} {} {:?}\n", req.method(), req.uri(), req.version());
    for (n, v) in req.headers() {
        seen.push_str(&format!("{n}: {}\n", String::from_utf8_lossy(v.as_bytes())));
    }
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await;
    seen.push_str(&format!(
        "body: {:?}\n",
        body.map(|b| b.len()).map_err(|_| ())
    ));
    seen
}

fn router() -> Router {
    Router::new()
        .route("/echo", axum::routing::any(echo))
        .route("/small", axum::routing::get(|| async { "small" }))
}

/// The corpus: each a request (or several) as a client might send it.
const CORPUS: &[&[u8]] = &[
    b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /echo?x=1&y=%20 HTTP/1.1\r\nHost: a:8080\r\nAccept: */*\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, CLOSE\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\nGET /small HTTP/1.1\r\nHost: b\r\n\r\n",
    b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n",
    // Host: missing, twice, invalid, with user information, with a bad port, empty.
    b"GET /echo HTTP/1.1\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: evil@a\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a:80x\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost:\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\nGET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    // Smuggling: CL.TE, TE.CL, duplicate and odd lengths, odd codings.
    b"GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +0\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 0\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /small HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
    b"GET /echo HTTP/1.1\nHost: a\n\n",
    b"GET /echo HTTP/1.1\r\nHost: a\nX-B: c\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nX-N\x00: v\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nX-V: a\x7fb\r\n\r\n",
    b"GET  /echo HTTP/1.1\r\nHost: a\r\n\r\n",
    b"get /echo HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /echo HTTP/1.2\r\nHost: a\r\n\r\n",
    b"GET /echo HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET echo HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET http://a/echo HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
    b"GET /echo HTTP/1.0\r\n\r\n",
    b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\nHost: a\r\n\r\n",
    b"\r\nGET /echo HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HELLO\r\n\r\n",
    // A fragment in the target: alone, after a request on the same connection, after a
    // body of each framing.
    b"GET /echo#frag HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\nGET /small#x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /echo#x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nGET /#x HGET /small#x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n#x \r\n0\r\n\r\nGET /small HTTP/1.1\r\nHost: a\r\n\r\nGET /small#x HTTP/1.1\r\nHost: a\r\n\r\n",
];

/// The answers to `raw` on a fresh connection of jetvault's path, or of hyper's: each
/// response's status line, headers (lowercase, sorted, without `date`) and body, then
/// how the connection ended.
async fn answers(addr: SocketAddr, raw: &[u8], hyper: bool) -> Vec<String> {
    let mut c = TcpStream::connect(addr).await.unwrap();
    if hyper {
        c.write_all(b"HEAD /small HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut c).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    c.write_all(raw).await.unwrap();
    // Then the end of the client's side: every answer is followed by a close.
    let _ = c.shutdown().await;
    let mut bytes = Vec::new();
    let ended = match tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut bytes)).await
    {
        Ok(Ok(_)) => "closed".to_string(),
        Ok(Err(e)) => format!("error {:?}", e.kind()),
        Err(_) => "still open".to_string(),
    };
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(len)) = res.parse(rest) else {
            out.push(format!("unparsed: {:?}", String::from_utf8_lossy(rest)));
            break;
        };
        let mut lines: Vec<String> = res
            .headers
            .iter()
            .filter(|h| !h.name.eq_ignore_ascii_case("date"))
            .map(|h| {
                format!(
                    "{}: {}",
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).to_ascii_lowercase()
                )
            })
            .collect();
        lines.sort();
        let body_len = res
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        let end = (len + body_len).min(rest.len());
        out.push(format!(
            "{:?} {:?}\n{}\n{}",
            res.version,
            res.code,
            lines.join("\n"),
            String::from_utf8_lossy(&rest[len..end])
        ));
        rest = &rest[end..];
    }
    out.push(ended);
    out
}

#[tokio::test]
async fn both_paths_answer_the_corpus_alike() {
    let (addr, _stop, _server) = start(router()).await;
    let mut differ = Vec::new();
    for raw in CORPUS {
        let ours = answers(addr, raw, false).await;
        let hypers = answers(addr, raw, true).await;
        if ours != hypers {
            differ.push(format!(
                "{:?}\n  jetvault: {ours:#?}\n  hyper: {hypers:#?}",
                String::from_utf8_lossy(raw)
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n\n"));
}
