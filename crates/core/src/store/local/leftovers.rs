//! What a killed writer leaves in a directory store: temporary files of atomic writes
//! (`.jvtmp-*`, beside the object or its metadata) that were never renamed into place,
//! and metadata files whose object was never written (a put writes the metadata first)
//! or was deleted (a delete removes the object first).
//!
//! Writers hold the directory's lock while such files exist, so a reader holding the
//! shared lock only ever sees those of writers that died; the grace period is a second
//! guard (a writer on another host over a file system whose locks do not reach it).

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::{HIDDEN_PREFIX, LocalStore, META_DIR, check_key};
use crate::error::{Error, Result};
use crate::store::{Leftover, LeftoverKind};

/// The start of a temporary file's name.
pub(super) const TEMP_PREFIX: &str = ".jvtmp-";

impl LocalStore {
    pub(super) fn leftovers_sync(&self, prefix: &str, grace: Duration) -> Result<Vec<Leftover>> {
        let dir = prefix.trim_end_matches('/');
        if !dir.is_empty() {
            check_key(dir)?;
        }
        let _lock = self.lock(false)?;
        let mut out = Vec::new();
        let now = SystemTime::now();
        let mut found = |path: &Path, kind: LeftoverKind| {
            let Ok(rel) = path.strip_prefix(&self.root) else {
                return;
            };
            let Some(rel) = rel.to_str() else { return };
            let modified = fs::symlink_metadata(path).and_then(|m| m.modified()).ok();
            if modified.is_some_and(|m| now.duration_since(m).unwrap_or_default() >= grace) {
                out.push(Leftover {
                    path: rel.to_string(),
                    kind,
                    modified: modified.map(DateTime::<Utc>::from),
                });
            }
        };
        let data = self.root.join(dir);
        let meta = self.root.join(META_DIR).join(dir);
        self.scan(&data, &mut |p, name| {
            if name.starts_with(TEMP_PREFIX) {
                found(p, LeftoverKind::TempFile);
            }
        })?;
        self.scan(&meta, &mut |p, name| {
            if name.starts_with(TEMP_PREFIX) {
                found(p, LeftoverKind::TempFile);
            } else if !name.starts_with(HIDDEN_PREFIX)
                && let Ok(rel) = p.strip_prefix(self.root.join(META_DIR))
                && !self.root.join(rel).is_file()
            {
                found(p, LeftoverKind::OrphanMetadata);
            }
        })?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Calls `f(path, file name)` for every file below `dir`, hidden ones included.
    fn scan(&self, dir: &Path, f: &mut dyn FnMut(&Path, &str)) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(20) => return Ok(()), // ENOTDIR
            Err(e) => return Err(self.io_err("list", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| self.io_err("list", dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let ft = entry.file_type().map_err(|e| self.io_err("list", dir, e))?;
            if ft.is_dir() && !name.starts_with(HIDDEN_PREFIX) {
                self.scan(&entry.path(), f)?;
            } else if ft.is_file() {
                f(&entry.path(), &name);
            }
        }
        Ok(())
    }

    pub(super) fn remove_leftover_sync(
        &self,
        leftover: &Leftover,
        grace: Duration,
    ) -> Result<bool> {
        let path = self.leftover_path(leftover)?;
        let _lock = self.lock(true)?;
        // Still what it was named as, and still old enough?
        let stat = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(self.io_err("read", &path, e)),
        };
        let age = stat
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok());
        if age.is_none_or(|a| a < grace) {
            return Ok(false);
        }
        if leftover.kind == LeftoverKind::OrphanMetadata {
            let key = leftover.path[META_DIR.len() + 1..].to_string();
            if self.data_path(&key).exists() {
                return Ok(false); // Its object has been written since.
            }
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io_err("delete", &path, e)),
        }
    }

    /// The file a leftover names, checked to be one this store could have left: a
    /// temporary file anywhere below the root, or a file under the metadata directory.
    fn leftover_path(&self, leftover: &Leftover) -> Result<std::path::PathBuf> {
        let bad = || {
            Error::invalid(format!(
                "{} is not a leftover of local store {}",
                leftover.path,
                self.root.display()
            ))
        };
        let (dir, name) = leftover
            .path
            .rsplit_once('/')
            .unwrap_or(("", &leftover.path));
        let dir_ok = |d: &str| d.is_empty() || check_key(d).is_ok();
        let ok = match leftover.kind {
            LeftoverKind::TempFile => {
                name.starts_with(TEMP_PREFIX)
                    && !name.contains(['/', '\\', '\0'])
                    && match dir.strip_prefix(META_DIR) {
                        Some("") => true,
                        Some(rest) => rest.strip_prefix('/').is_some_and(dir_ok),
                        None => dir_ok(dir),
                    }
            }
            LeftoverKind::OrphanMetadata => leftover
                .path
                .strip_prefix(META_DIR)
                .and_then(|k| k.strip_prefix('/'))
                .is_some_and(|k| check_key(k).is_ok()),
        };
        if ok {
            Ok(self.root.join(&leftover.path))
        } else {
            Err(bad())
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::{Metadata, PutMode, Store};

    #[tokio::test]
    async fn names_and_removes_what_killed_writers_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let put = |k: &'static str| {
            let store = store.clone();
            async move {
                store
                    .put(
                        k,
                        Bytes::from_static(b"x"),
                        &Metadata::new(),
                        PutMode::Create,
                    )
                    .await
                    .unwrap()
            }
        };
        put("apps/a/envs/e/snapshots/1").await;
        put("apps/a/envs/f/snapshots/1").await;
        assert!(
            store
                .leftovers("apps/a/envs/e/", Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
        // A kill between the rename of the metadata and that of the content, and two
        // temporary files never renamed.
        let root = dir.path();
        fs::write(root.join(".jvmeta/apps/a/envs/e/snapshots/2"), b"{}").unwrap();
        fs::write(root.join("apps/a/envs/e/snapshots/.jvtmp-abc"), b"x").unwrap();
        fs::write(root.join(".jvmeta/apps/a/envs/e/snapshots/.jvtmp-d"), b"{").unwrap();
        fs::write(root.join("apps/a/envs/f/snapshots/.jvtmp-other"), b"x").unwrap();

        let found = store
            .leftovers("apps/a/envs/e/", Duration::ZERO)
            .await
            .unwrap();
        let names: Vec<(&str, LeftoverKind)> =
            found.iter().map(|l| (l.path.as_str(), l.kind)).collect();
        assert_eq!(
            names,
            [
                (
                    ".jvmeta/apps/a/envs/e/snapshots/.jvtmp-d",
                    LeftoverKind::TempFile
                ),
                (
                    ".jvmeta/apps/a/envs/e/snapshots/2",
                    LeftoverKind::OrphanMetadata
                ),
                ("apps/a/envs/e/snapshots/.jvtmp-abc", LeftoverKind::TempFile),
            ]
        );
        // Younger than the grace period: not named, not removed.
        let grace = Duration::from_secs(3600);
        assert!(
            store
                .leftovers("apps/a/envs/e/", grace)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(!store.remove_leftover(&found[0], grace).await.unwrap());
        for l in &found {
            assert!(
                store.remove_leftover(l, Duration::ZERO).await.unwrap(),
                "{l:?}"
            );
            assert!(!store.remove_leftover(l, Duration::ZERO).await.unwrap());
        }
        assert!(
            store
                .leftovers("apps/a/envs/e/", Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
        // The objects and the other environment's file are untouched.
        assert_eq!(
            &store.get("apps/a/envs/e/snapshots/1").await.unwrap().bytes[..],
            b"x"
        );
        assert!(root.join("apps/a/envs/f/snapshots/.jvtmp-other").exists());
        // Metadata whose object was written since is not removed.
        fs::write(root.join(".jvmeta/apps/a/envs/e/snapshots/3"), b"{}").unwrap();
        let orphan = store
            .leftovers("apps/a/envs/e/", Duration::ZERO)
            .await
            .unwrap()
            .remove(0);
        fs::write(root.join("apps/a/envs/e/snapshots/3"), b"y").unwrap();
        assert!(
            !store
                .remove_leftover(&orphan, Duration::ZERO)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn refuses_paths_that_are_not_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        for (path, kind) in [
            ("apps/a/snapshots/1", LeftoverKind::TempFile),
            ("../x/.jvtmp-a", LeftoverKind::TempFile),
            (".jvmeta/../apps/x", LeftoverKind::OrphanMetadata),
            ("apps/a/snapshots/1", LeftoverKind::OrphanMetadata),
            (".jvlock", LeftoverKind::TempFile),
        ] {
            let l = Leftover {
                path: path.into(),
                kind,
                modified: None,
            };
            assert!(
                store.remove_leftover(&l, Duration::ZERO).await.is_err(),
                "{path}"
            );
        }
    }
}
