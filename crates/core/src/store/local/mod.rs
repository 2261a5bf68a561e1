//! A store in a local directory, with the same semantics as S3.
//!
//! Object `k` is the file `<root>/k`, byte for byte, so `zstd -d` works on it directly;
//! its etag and metadata live in `<root>/.jvmeta/k`. One lock file serialises writers
//! (exclusive) against readers (shared) across processes, which makes create-only and
//! compare-and-swap atomic and reads never torn.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Conditional, Leftover, ListPage, Metadata, Object, ObjectInfo, PutMode, Store};
use crate::error::{Error, Result};

mod leftovers;

const META_DIR: &str = ".jvmeta";
const LOCK_FILE: &str = ".jvlock";
const HIDDEN_PREFIX: &str = ".jv";

/// How long an operation waits for the directory's lock by default before the store
/// answers `Unavailable`: a process that holds it longer (a stuck writer, a `flock` by
/// hand) must not stall readers without bound.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// A directory that holds objects as files.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    lock_wait: Duration,
    /// Orders this process's own readers and writers before they take the lock file, so
    /// that many tasks of one process queue fairly here and the bounded wait on the lock
    /// file measures only other processes.
    gate: Arc<RwLock<()>>,
}

/// The lock held: this process's gate and the directory's lock file (released first).
struct Held<'a> {
    _file: Option<File>,
    _gate: Gate<'a>,
}

enum Gate<'a> {
    Shared(#[allow(dead_code)] RwLockReadGuard<'a, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'a, ()>),
}

#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    etag: String,
    #[serde(default)]
    metadata: Metadata,
}

