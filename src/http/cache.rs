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
    /// The stored zstd frame, as it is in the store.
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
mod tests {
    use std::sync::atomic::AtomicUsize;

    use async_trait::async_trait;

    use super::*;
    use jetvault_core::events::Actor;
    use jetvault_core::release::ReleaseRequest;
    use jetvault_core::snapshot::{BackupRequest, Trigger};
    use jetvault_core::store::{
        Conditional, ListPage, LocalStore, Metadata, Object, ObjectInfo, PutMode, Store,
    };
    use jetvault_core::vault::VaultOptions;

    /// A local store that counts reads.
    #[derive(Debug)]
    struct Counting {
        inner: LocalStore,
        gets: AtomicUsize,
        conditional_gets: AtomicUsize,
    }

    #[async_trait]
    impl Store for Counting {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        async fn get(&self, key: &str) -> Result<Object> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.inner.get(key).await
        }
        async fn get_if_none_match(&self, key: &str, etag: &str) -> Result<Conditional> {
            self.conditional_gets.fetch_add(1, Ordering::SeqCst);
            // Slow enough that concurrent readers pile up behind the one revalidation.
            tokio::time::sleep(Duration::from_millis(20)).await;
            self.inner.get_if_none_match(key, etag).await
        }
        async fn head(&self, key: &str) -> Result<ObjectInfo> {
            self.inner.head(key).await
        }
        async fn put(
            &self,
            key: &str,
            bytes: Bytes,
            m: &Metadata,
            mode: PutMode,
        ) -> Result<String> {
            self.inner.put(key, bytes, m, mode).await
        }
        async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<ListPage> {
            self.inner.list(prefix, after, limit).await
        }
        async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
            self.inner.list_dirs(prefix).await
        }
        async fn delete(&self, key: &str) -> Result<()> {
            self.inner.delete(key).await
        }
        async fn check(&self) -> Result<()> {
            self.inner.check().await
        }
    }

    fn corpus(name: &str) -> Bytes {
        let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
        Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
    }

    #[tokio::test]
    async fn one_revalidation_for_many_readers_and_config_loaded_once_per_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Counting {
            inner: LocalStore::open(dir.path()).unwrap(),
            gets: AtomicUsize::new(0),
            conditional_gets: AtomicUsize::new(0),
        });
        let vault = Vault::new(store.clone(), VaultOptions::default());
        let env = EnvRef::parse("crm", "production").unwrap();
        for name in [
            "grafana-k8s-views-nodes.json",
            "appsmith-import-app-all-access.json",
        ] {
            vault
                .backup(&env, BackupRequest::new(corpus(name), Trigger::Manual))
                .await
                .unwrap();
        }
        vault
            .release(&env, ReleaseRequest::new(1, Actor::default()))
            .await
            .unwrap();
        let metrics = Metrics::new();
        let cache = Arc::new(PointerCache::new(Duration::from_secs(3600)));

        let first = cache
            .pointer(&vault, &env, &metrics)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.release.version, 1);
        let gets = store.gets.load(Ordering::SeqCst);
        // Fresh: served from memory, no store request at all.
        for _ in 0..100 {
            cache
                .pointer(&vault, &env, &metrics)
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(store.gets.load(Ordering::SeqCst), gets);
        assert_eq!(store.conditional_gets.load(Ordering::SeqCst), 0);

        // Stale: 50 concurrent readers, one conditional GET.
        cache.expire_all();
        let readers: Vec<_> = (0..50)
            .map(|_| {
                let (cache, vault, env) = (cache.clone(), vault.clone(), env.clone());
                tokio::spawn(async move {
                    let m = Metrics::new();
                    cache
                        .pointer(&vault, &env, &m)
                        .await
                        .unwrap()
                        .unwrap()
                        .release
                        .seq
                })
            })
            .collect();
        for r in readers {
            assert_eq!(r.await.unwrap(), 1);
        }
        assert_eq!(store.conditional_gets.load(Ordering::SeqCst), 1);
        assert_eq!(store.gets.load(Ordering::SeqCst), gets);

        // The configuration is read once, then served from memory.
        let c1 = first.config(&vault, &env, &metrics).await.unwrap();
        let c2 = first.config(&vault, &env, &metrics).await.unwrap();
        assert!(Arc::ptr_eq(&c1, &c2));
        assert_eq!(c1.raw, corpus("grafana-k8s-views-nodes.json"));
        assert_eq!(store.gets.load(Ordering::SeqCst), gets + 1);

        // A release made elsewhere is picked up at the next revalidation.
        vault
            .release(&env, ReleaseRequest::new(2, Actor::default()))
            .await
            .unwrap();
        let still = cache
            .pointer(&vault, &env, &metrics)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            still.release.version, 1,
            "fresh entries are not revalidated"
        );
        cache.expire_all();
        let next = cache
            .pointer(&vault, &env, &metrics)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(next.release.version, 2);
        let c3 = next.config(&vault, &env, &metrics).await.unwrap();
        assert_eq!(c3.raw, corpus("appsmith-import-app-all-access.json"));
        assert_ne!(c3.etag, c1.etag);
    }

    #[tokio::test]
    async fn no_release_is_none_and_publish_is_served_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let vault = Vault::new(
            Arc::new(LocalStore::open(dir.path()).unwrap()),
            VaultOptions::default(),
        );
        let env = EnvRef::parse("crm", "staging").unwrap();
        let metrics = Metrics::new();
        let cache = PointerCache::new(Duration::from_secs(3600));
        assert!(
            cache
                .pointer(&vault, &env, &metrics)
                .await
                .unwrap()
                .is_none()
        );
        vault
            .backup(
                &env,
                BackupRequest::new(corpus("grafana-k8s-views-nodes.json"), Trigger::Manual),
            )
            .await
            .unwrap();
        let p = vault
            .release(&env, ReleaseRequest::new(1, Actor::default()))
            .await
            .unwrap();
        cache.published(&env, p).await;
        let got = cache
            .pointer(&vault, &env, &metrics)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.release.seq, 1);
        assert_eq!(cache.len(), 1);
    }

    /// A local store whose conditional reads hang while `stalled` is set.
    #[derive(Debug)]
    struct Stalling {
        inner: LocalStore,
        stalled: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl Store for Stalling {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        async fn get(&self, key: &str) -> Result<Object> {
            self.inner.get(key).await
        }
        async fn get_if_none_match(&self, key: &str, etag: &str) -> Result<Conditional> {
            if self.stalled.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            self.inner.get_if_none_match(key, etag).await
        }
        async fn head(&self, key: &str) -> Result<ObjectInfo> {
            self.inner.head(key).await
        }
        async fn put(
            &self,
            key: &str,
            bytes: Bytes,
            m: &Metadata,
            mode: PutMode,
        ) -> Result<String> {
            self.inner.put(key, bytes, m, mode).await
        }
        async fn list(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<ListPage> {
            self.inner.list(prefix, after, limit).await
        }
        async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
            self.inner.list_dirs(prefix).await
        }
        async fn delete(&self, key: &str) -> Result<()> {
            self.inner.delete(key).await
        }
        async fn check(&self) -> Result<()> {
            self.inner.check().await
        }
    }

    /// A store that stops answering: reads are served from memory, marked stale and
    /// counted, instead of waiting for it; once it answers, they are fresh again.
    #[tokio::test]
    async fn a_stalled_store_serves_the_pointer_in_memory_as_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Stalling {
            inner: LocalStore::open(dir.path()).unwrap(),
            stalled: std::sync::atomic::AtomicBool::new(false),
        });
        let vault = Vault::new(store.clone(), VaultOptions::default());
        let env = EnvRef::parse("crm", "production").unwrap();
        vault
            .backup(
                &env,
                BackupRequest::new(corpus("grafana-k8s-views-nodes.json"), Trigger::Manual),
            )
            .await
            .unwrap();
        vault
            .release(&env, ReleaseRequest::new(1, Actor::default()))
            .await
            .unwrap();
        let metrics = Metrics::new();
        let cache = Arc::new(
            PointerCache::new(Duration::from_secs(3600))
                .with_revalidate_wait(Duration::from_millis(200)),
        );
        let first = cache.serve(&vault, &env, &metrics).await.unwrap();
        assert!(first.stale.is_none());
        assert!(
            !metrics
                .encode()
                .contains("jetvault_pointer_stale_served_total 1")
        );

        store.stalled.store(true, Ordering::SeqCst);
        cache.expire_all();
        // Two readers: one waits for its own revalidation, the other for the first's.
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (cache, vault, env) = (cache.clone(), vault.clone(), env.clone());
                tokio::spawn(async move {
                    let m = Metrics::new();
                    let s = cache.serve(&vault, &env, &m).await.unwrap();
                    (s.pointer.unwrap().release.seq, s.stale.is_some())
                })
            })
            .collect();
        for r in readers {
            assert_eq!(r.await.unwrap(), (1, true));
        }
        let stale = cache.serve(&vault, &env, &metrics).await.unwrap();
        assert_eq!(stale.pointer.unwrap().release.seq, 1);
        assert!(stale.stale.is_some(), "still stale until the store answers");
        let text = metrics.encode();
        assert!(
            text.contains("jetvault_pointer_stale_served_total 1"),
            "{text}"
        );

        store.stalled.store(false, Ordering::SeqCst);
        cache.expire_all();
        let fresh = cache.serve(&vault, &env, &metrics).await.unwrap();
        assert!(fresh.stale.is_none());
        assert_eq!(fresh.pointer.unwrap().release.seq, 1);
    }
}
