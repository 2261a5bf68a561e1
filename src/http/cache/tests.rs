//! Unit tests of the release cache: revalidation, sharing, eviction, stale serving.

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
    async fn put(&self, key: &str, bytes: Bytes, m: &Metadata, mode: PutMode) -> Result<String> {
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
    async fn put(&self, key: &str, bytes: Bytes, m: &Metadata, mode: PutMode) -> Result<String> {
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

#[tokio::test]
async fn an_encrypted_release_is_decrypted_once_and_served_as_plain_zstd() {
    use jetvault_core::crypt::{Encryption, Identities, Recipients};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Counting {
        inner: LocalStore::open(dir.path()).unwrap(),
        gets: AtomicUsize::new(0),
        conditional_gets: AtomicUsize::new(0),
    });
    let (secret, public) = Identities::generate();
    let options = VaultOptions {
        encryption: Encryption::store_wide(Recipients::parse(&[public], "test").unwrap()),
        identities: Identities::parse(&secret, "test").unwrap(),
        ..VaultOptions::default()
    };
    let vault = Vault::new(store.clone(), options);
    let env = EnvRef::parse("crm", "production").unwrap();
    let raw = corpus("appsmith-import-app-all-access.json");
    vault
        .backup(&env, BackupRequest::new(raw.clone(), Trigger::Manual))
        .await
        .unwrap();
    vault
        .release(&env, ReleaseRequest::new(1, Actor::default()))
        .await
        .unwrap();
    let (_, stored) = store
        .inner
        .get(&jetvault_core::layout::snapshot_key(&env, 1))
        .await
        .map(|o| (o.info, o.bytes))
        .unwrap();
    assert!(stored.starts_with(b"age-encryption.org/v1\n"));

    let metrics = Metrics::new();
    let cache = PointerCache::new(Duration::from_secs(3600));
    let pointer = cache
        .pointer(&vault, &env, &metrics)
        .await
        .unwrap()
        .unwrap();
    let gets = store.gets.load(Ordering::SeqCst);
    let c1 = pointer.config(&vault, &env, &metrics).await.unwrap();
    let c2 = pointer.config(&vault, &env, &metrics).await.unwrap();
    assert!(
        Arc::ptr_eq(&c1, &c2),
        "decrypted once, then served from memory"
    );
    assert_eq!(store.gets.load(Ordering::SeqCst), gets + 1);
    assert_eq!(c1.raw, raw);
    // What zstd clients get is a zstd frame of the configuration, never the age object.
    assert!(!c1.zstd.starts_with(b"age-encryption.org"));
    assert_eq!(zstd::decode_all(c1.zstd.as_ref()).unwrap(), raw.to_vec());
}
