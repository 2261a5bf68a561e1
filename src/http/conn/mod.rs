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
//!
//! Both paths are bounded ([`Limits`]): a head timeout, an idle keep-alive timeout, a
//! write timeout, a cap on open connections below the open-files limit (at the cap the
//! oldest connection not busy with a request gives way), lingering close, and the `Host`
//! and target checks of RFC 9112 ([`check`]).

use std::future::Future;
use std::io::{self};
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use bytes::{Buf as _, BytesMut};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::metrics::{ConnServer, HttpMetrics};

mod check;
#[cfg(test)]
mod differential;
mod file_body;
mod framing;
mod head;
mod respond;
mod rewind;
mod slots;
#[cfg(test)]
mod tests;

pub use file_body::FileBody;
use head::{Head, parse};
use respond::respond;
use rewind::{Rewind, linger};
use slots::{Registry, Slot, Ticket};

/// The largest request head this module parses; a larger one goes to hyper.
pub const MAX_HEAD: usize = 16 * 1024;
/// Headers in one request this module parses; more go to hyper (which allows 100).
const MAX_HEADERS: usize = 100;
/// How long a client may take to send a request head: from the connection's accept for
/// the first request, from the head's first byte for the next ones; on both paths.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a keep-alive connection may stay idle between requests on jetvault's path;
/// hyper's path closes an idle connection after [`HEAD_TIMEOUT`] (its header timer runs
/// from the end of the previous response).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a response write may wait for the client to take bytes, on both paths.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a closing connection reads and drops what the client still sends, after
/// its write side is shut (lingering close, RFC 9112 section 9.6).
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
/// The most connections open at once, whatever the open-files limit.
pub const MAX_CONNECTIONS: usize = 10_000;
/// File descriptors kept out of the connections' share of the open-files limit: the
/// file bodies ([`MAX_FILE_BODIES`]), the store, the logs, the scheduler's clients.
pub const RESERVED_FDS: usize = MAX_FILE_BODIES + 128;
/// How long `accept` pauses when the process is out of file descriptors (after asking an
/// idle connection to give way).
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Bodies at least this large get a [`FileBody`]; below it the copy costs less than the
/// extra system call.
pub const FILE_BODY_MIN: usize = 16 * 1024;
/// At most this many file bodies are open at once: each is a file descriptor, and the
/// released configurations of thousands of environments must not starve `accept`. Past
/// it, bodies are sent from memory.
pub const MAX_FILE_BODIES: usize = 256;

/// The bounds on connections; [`Limits::default`] is the constants above, with the cap
/// on connections the smaller of [`MAX_CONNECTIONS`] and the open-files limit less
/// [`RESERVED_FDS`].
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// [`HEAD_TIMEOUT`].
    pub head: Duration,
    /// [`IDLE_TIMEOUT`].
    pub idle: Duration,
    /// [`WRITE_TIMEOUT`].
    pub write: Duration,
    /// [`LINGER_TIMEOUT`].
    pub linger: Duration,
    /// The most connections open at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            head: HEAD_TIMEOUT,
            idle: IDLE_TIMEOUT,
            write: WRITE_TIMEOUT,
            linger: LINGER_TIMEOUT,
            max_connections: slots::cap_for_fd_limit(MAX_CONNECTIONS, RESERVED_FDS),
        }
    }
}

impl Limits {
    /// The limits of the `[server]` settings: its timeouts, and its connection cap kept
    /// under the open-files limit less [`RESERVED_FDS`] (0: that limit alone).
    #[must_use]
    pub fn from_config(server: &jetvault_core::config::ServerConfig) -> Self {
        let wanted = match server.max_connections {
            0 => 1_000_000,
            n => n,
        };
        Self {
            head: server.head_timeout,
            idle: server.idle_timeout,
            write: server.write_timeout,
            linger: LINGER_TIMEOUT,
            max_connections: slots::cap_for_fd_limit(wanted, RESERVED_FDS),
        }
    }
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
    serve_with(listener, router, metrics, Limits::default(), shutdown).await
}

