//! The pointer cache: release pointers and released configurations served from memory.
//!
//! A pointer read older than `pointer_ttl` is revalidated with one conditional GET of the
//! pointer object (a 304 transfers nothing); the released configuration is read again
//! only when the pointer names another snapshot. An idle service sends no request at
//! all. Concurrent readers of a stale entry wait for one revalidation instead of each
//! sending their own, so a release published elsewhere (another replica, the CLI) is
//! served within `pointer_ttl` of the read that notices it.
//!
//! When the store fails during a revalidation, or does not answer within
//! [`REVALIDATE_WAIT`] (a held lock, a stalled connection), the last known pointer keeps
//! being served, marked stale with its age ([`Served::stale`], sent as
//! `X-Jetvault-Stale`), and the failure logged and counted, until the store answers
//! again; only a pointer never seen gives an error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use bytes::Bytes;
use tokio::sync::{Mutex, OnceCell};

use super::conn::FileBody;
use crate::metrics::{Metrics, Revalidation};
use jetvault_core::error::{Error, ErrorKind, Hint, Result, Step};
use jetvault_core::id::EnvRef;
use jetvault_core::release::{Release, ReleasePointer};
use jetvault_core::snapshot::decode_snapshot;
use jetvault_core::vault::Vault;

/// How many environments the cache holds at most; past that, reads of other
/// environments go to the store each time (an unbounded map would let clients grow
/// memory by asking for made-up environments).
pub const MAX_ENTRIES: usize = 10_000;

const NEVER: u64 = u64::MAX;

/// How long a read waits for the revalidation of a pointer it has in memory before it
/// serves that pointer as stale.
pub const REVALIDATE_WAIT: Duration = Duration::from_secs(1);

/// What [`PointerCache::serve`] answers.
#[derive(Debug)]
pub struct Served {
    /// The release pointer (`None`: the environment has no release).
    pub pointer: Option<Arc<CachedPointer>>,
    /// `Some(age)`: the store could not confirm it (failed or too slow); `age` is the time
    /// since the store last did.
    pub stale: Option<Duration>,
}

/// A release pointer ready to send.
#[derive(Debug)]
pub struct CachedPointer {
    /// The release.
    pub release: Release,
    /// The store's etag of the pointer object (pass back as `If-Match` to release over it).
    pub store_etag: String,
    /// The JSON body sent to clients.
    pub body: Bytes,
    /// The `ETag` header: the store etag, quoted.
    pub etag: HeaderValue,
    config: OnceCell<Arc<CachedConfig>>,
}

/// A released configuration ready to send, in both encodings.
#[derive(Debug)]
pub struct CachedConfig {
    /// The configuration, byte for byte.
    pub raw: Bytes,
    /// The stored zstd frame, as it is in the store; for an encrypted snapshot, the
    /// frame decrypted (once per release: the age object is never sent).
    pub zstd: Bytes,
    /// The `ETag` header: `"<sha256>"`.
    pub etag: HeaderValue,
    /// `raw` in a sealed memfd, sent with `sendfile` (large configurations on Linux).
    pub file: Option<FileBody>,
    /// `zstd` in a sealed memfd, likewise.
    pub zstd_file: Option<FileBody>,
}

impl CachedPointer {
    /// Builds the cached form of a pointer read from the store.
    ///
    /// # Errors
    /// `Internal` if the release can't be encoded.
    pub fn new(pointer: ReleasePointer) -> Result<Self> {
        let body = serde_json::to_vec(&pointer.release)
            .map_err(|e| Error::internal(format!("cannot encode the release: {e}")))?;
        let quoted = jetvault_core::etag::quote(&pointer.etag);
        let etag = HeaderValue::from_str(&quoted).map_err(|_| {
            Error::corrupt(format!(
                "the store gave the release pointer an etag that is not a valid header: {quoted:?}"
            ))
        })?;
        Ok(Self {
            release: pointer.release,
            store_etag: pointer.etag,
            body: Bytes::from(body),
            etag,
            config: OnceCell::new(),
        })
    }

