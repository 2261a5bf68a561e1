//! HTTP/1.1 connections: plain GETs are answered here, so that a body also held in a file
//! (a released configuration, [`FileBody`]) goes to the socket with `sendfile(2)` instead
//! of being copied through user space; hyper serves everything else.
//!
//! Why: serving the 1.32 MB corpus configuration, half of the CPU went to the kernel's
//! user-to-socket copy, and nginx skips that copy with sendfile (on this machine nginx
//! serves that file at ~3,400 req/s with sendfile and ~2,100 without; see
//! docs/PERFORMANCE.md).
//!
//! Every request still goes through the same router (auth, metrics, errors, handlers);
//! this module only reads request heads and writes response heads. Whatever it does not
//! take — a method other than GET, a request with a body, HTTP/1.0, an upgrade or
//! `Expect`, a head it cannot parse or larger than [`MAX_HEAD`] — hands the connection,
//! with the bytes already read, to hyper for the rest of its life, and hyper answers as
//! it always does (400, 431, ...).

use std::fs::File;
use std::future::Future;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Method, Request, Response, StatusCode, Version};
use bytes::{Buf as _, Bytes, BytesMut};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::metrics::{ConnServer, HttpMetrics};

/// The largest request head this module parses; a larger one goes to hyper.
pub const MAX_HEAD: usize = 16 * 1024;
/// Headers in one request this module parses; more go to hyper (which allows 100).
const MAX_HEADERS: usize = 100;
/// How long a client may take to send a request head once its first byte has come.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Bodies at least this large get a [`FileBody`]; below it the copy costs less than the
/// extra system call.
pub const FILE_BODY_MIN: usize = 16 * 1024;
/// At most this many file bodies are open at once: each is a file descriptor, and the
/// released configurations of thousands of environments must not starve `accept`. Past
/// it, bodies are sent from memory.
pub const MAX_FILE_BODIES: usize = 256;

static FILE_BODY_SLOTS: Slots = Slots::new(MAX_FILE_BODIES);

/// A counter of things open, with a ceiling.
#[derive(Debug)]
struct Slots {
    open: AtomicUsize,
    max: usize,
}

impl Slots {
    const fn new(max: usize) -> Self {
        Self {
            open: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes a slot, if one is free.
    fn take(&self) -> bool {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    fn give_back(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A memfd holding a slot of [`FILE_BODY_SLOTS`] until it is closed.
#[derive(Debug)]
struct Memfd(File);

impl Drop for Memfd {
    fn drop(&mut self) {
        FILE_BODY_SLOTS.give_back();
    }
}

/// A response body that is also held in a sealed in-memory file, so that the connection
/// can send it with `sendfile(2)`. Put it in the response's extensions beside a body of
/// the same bytes: hyper (and any other server) sends the body, this module the file.
#[derive(Debug, Clone)]
pub struct FileBody {
    file: Arc<Memfd>,
    len: u64,
}

impl FileBody {
    /// The bytes in a new sealed memfd; `None` below [`FILE_BODY_MIN`], off Linux, with
    /// [`MAX_FILE_BODIES`] open, or when the file can't be made (logged): the body is
    /// then sent from memory.
    #[must_use]
    pub fn new(name: &str, bytes: &[u8]) -> Option<Self> {
        if bytes.len() < FILE_BODY_MIN {
            return None;
        }
        if !FILE_BODY_SLOTS.take() {
            tracing::debug!(
                max = MAX_FILE_BODIES,
                "file bodies all in use; sending from memory"
            );
            return None;
        }
        match memfd(name, bytes) {
            Ok(file) => Some(Self {
                file: Arc::new(Memfd(file)),
                len: bytes.len() as u64,
            }),
            Err(e) => {
                FILE_BODY_SLOTS.give_back();
                tracing::debug!(error = %e, "cannot hold a body in a memfd; sending it from memory");
                None
            }
        }
    }
}

#[cfg(target_os = "linux")]
fn memfd(name: &str, bytes: &[u8]) -> io::Result<File> {
    use rustix::fs::{MemfdFlags, SealFlags};
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    // Nobody, this process included, can change it from now on.
    rustix::fs::fcntl_add_seals(
        &file,
        SealFlags::WRITE | SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL,
    )?;
    Ok(file)
}

#[cfg(not(target_os = "linux"))]
fn memfd(_: &str, _: &[u8]) -> io::Result<File> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "memfd is Linux only",
    ))
}

/// Writes `body` to `stream` with `sendfile(2)`.
#[cfg(target_os = "linux")]
async fn send_file(stream: &TcpStream, body: &FileBody) -> io::Result<()> {
    use tokio::io::Interest;
    let mut offset = 0u64;
    while offset < body.len {
        stream.writable().await?;
        let count = usize::try_from(body.len - offset).unwrap_or(usize::MAX);
        match stream.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(stream, &body.file.0, Some(&mut offset), count).map_err(Into::into)
        }) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "sendfile wrote nothing: the body's file is shorter than its length",
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
async fn send_file(_: &TcpStream, _: &FileBody) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "sendfile is Linux only",
    ))
}

