//! Writing a response: the head here, the body from memory or with `sendfile(2)`.

use std::io::{self, Write as _};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::header::{self};
use axum::http::{Response, StatusCode};
use bytes::Bytes;
use hyper::body::Body as _;
use tokio::net::TcpStream;

use super::file_body::{FileBody, send_file, send_head_more};

/// Waits until `stream` takes bytes, for at most `timeout`.
pub(super) async fn writable(stream: &TcpStream, timeout: Duration) -> io::Result<()> {
    match tokio::time::timeout(timeout, stream.writable()).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client took no response bytes within the write timeout",
        )),
    }
}

/// Writes `res`: a [`FileBody`] with `sendfile(2)`, any other body from memory; `close`
/// adds `Connection: close` (in place of the handler's `Connection` header, which is kept
/// otherwise). Every wait for the client to take bytes is bounded by `timeout`. Returns
/// the bytes sent with `sendfile`.
pub(super) async fn respond(
    stream: &TcpStream,
    res: Response<Body>,
    close: bool,
    timeout: Duration,
) -> io::Result<u64> {
    let (parts, body) = res.into_parts();
    let status = parts.status;
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut head = Vec::with_capacity(512);
    let _ = write!(
        head,
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in &parts.headers {
        if matches!(*name, header::CONTENT_LENGTH | header::TRANSFER_ENCODING)
            || (close && *name == header::CONNECTION)
        {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        let _ = write!(
            head,
            "date: {}\r\n",
            httpdate::fmt_http_date(SystemTime::now())
        );
    }
    if close {
        head.extend_from_slice(b"connection: close\r\n");
    }
    let file = parts.extensions.get::<FileBody>();
    if let Some(file) = file.filter(|f| !bodiless && body.size_hint().exact() == Some(f.len)) {
        let _ = write!(head, "content-length: {}\r\n\r\n", file.len);
        drop(body);
        send_head_more(stream, &head, timeout).await?;
        send_file(stream, file, timeout).await?;
        return Ok(file.len);
    }
    let bytes = if bodiless {
        Bytes::new()
    } else {
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(io::Error::other)?;
        let _ = write!(head, "content-length: {}\r\n", bytes.len());
        bytes
    };
    head.extend_from_slice(b"\r\n");
    write_all(stream, &head, &bytes, timeout).await?;
    Ok(0)
}

/// Writes `head` then `body`, in one `writev` when the socket takes it all.
async fn write_all(
    stream: &TcpStream,
    mut head: &[u8],
    mut body: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    while !head.is_empty() || !body.is_empty() {
        writable(stream, timeout).await?;
        let bufs = [io::IoSlice::new(head), io::IoSlice::new(body)];
        match stream.try_write_vectored(&bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(mut n) => {
                let h = n.min(head.len());
                head = &head[h..];
                n -= h;
                body = &body[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