impl LocalStore {
    /// Opens (without touching the disk) the store rooted at `root`; the directory is
    /// created on the first write.
    ///
    /// # Errors
    /// `InvalidInput` if `root` is not an absolute path.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        if !root.is_absolute() {
            return Err(Error::invalid(format!(
                "store directory {} is not an absolute path; use file:///absolute/path",
                root.display()
            )));
        }
        Ok(Self {
            root,
            lock_wait: LOCK_WAIT,
            gate: Arc::default(),
        })
    }

    /// The root directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn data_path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.root.join(META_DIR).join(key)
    }

    fn io_err(&self, doing: &str, path: &Path, e: io::Error) -> Error {
        Error::unavailable(format!(
            "local store {}: cannot {doing} {}: {e}; check that the directory exists and is \
             writable by this user",
            self.root.display(),
            path.display()
        ))
        .with_source(e)
    }

    /// How long a read or write waits for the lock before the store answers
    /// `Unavailable` (default [`LOCK_WAIT`]).
    #[must_use]
    pub fn with_lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = wait;
        self
    }

    /// Takes the lock: exclusive for writers, shared for readers, waiting at most
    /// `lock_wait`. `None`: a reader of a directory it cannot write, whose lock file does
    /// not exist (no writer has ever used the directory, and none can create the file
    /// the reader could not).
    fn lock(&self, exclusive: bool) -> Result<Held<'_>> {
        let gate = if exclusive {
            Gate::Exclusive(self.gate.write().unwrap_or_else(PoisonError::into_inner))
        } else {
            Gate::Shared(self.gate.read().unwrap_or_else(PoisonError::into_inner))
        };
        Ok(Held {
            _file: self.lock_file(exclusive)?,
            _gate: gate,
        })
    }

    fn lock_file(&self, exclusive: bool) -> Result<Option<File>> {
        let path = self.root.join(LOCK_FILE);
        let Some(file) = self.open_lock(&path, exclusive)? else {
            return Ok(None);
        };
        let deadline = Instant::now() + self.lock_wait;
        let mut pause = Duration::from_millis(2);
        loop {
            let tried = if exclusive {
                file.try_lock()
            } else {
                file.try_lock_shared()
            };
            match tried {
                Ok(()) => return Ok(Some(file)),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(
                        pause.min(deadline.saturating_duration_since(Instant::now())),
                    );
                    pause = (pause * 2).min(Duration::from_millis(100));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::unavailable(format!(
                        "local store {}: another process has held the lock {} for more than \
                         {} ms (a backup, release or restore in progress, or a stuck process); \
                         try again when it finishes",
                        self.root.display(),
                        path.display(),
                        self.lock_wait.as_millis()
                    )));
                }
                Err(TryLockError::Error(e)) => return Err(self.io_err("lock", &path, e)),
            }
        }
    }

    /// Opens the lock file: read-write (creating it and the directory) for writers, and
    /// for readers where the directory is writable; read-only for readers of a
    /// read-only directory (a shared lock needs no write access).
    fn open_lock(&self, path: &Path, exclusive: bool) -> Result<Option<File>> {
        let open_rw = || {
            OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(path)
        };
        let rw = match open_rw() {
            Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir_all(&self.root) {
                Ok(()) => open_rw(),
                Err(c) if !exclusive && cannot_write(&c) => Err(c),
                Err(c) => return Err(self.io_err("create", &self.root, c)),
            },
            r => r,
        };
        match rw {
            Ok(f) => Ok(Some(f)),
            Err(e) if !exclusive && cannot_write(&e) => {
                match OpenOptions::new().read(true).open(path) {
                    Ok(f) => Ok(Some(f)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(self.io_err("open", path, e)),
                }
            }
            Err(e) => Err(self.io_err("open", path, e)),
        }
    }

    fn read_info(&self, key: &str) -> Result<Option<(ObjectInfo, PathBuf)>> {
        let path = self.data_path(key);
        let stat = match fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(20) => return Ok(None), // ENOTDIR
            Err(e) => return Err(self.io_err("read", &path, e)),
        };
        let sidecar = match fs::read(self.meta_path(key)) {
            Ok(b) => serde_json::from_slice::<Sidecar>(&b).ok(),
            Err(_) => None,
        };
        let (etag, metadata) = match sidecar {
            Some(s) => (s.etag, s.metadata),
            None => {
                // Written by hand: derive the etag from the content.
                let data = fs::read(&path).map_err(|e| self.io_err("read", &path, e))?;
                (etag_of(&data), Metadata::new())
            }
        };
        let info = ObjectInfo {
            key: key.to_string(),
            size: stat.len(),
            etag,
            last_modified: stat.modified().ok().map(DateTime::<Utc>::from),
            metadata,
        };
        Ok(Some((info, path)))
    }

    fn get_sync(&self, key: &str) -> Result<Object> {
        check_key(key)?;
        let _lock = self.lock(false)?;
        let (info, path) = self.read_info(key)?.ok_or_else(|| self.not_found(key))?;
        let bytes = fs::read(&path).map_err(|e| self.io_err("read", &path, e))?;
        Ok(Object {
            info,
            bytes: Bytes::from(bytes),
        })
    }

    fn not_found(&self, key: &str) -> Error {
        Error::not_found(format!(
            "object {key} not found in local store {}",
            self.root.display()
        ))
    }

    fn put_sync(
        &self,
        key: &str,
        bytes: &[u8],
        metadata: &Metadata,
        mode: &PutMode,
    ) -> Result<String> {
        check_key(key)?;
        let _lock = self.lock(true)?;
        let current = self.read_info(key)?;
        match (mode, &current) {
            (PutMode::Create, Some(_)) => {
                return Err(Error::already_exists(format!(
                    "object {key} already exists in local store {}",
                    self.root.display()
                )));
            }
            (PutMode::Update { .. }, None) => return Err(self.not_found(key)),
            (PutMode::Update { etag }, Some((info, _))) if &info.etag != etag => {
                return Err(Error::precondition(format!(
                    "object {key} in local store {} changed since it was read (etag {} is \
                     now {})",
                    self.root.display(),
                    etag,
                    info.etag
                )));
            }
            _ => {}
        }
        let etag = etag_of(bytes);
        let sidecar = serde_json::to_vec(&Sidecar {
            etag: etag.clone(),
            metadata: metadata.clone(),
        })
        .map_err(|e| Error::internal(format!("cannot encode metadata of {key}: {e}")))?;
        // Metadata first, then the content: a reader never sees content without its
        // metadata, and a crash in between leaves the old object (or none) visible.
        self.write_atomic(&self.meta_path(key), &sidecar)?;
        self.write_atomic(&self.data_path(key), bytes)?;
        Ok(etag)
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        let dir = path
            .parent()
            .ok_or_else(|| Error::internal(format!("{} has no parent", path.display())))?;
        fs::create_dir_all(dir).map_err(|e| self.io_err("create", dir, e))?;
        super::atomic::write_atomic(path, leftovers::TEMP_PREFIX, bytes, |_| Ok(()))
            .map_err(|e| self.io_err("write", path, e))
    }

    fn delete_sync(&self, key: &str) -> Result<()> {
        check_key(key)?;
        let _lock = self.lock(true)?;
        for path in [self.data_path(key), self.meta_path(key)] {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.io_err("delete", &path, e)),
            }
        }
        Ok(())
    }

    fn list_sync(&self, prefix: &str, start_after: Option<&str>, limit: usize) -> Result<ListPage> {
        let (dir_part, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        if !dir_part.is_empty() {
            check_key(dir_part)?;
        }
        let _lock = self.lock(false)?;
        let mut keys = Vec::new();
        let base = self.root.join(dir_part);
        self.walk(&base, dir_part, &mut keys)?;
        keys.retain(|k| k.starts_with(prefix) && start_after.is_none_or(|s| k.as_str() > s));
        keys.sort_unstable();
        let truncated = keys.len() > limit;
        keys.truncate(limit);
        let mut objects = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some((mut info, _)) = self.read_info(&key)? {
                info.metadata.clear();
                objects.push(info);
            }
        }
        Ok(ListPage { objects, truncated })
    }

    fn walk(&self, dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(20) => return Ok(()),
            Err(e) => return Err(self.io_err("list", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.io_err("list", dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with(HIDDEN_PREFIX) {
                continue;
            }
            let key = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let ft = entry.file_type().map_err(|e| self.io_err("list", dir, e))?;
            if ft.is_dir() {
                self.walk(&entry.path(), &key, out)?;
            } else if ft.is_file() {
                out.push(key);
            }
        }
        Ok(())
    }

    fn list_dirs_sync(&self, prefix: &str) -> Result<Vec<String>> {
        let dir = prefix.trim_end_matches('/');
        if !dir.is_empty() {
            check_key(dir)?;
        }
        let _lock = self.lock(false)?;
        let path = self.root.join(dir);
        let entries = match fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io_err("list", &path, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.io_err("list", &path, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !name.starts_with(HIDDEN_PREFIX)
                && entry.file_type().is_ok_and(|t| t.is_dir())
                && has_files(&entry.path())
            {
                out.push(name);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    fn check_sync(&self) -> Result<()> {
        // Taking the lock creates the directory if needed and proves it is writable.
        self.lock(true).map(drop)
    }
}

/// Whether an error says this process may not write there (permissions, a read-only
/// mount), as opposed to the directory being broken.
fn cannot_write(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    ) || e.raw_os_error() == Some(1) // EPERM
}

fn has_files(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let hidden = name.to_string_lossy().starts_with(HIDDEN_PREFIX);
            !hidden
                && e.file_type()
                    .is_ok_and(|t| t.is_file() || (t.is_dir() && has_files(&e.path())))
        })
    })
}