/// [`serve`] with other [`Limits`].
///
/// # Errors
/// As [`serve`].
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    metrics: Arc<HttpMetrics>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // The connections watch `signal_tx.closed()`: it completes when `shutdown` has.
    let (signal_tx, signal_rx) = watch::channel(());
    tokio::spawn(async move {
        shutdown.await;
        drop(signal_rx);
    });
    let registry = Registry::new(limits.max_connections);
    tracing::debug!(max_connections = registry.cap(), "serving HTTP");
    // Every connection holds a receiver; `close_tx.closed()` completes when all are gone.
    let (close_tx, close_rx) = watch::channel(());
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = signal_tx.closed() => break,
        };
        let (stream, addr) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                accept_error(e, &registry).await;
                continue;
            }
        };
        // At the cap, the oldest connection not busy with a request gives way to this
        // one; while every one is busy, this one waits (and the rest wait in the
        // listener's backlog).
        tokio::select! {
            () = registry.wait_for_room() => {}
            () = signal_tx.closed() => break,
        }
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let conn = Connection {
            router: router.clone(),
            metrics: metrics.clone(),
            addr,
            signal: signal_tx.clone(),
            limits,
            ticket: registry.register(),
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

/// A connection the client dropped before it was accepted is nothing. Out of file
/// descriptors (or memory), the oldest idle connection is asked to give way and `accept`
/// pauses for [`ACCEPT_BACKOFF`] rather than spin on the error; anything else is logged
/// and the loop pauses for a second.
async fn accept_error(e: io::Error, registry: &Registry) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    let out_of_resources = e.raw_os_error().is_some_and(|n| {
        [
            rustix::io::Errno::MFILE,
            rustix::io::Errno::NFILE,
            rustix::io::Errno::NOBUFS,
            rustix::io::Errno::NOMEM,
        ]
        .iter()
        .any(|errno| errno.raw_os_error() == n)
    });
    if out_of_resources {
        let evicted = registry.evict_one();
        tracing::warn!(error = %e, open = registry.len(), evicted,
            "cannot accept a connection: out of resources; backing off");
        tokio::time::sleep(ACCEPT_BACKOFF).await;
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
    limits: Limits,
    ticket: Ticket,
}

/// How a wait for request bytes ended, other than with bytes.
enum Stop {
    /// End of file, an error, a timeout, shutdown or eviction: close at once.
    Close,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        let metrics = self.metrics.clone();
        let server = self.serve_gets(stream).await;
        metrics.count_connection(server);
    }

    /// Reads more of a request head into `buf`, within `deadline`; `idle` when no byte
    /// of it has come yet (then shutdown closes the connection too).
    async fn read_more(
        &self,
        stream: &mut TcpStream,
        buf: &mut BytesMut,
        deadline: Instant,
        idle: bool,
    ) -> Result<(), Stop> {
        let slot = &self.ticket.slot;
        let read = tokio::select! {
            r = stream.read_buf(buf) => r,
            () = tokio::time::sleep_until(deadline) => return Err(Stop::Close),
            () = slot.evicted() => return Err(Stop::Close),
            () = self.signal.closed(), if idle => return Err(Stop::Close),
        };
        match read {
            Ok(0) | Err(_) => Err(Stop::Close),
            Ok(_) => Ok(()),
        }
    }

    /// Answers GETs until the connection ends (or hands it to hyper).
    async fn serve_gets(self, mut stream: TcpStream) -> ConnServer {
        let mut buf = BytesMut::with_capacity(4096);
        // The first request's head is due within the head timeout of the accept.
        let mut idle_deadline = Instant::now() + self.limits.head;
        let mut first = true;
        loop {
            let mut head_deadline = None;
            let parsed = loop {
                match parse(&buf) {
                    Head::Partial if buf.len() < MAX_HEAD => {}
                    Head::Partial | Head::Hyper => {
                        let deadline = head_deadline.unwrap_or(idle_deadline);
                        self.hyper(stream, buf, deadline).await;
                        return ConnServer::Hyper;
                    }
                    done => break done,
                }
                let (deadline, idle) = if buf.is_empty() {
                    (idle_deadline, true)
                } else {
                    // The whole head within the head timeout of its first byte (of the
                    // accept, for the first request).
                    let d = *head_deadline.get_or_insert_with(|| {
                        if first {
                            idle_deadline
                        } else {
                            Instant::now() + self.limits.head
                        }
                    });
                    (d, false)
                };
                if self
                    .read_more(&mut stream, &mut buf, deadline, idle)
                    .await
                    .is_err()
                {
                    return ConnServer::Jetvault;
                }
            };
            self.ticket.slot.set_busy(true);
            let (res, head_len, mut close) = match parsed {
                Head::Get(req, len, close) => {
                    let mut req = *req;
                    req.extensions_mut().insert(ConnectInfo(self.addr));
                    let res = match check::check_host(req.version(), req.headers()) {
                        Ok(()) => match self.router.clone().oneshot(req).await {
                            Ok(res) => res,
                            Err(never) => match never {},
                        },
                        Err(why) => check::bad_request(why),
                    };
                    (res, len, close)
                }
                Head::Bad(why, len) => (check::bad_request(why), len, true),
                Head::Partial | Head::Hyper => unreachable!("handled above"),
            };
            close |= self.signal.is_closed() || check::wants_close(res.headers());
            let sent = respond(&stream, res, close, self.limits.write).await;
            self.ticket.slot.set_busy(false);
            match sent {
                Ok(sent) => self.metrics.count_sendfile(sent),
                Err(e) => {
                    tracing::debug!(error = %e, client = %self.addr, "cannot send a response");
                    return ConnServer::Jetvault;
                }
            }
            buf.advance(head_len);
            if close {
                linger(stream, self.limits.linger).await;
                return ConnServer::Jetvault;
            }
            idle_deadline = Instant::now() + self.limits.idle;
            first = false;
        }
    }

    /// Hands the connection, and the bytes read from it so far, to hyper; the request
    /// hyper reads first is due by `head_deadline`.
    async fn hyper(self, stream: TcpStream, read: BytesMut, head_deadline: Instant) {
        let Self {
            router,
            addr,
            signal,
            limits,
            ticket,
            ..
        } = self;
        let slot = ticket.slot.clone();
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let framing = Arc::new(framing::Framing::default());
        let service = hyper::service::service_fn({
            let (slot, started, framing) = (slot.clone(), started.clone(), framing.clone());
            move |mut req: Request<Incoming>| {
                started.store(true, std::sync::atomic::Ordering::Release);
                slot.set_busy(true);
                req.extensions_mut().insert(ConnectInfo(addr));
                let router = router.clone();
                let slot = slot.clone();
                // hyper's `Uri` has dropped a fragment: the framing saw it.
                let fragment = framing.next() == Some(true);
                Box::pin(async move {
                    // The target first, as on jetvault's path.
                    let checked = if fragment {
                        check::check_target("#")
                    } else {
                        check::check_host(req.version(), req.headers())
                    };
                    let res = match checked {
                        Ok(()) => match router.oneshot(req.map(Body::new)).await {
                            Ok(res) => res,
                            Err(never) => match never {},
                        },
                        Err(why) => check::bad_request(why),
                    };
                    Ok::<_, std::convert::Infallible>(res.map(|body| {
                        Body::new(Busy {
                            body,
                            slot: Some(slot),
                        })
                    }))
                })
            }
        });
        let io = TokioIo::new(Rewind::new(read.freeze(), stream, limits.write, framing));
        let mut builder = hyper::server::conn::http1::Builder::new();
        // Half-closed: a client that shut its side after its requests still gets every
        // answer, as on jetvault's path.
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.head)
            .half_close(true);
        let mut conn = builder.serve_connection(io, service);
        let first_head = tokio::time::sleep_until(head_deadline);
        let mut first_head = pin!(first_head);
        let mut shutting_down = false;
        let mut first_head_done = false;
        let result = loop {
            tokio::select! {
                r = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break r,
                () = &mut first_head, if !first_head_done => {
                    if started.load(std::sync::atomic::Ordering::Acquire) {
                        // The first head came in time; hyper's timer takes over.
                        first_head_done = true;
                        continue;
                    }
                    // The head begun on jetvault's path did not end in time.
                    return;
                }
                () = slot.evicted() => {
                    if !slot.is_busy() {
                        return;
                    }
                    std::pin::Pin::new(&mut conn).graceful_shutdown();
                    shutting_down = true;
                }
                () = signal.closed(), if !shutting_down => {
                    std::pin::Pin::new(&mut conn).graceful_shutdown();
                    shutting_down = true;
                }
            }
        };
        if let Err(e) = &result {
            tracing::debug!(error = %e, client = %addr, "connection ended with an error");
        }
        let stream = conn.into_parts().io.into_inner().stream;
        linger(stream, limits.linger).await;
        drop(ticket);
    }
}

/// A response body that marks its connection busy until it has been sent (dropped).
struct Busy {
    body: Body,
    slot: Option<Arc<Slot>>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(slot) = self.slot.take() {
            slot.set_busy(false);
        }
    }
}

impl hyper::body::Body for Busy {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
