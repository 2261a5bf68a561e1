//! A stream that first yields the bytes already read, for the hand-over to hyper, and
//! that fails a write the client has not let through for [`Rewind::write_timeout`].

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use super::framing::Framing;

/// The connection with the bytes already read from it put back in front.
#[derive(Debug)]
pub(super) struct Rewind {
    pub(super) read: Bytes,
    pub(super) stream: TcpStream,
    /// How long a write may wait for the client to make room.
    pub(super) write_timeout: Duration,
    /// Running while a write waits.
    pub(super) write_timer: Option<Pin<Box<Sleep>>>,
    /// Follows the requests in what is read (for the checks hyper's parser can't make).
    pub(super) framing: Arc<Framing>,
}

impl Rewind {
    pub(super) fn new(
        read: Bytes,
        stream: TcpStream,
        write_timeout: Duration,
        framing: Arc<Framing>,
    ) -> Self {
        Self {
            read,
            stream,
            write_timeout,
            write_timer: None,
            framing,
        }
    }

    /// `poll` (a write or a flush) with the write timeout: a pending write starts the
    /// timer, any progress stops it.
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(Pin<&mut TcpStream>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match poll(Pin::new(&mut self.stream), cx) {
            Poll::Ready(r) => {
                self.write_timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let timeout = self.write_timeout;
                let timer = self
                    .write_timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                ready!(timer.as_mut().poll(cx));
                self.write_timer = None;
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client took no response bytes within the write timeout",
                )))
            }
        }
    }
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read.is_empty() {
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
            this.framing.feed(&buf.filled()[before..]);
            return Poll::Ready(Ok(()));
        }
        let n = this.read.len().min(buf.remaining());
        buf.put_slice(&this.read[..n]);
        this.framing.feed(&this.read[..n]);
        this.read.advance(n);
        if this.read.is_empty() {
            // Frees the buffer jetvault's path read into (up to 16 KiB and more per
            // connection handed over), rather than hold it for the connection's life.
            this.read = Bytes::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().timed(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .timed(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().timed(cx, AsyncWrite::poll_flush)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Closes the connection the way RFC 9112 section 9.6 asks: the write side first, then
/// whatever the client still sends is read and dropped, for at most `linger`, so that
/// closing with unread bytes does not reset the connection and destroy the end of the
/// last response before the client has read it.
pub(super) async fn linger(mut stream: TcpStream, linger: Duration) {
    use tokio::io::AsyncReadExt as _;
    use tokio::io::AsyncWriteExt as _;
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    let _ = tokio::time::timeout(linger, async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