/// Writes the head with `MSG_MORE`, so that the kernel sends it in the same segment as
/// the start of the body that follows.
#[cfg(target_os = "linux")]
async fn send_head_more(stream: &TcpStream, mut head: &[u8]) -> io::Result<()> {
    use rustix::net::SendFlags;
    use tokio::io::Interest;
    while !head.is_empty() {
        stream.writable().await?;
        match stream.try_io(Interest::WRITABLE, || {
            rustix::net::send(stream, head, SendFlags::MORE | SendFlags::NOSIGNAL)
                .map_err(Into::into)
        }) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => head = &head[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting and
/// waits for the connections: idle ones are closed, a request in flight is answered
/// first (the caller bounds that wait with its grace period).
///
/// # Errors
/// Never, as it stands: an error accepting a connection is logged and the loop goes on
/// (the `Result` leaves room for listener errors that should stop the server).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    metrics: Arc<HttpMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // The connections watch `signal_tx.closed()`: it completes when `shutdown` has.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    // Every connection holds a receiver; `close_tx.closed()` completes when all are gone.
    let (close_tx, close_rx) = watch::channel(());
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = signal_tx.closed() => break,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let conn = Connection {
            router: router.clone(),
            metrics: metrics.clone(),
            addr,
            signal: signal_tx.clone(),
        };
        let close_rx = close_rx.clone();
        tokio::spawn(async move {
            conn.run(stream).await;
            drop(close_rx);
        });
    }
    drop(close_rx);
    drop(listener);
    close_tx.closed().await;
    Ok(())
}

/// A connection the client dropped before it was accepted is nothing; anything else
/// (out of file descriptors, ...) is logged and the loop pauses, as hyper's servers do.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

struct Connection {
    router: Router,
    metrics: Arc<HttpMetrics>,
    addr: SocketAddr,
    signal: watch::Sender<()>,
}

/// A request head read from the connection.
enum Head {
    /// A GET this module answers: the request, the head's length, whether the client
    /// asked to close the connection after it.
    Get(Box<Request<Body>>, usize, bool),
    /// More bytes are needed.
    Partial,
    /// Hyper's to answer.
    Hyper,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        let metrics = self.metrics.clone();
        let server = self.serve_gets(stream).await;
        metrics.count_connection(server);
    }

    /// Answers GETs until the connection ends (or hands it to hyper).
    async fn serve_gets(self, mut stream: TcpStream) -> ConnServer {
        let mut buf = BytesMut::with_capacity(4096);
        let signal = self.signal.clone();
        let mut shutdown = pin!(signal.closed());
        loop {
            let mut head_deadline = None;
            let (req, head_len, client_close) = loop {
                match parse(&buf) {
                    Head::Get(req, len, close) => break (req, len, close),
                    Head::Partial if buf.len() < MAX_HEAD => {}
                    Head::Partial | Head::Hyper => {
                        self.hyper(stream, buf).await;
                        return ConnServer::Hyper;
                    }
                }
                let read = if buf.is_empty() {
                    // Idle between requests: a shutdown closes the connection.
                    tokio::select! {
                        r = stream.read_buf(&mut buf) => r,
                        () = &mut shutdown => return ConnServer::Jetvault,
                    }
                } else {
                    // The whole head within HEAD_TIMEOUT of its first byte.
                    let deadline =
                        *head_deadline.get_or_insert_with(|| Instant::now() + HEAD_TIMEOUT);
                    match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
                        Ok(r) => r,
                        Err(_) => return ConnServer::Jetvault,
                    }
                };
                match read {
                    Ok(0) | Err(_) => return ConnServer::Jetvault,
                    Ok(_) => {}
                }
            };
            let mut req = *req;
            req.extensions_mut().insert(ConnectInfo(self.addr));
            let res = match self.router.clone().oneshot(req).await {
                Ok(res) => res,
                Err(never) => match never {},
            };
            let close = client_close || self.signal.is_closed();
            match respond(&stream, res, close).await {
                Ok(sent) => self.metrics.count_sendfile(sent),
                Err(e) => {
                    tracing::debug!(error = %e, client = %self.addr, "cannot send a response");
                    return ConnServer::Jetvault;
                }
            }
            buf.advance(head_len);
            if close {
                let _ = stream.shutdown().await;
                return ConnServer::Jetvault;
            }
        }
    }

    /// Hands the connection, and the bytes read from it so far, to hyper.
    async fn hyper(self, stream: TcpStream, read: BytesMut) {
        let Self {
            router,
            addr,
            signal,
            ..
        } = self;
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            router.clone().oneshot(req.map(Body::new))
        });
        let io = TokioIo::new(Rewind {
            read: read.freeze(),
            stream,
        });
        // As `axum::serve` sets it up: no timer, so no header timeout (hyper's would also
        // close idle keep-alive connections after 30 s).
        let builder = hyper::server::conn::http1::Builder::new();
        let mut conn = pin!(builder.serve_connection(io, service));
        let result = tokio::select! {
            r = conn.as_mut() => r,
            () = signal.closed() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, client = %addr, "connection ended with an error");
        }
    }
}

