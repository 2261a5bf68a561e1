//! Bodies held in a sealed memfd and sent with `sendfile(2)`, with a ceiling on how many
//! are open at once.

use std::fs::File;
use std::io::{self, Write as _};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;

use super::{FILE_BODY_MIN, MAX_FILE_BODIES};

pub(super) static FILE_BODY_SLOTS: Slots = Slots::new(MAX_FILE_BODIES);

/// A counter of things open, with a ceiling.
#[derive(Debug)]
pub(super) struct Slots {
    open: AtomicUsize,
    max: usize,
}

impl Slots {
    pub(super) const fn new(max: usize) -> Self {
        Self {
            open: AtomicUsize::new(0),
            max,
        }
    }

    /// Takes a slot, if one is free.
    pub(super) fn take(&self) -> bool {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok()
    }

    pub(super) fn give_back(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A memfd holding a slot of [`FILE_BODY_SLOTS`] until it is closed.
#[derive(Debug)]
pub(super) struct Memfd(pub(super) File);

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
    pub(super) file: Arc<Memfd>,
    pub(super) len: u64,
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
pub(super) async fn send_file(
    stream: &TcpStream,
    body: &FileBody,
    timeout: Duration,
) -> io::Result<()> {
    use tokio::io::Interest;
    let mut offset = 0u64;
    while offset < body.len {
        super::respond::writable(stream, timeout).await?;
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
pub(super) async fn send_file(_: &TcpStream, _: &FileBody, _: Duration) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "sendfile is Linux only",
    ))
}

/// Writes the head with `MSG_MORE`, so that the kernel sends it in the same segment as
/// the start of the body that follows.
#[cfg(target_os = "linux")]
pub(super) async fn send_head_more(
    stream: &TcpStream,
    mut head: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    use rustix::net::SendFlags;
    use tokio::io::Interest;
    while !head.is_empty() {
        super::respond::writable(stream, timeout).await?;
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