    /// The released configuration, read from the store once per pointer.
    ///
    /// # Errors
    /// `NotFound` if the snapshot is gone, `Corrupt` if it fails its checks, store errors.
    pub async fn config(
        &self,
        vault: &Vault,
        env: &EnvRef,
        metrics: &Metrics,
    ) -> Result<Arc<CachedConfig>> {
        self.config
            .get_or_try_init(|| async {
                let version = self.release.version;
                let (meta, stored) = vault.get_stored(env, version).await.map_err(|e| {
                    e.context(format!(
                        "reading v{version}, released as {} in {env}",
                        self.release.label
                    ))
                })?;
                if meta.sha256 != self.release.sha256 {
                    return Err(Error::corrupt(format!(
                        "release {} of {env} says v{version} has sha256 {}, but the snapshot \
                         says {}",
                        self.release.label, self.release.sha256, meta.sha256
                    ))
                    .with_next(Hint::steps("check the store", [Step::Verify])));
                }
                let limit = vault.options().max_size.max(meta.size);
                let raw = decode_snapshot(env, &meta, stored.clone(), limit).await?;
                metrics.record_config_load();
                let file = FileBody::new(&format!("jetvault-{version}"), &raw);
                let zstd_file = FileBody::new(&format!("jetvault-{version}.zst"), &stored);
                Ok(Arc::new(CachedConfig {
                    file,
                    zstd_file,
                    raw,
                    zstd: stored,
                    etag: super::snapshots::etag_header(&meta.sha256),
                }))
            })
            .await
            .cloned()
    }

    /// A new cached pointer that keeps this one's configuration when both name the
    /// same snapshot.
    fn carry_config_to(&self, next: &Self) {
        if next.release.version == self.release.version
            && let Some(c) = self.config.get()
        {
            let _ = next.config.set(c.clone());
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// `None`: the environment has no release (as of the last check).
    current: RwLock<Option<Arc<CachedPointer>>>,
    /// When it was last checked against the store, in ms since the cache's epoch.
    checked_ms: AtomicU64,
    /// When the store last confirmed it, in ms since the cache's epoch.
    ok_ms: AtomicU64,
    /// Whether the last revalidation failed.
    failing: AtomicBool,
    /// Held while revalidating or publishing, so that one request goes to the store.
    refresh: Mutex<()>,
}

impl Entry {
    fn new() -> Self {
        Self {
            current: RwLock::new(None),
            checked_ms: AtomicU64::new(NEVER),
            ok_ms: AtomicU64::new(NEVER),
            failing: AtomicBool::new(false),
            refresh: Mutex::new(()),
        }
    }

    fn current(&self) -> Option<Arc<CachedPointer>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, p: Option<Arc<CachedPointer>>) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = p;
    }
}

/// Release pointers and configurations of every environment read through this service.
#[derive(Debug)]
pub struct PointerCache {
    ttl_ms: u64,
    wait: Duration,
    epoch: Instant,
    entries: RwLock<HashMap<EnvRef, Arc<Entry>>>,
}

impl PointerCache {
    /// A cache that trusts what it read for `ttl`.
    #[must_use]
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            wait: REVALIDATE_WAIT,
            epoch: Instant::now(),
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// How long a read waits for a revalidation before serving the pointer in memory as
    /// stale (default [`REVALIDATE_WAIT`]).
    #[must_use]
    pub fn with_revalidate_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn fresh(&self, entry: &Entry) -> bool {
        let checked = entry.checked_ms.load(Ordering::Acquire);
        checked != NEVER && self.now_ms().saturating_sub(checked) < self.ttl_ms
    }

    fn entry(&self, env: &EnvRef) -> Arc<Entry> {
        if let Some(e) = self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(env)
        {
            return e.clone();
        }
        let mut map = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_ENTRIES && !map.contains_key(env) {
            // Not cached: a fresh entry that is dropped after this read.
            return Arc::new(Entry::new());
        }
        map.entry(env.clone())
            .or_insert_with(|| Arc::new(Entry::new()))
            .clone()
    }

    /// The current release pointer of `env` (`None`: it has no release), revalidated
    /// with the store if older than the ttl.
    ///
    /// # Errors
    /// Store errors when no pointer of `env` was read before.
    pub async fn pointer(
        &self,
        vault: &Vault,
        env: &EnvRef,
        metrics: &Metrics,
    ) -> Result<Option<Arc<CachedPointer>>> {
        self.serve(vault, env, metrics).await.map(|s| s.pointer)
    }