/// Parses the head at the start of `buf`, if it is a GET this module takes.
fn parse(buf: &[u8]) -> Head {
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
            header::CONTENT_LENGTH if h.value != b"0" => return Head::Hyper,
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

/// Writes `res`: a [`FileBody`] with `sendfile(2)`, any other body from memory. Returns
/// the bytes sent with `sendfile`.
async fn respond(stream: &TcpStream, res: Response<Body>, close: bool) -> io::Result<u64> {
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
        if matches!(
            *name,
            header::CONTENT_LENGTH | header::TRANSFER_ENCODING | header::CONNECTION
        ) {
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
        send_head_more(stream, &head).await?;
        send_file(stream, file).await?;
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
    write_all(stream, &head, &bytes).await?;
    Ok(0)
}

/// Writes `head` then `body`, in one `writev` when the socket takes it all.
async fn write_all(stream: &TcpStream, mut head: &[u8], mut body: &[u8]) -> io::Result<()> {
    while !head.is_empty() || !body.is_empty() {
        stream.writable().await?;
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

/// The connection with the bytes already read from it put back in front.
struct Rewind {
    read: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read.is_empty() {
            return Pin::new(&mut this.stream).poll_read(cx, buf);
        }
        let n = this.read.len().min(buf.remaining());
        buf.put_slice(&this.read[..n]);
        this.read.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_get_is_taken_with_its_head_length() {
        let raw = b"GET /v1/x?y=1 HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"e\"\r\n\r\nGET /next";
        let Head::Get(req, len, close) = parse(raw) else {
            panic!("not taken")
        };
        assert_eq!(len, raw.len() - b"GET /next".len());
        assert!(!close);
        assert_eq!(req.uri(), "/v1/x?y=1");
        assert_eq!(req.headers()["if-none-match"], "\"e\"");
    }

    #[test]
    fn connection_close_is_noticed_among_tokens() {
        let raw = b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n";
        assert!(matches!(parse(raw), Head::Get(_, _, true)));
    }

    #[test]
    fn anything_unusual_goes_to_hyper() {
        for raw in [
            &b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"[..],
            b"HEAD / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET http://a/ HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
            b"NONSENSE\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw), Head::Hyper),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn a_head_cut_short_needs_more() {
        assert!(matches!(parse(b""), Head::Partial));
        assert!(matches!(
            parse(b"GET /v1/x HTTP/1.1\r\nHost:"),
            Head::Partial
        ));
    }

    #[test]
    fn small_bodies_get_no_file() {
        assert!(FileBody::new("small", &[b'x'; FILE_BODY_MIN - 1]).is_none());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_body_is_sealed() {
        let f = FileBody::new("sealed", &vec![b'x'; FILE_BODY_MIN]).expect("memfd");
        assert_eq!(f.len, FILE_BODY_MIN as u64);
        let mut file = &f.file.0;
        assert!(file.write_all(b"y").is_err(), "a sealed memfd took a write");
    }

    /// `conn::serve` in this process with `router`; the shutdown sender and the server.
    async fn start(
        router: Router,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<io::Result<()>>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let metrics = Arc::new(HttpMetrics::new(["/"]));
        let server = tokio::spawn(serve(listener, router, metrics, async move {
            let _ = stopped.await;
        }));
        (addr, stop, server)
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_never_ends_is_dropped_after_the_timeout() {
        let (addr, _stop, _server) = start(Router::new()).await;
        let mut client = TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
            .await
            .unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(2 * HEAD_TIMEOUT, client.read_to_end(&mut rest))
            .await
            .expect("the connection is still open after twice the head timeout")
            .unwrap();
        assert!(rest.is_empty(), "{rest:?}");
        assert!(
            started.elapsed() >= HEAD_TIMEOUT,
            "closed after {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_request_in_flight_at_shutdown_is_answered_then_the_connection_closed() {
        let entered = Arc::new(tokio::sync::Notify::new());
        let release = Arc::new(tokio::sync::Notify::new());
        let router = Router::new().route(
            "/slow",
            axum::routing::get({
                let (entered, release) = (entered.clone(), release.clone());
                move || async move {
                    entered.notify_one();
                    release.notified().await;
                    "done"
                }
            }),
        );
        let (addr, stop, server) = start(router).await;
        let mut idle = TcpStream::connect(addr).await.unwrap();
        let mut busy = TcpStream::connect(addr).await.unwrap();
        busy.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        entered.notified().await;

        stop.send(()).unwrap();
        // The idle connection is closed; the busy one is not, yet.
        let mut rest = Vec::new();
        idle.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!server.is_finished(), "stopped with a request in flight");

        release.notify_one();
        let mut answer = String::new();
        busy.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("connection: close\r\n"), "{answer}");
        assert!(answer.ends_with("\r\n\r\ndone"), "{answer}");
        server.await.unwrap().unwrap();
    }

    #[test]
    fn slots_have_a_ceiling_and_come_back() {
        let slots = Slots::new(2);
        assert!(slots.take() && slots.take());
        assert!(!slots.take(), "a third slot of two");
        slots.give_back();
        assert!(slots.take());
    }
}
