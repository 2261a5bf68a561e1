//! A live configuration in a local file, replaced atomically (temp file and rename).

use std::io::{self, Read};
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;

use super::LiveTarget;
use crate::error::{Error, Result};
use crate::store::atomic::write_atomic;

/// A file on this machine.
#[derive(Debug, Clone)]
pub struct FileTarget {
    path: PathBuf,
}

impl FileTarget {
    /// A target at `path`.
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    fn err(&self, doing: &str, e: &io::Error) -> Error {
        let msg = format!("cannot {doing} live file {}: {e}", self.path.display());
        if e.kind() == io::ErrorKind::NotFound {
            Error::live_missing(msg)
        } else {
            Error::unavailable(msg)
        }
    }
}

#[async_trait]
impl LiveTarget for FileTarget {
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    async fn read(&self, limit: u64) -> Result<Bytes> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&this.path).map_err(|e| this.err("read", &e))?;
            let mut buf = Vec::new();
            file.take(limit + 1)
                .read_to_end(&mut buf)
                .map_err(|e| this.err("read", &e))?;
            if buf.len() as u64 > limit {
                return Err(Error::too_large(format!(
                    "live file {} is larger than the {limit}-byte limit; raise \
                     snapshots.max_size if this is expected",
                    this.path.display()
                )));
            }
            Ok(Bytes::from(buf))
        })
        .await
        .map_err(|e| Error::internal(format!("file read task failed: {e}")))?
    }

    async fn write(&self, bytes: Bytes) -> Result<()> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let name = this
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            // Keep the permissions of the file being replaced.
            let keep = std::fs::metadata(&this.path).ok().map(|m| m.permissions());
            write_atomic(&this.path, &format!(".{name}.jetvault-"), &bytes, |tmp| {
                keep.map_or(Ok(()), |p| tmp.set_permissions(p))
            })
            .map_err(|e| this.err("write", &e))?;
            Ok(())
        })
        .await
        .map_err(|e| Error::internal(format!("file write task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_atomically_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let t = FileTarget::new(dir.path().join("live.json"));
        assert_eq!(
            t.read(10).await.unwrap_err().kind(),
            crate::error::ErrorKind::LiveMissing
        );
        t.write(Bytes::from_static(b"{\"a\":1}")).await.unwrap();
        assert_eq!(&t.read(100).await.unwrap()[..], b"{\"a\":1}");
        assert_eq!(
            t.read(3).await.unwrap_err().kind(),
            crate::error::ErrorKind::TooLarge
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
    }
}