    /// The current release pointer of `env`, revalidated with the store if older than
    /// the ttl; when a pointer is in memory and the store fails or does not answer within
    /// the revalidation wait, that pointer, marked stale.
    ///
    /// # Errors
    /// Store errors when no pointer of `env` was read before.
    pub async fn serve(&self, vault: &Vault, env: &EnvRef, metrics: &Metrics) -> Result<Served> {
        let entry = self.entry(env);
        if self.fresh(&entry) {
            return Ok(self.served(&entry, false, metrics));
        }
        let _one = if entry.current().is_some() {
            match tokio::time::timeout(self.wait, entry.refresh.lock()).await {
                Ok(guard) => guard,
                // Another read's revalidation is stalled: don't queue behind it.
                Err(_) => return Ok(self.served(&entry, true, metrics)),
            }
        } else {
            entry.refresh.lock().await
        };
        if self.fresh(&entry) {
            return Ok(self.served(&entry, false, metrics));
        }
        let current = entry.current();
        let revalidate = async {
            match &current {
                Some(p) => match vault.current_release_if_changed(env, &p.store_etag).await {
                    Ok(None) => Ok(Revalidation::NotModified),
                    Ok(Some(next)) => Ok(self.replace(&entry, current.as_deref(), next)?),
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        entry.set(None);
                        Ok(Revalidation::Missing)
                    }
                    Err(e) => Err(e),
                },
                None => match vault.current_release(env).await {
                    Ok(Some(next)) => Ok(self.replace(&entry, None, next)?),
                    Ok(None) => Ok(Revalidation::Missing),
                    Err(e) => Err(e),
                },
            }
        };
        let read = if current.is_some() {
            tokio::time::timeout(self.wait, revalidate)
                .await
                .unwrap_or_else(|_| {
                    Err(Error::unavailable(format!(
                        "the store did not answer within {} ms",
                        self.wait.as_millis()
                    )))
                })
        } else {
            revalidate.await
        };
        let outcome = match read {
            Ok(r) => {
                entry.ok_ms.store(self.now_ms(), Ordering::Release);
                entry.failing.store(false, Ordering::Release);
                r
            }
            Err(e) if current.is_some() => {
                tracing::warn!(%env, error = %e.report(),
                    "cannot revalidate the release pointer; serving the last one read");
                entry.failing.store(true, Ordering::Release);
                Revalidation::Error
            }
            Err(e) => {
                metrics.record_revalidation(Revalidation::Error);
                return Err(e);
            }
        };
        metrics.record_revalidation(outcome);
        entry.checked_ms.store(self.now_ms(), Ordering::Release);
        Ok(self.served(&entry, false, metrics))
    }

    /// The entry's pointer, stale if the last revalidation failed or `waited` says one
    /// is taking too long.
    fn served(&self, entry: &Entry, waited: bool, metrics: &Metrics) -> Served {
        let pointer = entry.current();
        let stale =
            (pointer.is_some() && (waited || entry.failing.load(Ordering::Acquire))).then(|| {
                let ok = entry.ok_ms.load(Ordering::Acquire);
                let age = if ok == NEVER {
                    0
                } else {
                    self.now_ms().saturating_sub(ok)
                };
                metrics.record_stale_served();
                Duration::from_millis(age)
            });
        Served { pointer, stale }
    }

    fn replace(
        &self,
        entry: &Entry,
        old: Option<&CachedPointer>,
        next: ReleasePointer,
    ) -> Result<Revalidation> {
        let next = CachedPointer::new(next)?;
        if let Some(old) = old {
            old.carry_config_to(&next);
        }
        entry.set(Some(Arc::new(next)));
        Ok(Revalidation::Changed)
    }

    /// Records a release this service just published, so that it is served at once
    /// (a pointer older than the one cached is ignored).
    pub async fn published(&self, env: &EnvRef, pointer: ReleasePointer) {
        let entry = self.entry(env);
        let _one = entry.refresh.lock().await;
        let current = entry.current();
        if current
            .as_ref()
            .is_some_and(|c| c.release.seq > pointer.release.seq)
        {
            return;
        }
        match self.replace(&entry, current.as_deref(), pointer) {
            Ok(_) => {
                let now = self.now_ms();
                entry.checked_ms.store(now, Ordering::Release);
                entry.ok_ms.store(now, Ordering::Release);
                entry.failing.store(false, Ordering::Release);
            }
            Err(e) => tracing::warn!(%env, error = %e.report(), "cannot cache the new release"),
        }
    }

    /// How many environments are cached.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is cached.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
impl PointerCache {
    /// Marks every entry as needing revalidation (tests only: no clock involved).
    fn expire_all(&self) {
        for e in self
            .entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
        {
            e.checked_ms.store(NEVER, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests;
