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
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::metrics::{ConnServer, HttpMetrics};

mod file_body;
mod head;
mod respond;
mod rewind;
#[cfg(test)]
mod tests;

pub use file_body::FileBody;
use head::{Head, parse};
use respond::respond;
use rewind::Rewind;

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