/// The etag of some content: a quoted content hash, like S3's.
fn etag_of(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

fn check_key(key: &str) -> Result<()> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.contains('\\')
        || key.contains('\0')
        || key.split('/').any(|seg| {
            seg.is_empty() || seg == "." || seg == ".." || seg.starts_with(HIDDEN_PREFIX)
        });
    if bad {
        return Err(Error::invalid(format!(
            "invalid object key {key:?} for the local store: keys are '/'-separated \
             non-empty segments other than '.', '..' and names starting with '{HIDDEN_PREFIX}'"
        )));
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("local store task failed: {e}")))?
}

#[async_trait]
impl Store for LocalStore {
    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }

    async fn get(&self, key: &str) -> Result<Object> {
        let (this, key) = (self.clone(), key.to_string());
        blocking(move || this.get_sync(&key)).await
    }

    async fn get_if_none_match(&self, key: &str, etag: &str) -> Result<Conditional> {
        let (this, key, etag) = (self.clone(), key.to_string(), etag.to_string());
        blocking(move || {
            check_key(&key)?;
            let info = {
                let _lock = this.lock(false)?;
                this.read_info(&key)?.map(|(i, _)| i)
            };
            match info {
                Some(i) if i.etag == etag => Ok(Conditional::NotModified),
                Some(_) => this.get_sync(&key).map(Conditional::Modified),
                None => Err(this.not_found(&key)),
            }
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo> {
        let (this, key) = (self.clone(), key.to_string());
        blocking(move || {
            check_key(&key)?;
            let _lock = this.lock(false)?;
            this.read_info(&key)?
                .map(|(i, _)| i)
                .ok_or_else(|| this.not_found(&key))
        })
        .await
    }

    async fn put(
        &self,
        key: &str,
        bytes: Bytes,
        metadata: &Metadata,
        mode: PutMode,
    ) -> Result<String> {
        let (this, key, metadata) = (self.clone(), key.to_string(), metadata.clone());
        blocking(move || this.put_sync(&key, &bytes, &metadata, &mode)).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        let (this, prefix) = (self.clone(), prefix.to_string());
        let start_after = start_after.map(str::to_string);
        blocking(move || this.list_sync(&prefix, start_after.as_deref(), limit)).await
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let (this, prefix) = (self.clone(), prefix.to_string());
        blocking(move || this.list_dirs_sync(&prefix)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let (this, key) = (self.clone(), key.to_string());
        blocking(move || this.delete_sync(&key)).await
    }

    async fn check(&self) -> Result<()> {
        let this = self.clone();
        blocking(move || this.check_sync()).await
    }

    async fn leftovers(&self, prefix: &str, grace: Duration) -> Result<Vec<Leftover>> {
        let (this, prefix) = (self.clone(), prefix.to_string());
        blocking(move || this.leftovers_sync(&prefix, grace)).await
    }

    async fn remove_leftover(&self, leftover: &Leftover, grace: Duration) -> Result<bool> {
        let (this, leftover) = (self.clone(), leftover.clone());
        blocking(move || this.remove_leftover_sync(&leftover, grace)).await
    }
}

#[cfg(test)]
mod tests;
