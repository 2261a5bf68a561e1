//! Helpers shared by unit tests.

use std::path::PathBuf;
use std::sync::Arc;

use crate::id::EnvRef;
use crate::store::{LocalStore, Store};
use crate::vault::{Vault, VaultOptions};

/// A vault on a fresh local directory store, its store, and `crm/production`; keep the
/// directory alive as long as the vault.
pub fn local_vault() -> (tempfile::TempDir, Arc<dyn Store>, Vault, EnvRef) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(LocalStore::open(dir.path()).unwrap());
    let vault = Vault::new(store.clone(), VaultOptions::default());
    let env = EnvRef::parse("crm", "production").unwrap();
    (dir, store, vault, env)
}

/// Real configuration files: `tests/data` (copies from the shared corpus, see its
/// `SOURCES.md`), or the directory `JETVAULT_CORPUS` names when set.
pub fn corpus_dir() -> PathBuf {
    std::env::var_os("JETVAULT_CORPUS")
        .filter(|d| !d.is_empty())
        .map_or_else(
            || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data")),
            PathBuf::from,
        )
}

/// The bytes of one corpus file.
pub fn corpus(name: &str) -> Vec<u8> {
    let path = corpus_dir().join(name);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("cannot read corpus file {}: {e}", path.display()))
}

/// Writes snapshot `v` of `env` directly, as taken at `at` (the backup path stamps the
/// current time; retention and `--at` tests need other times).
pub async fn put_snapshot_at(
    store: &dyn crate::store::Store,
    env: &crate::id::EnvRef,
    v: u64,
    at: chrono::DateTime<chrono::Utc>,
) {
    let raw = format!("{{\"version\":{v}}}");
    put_snapshot(store, env, v, raw.as_bytes(), at).await;
}

/// Writes snapshot `v` of `env` holding `raw` straight into the store, as a scheduled
/// backup taken at `at` would have (no listing index entry); returns its metadata.
pub async fn put_snapshot(
    store: &dyn crate::store::Store,
    env: &crate::id::EnvRef,
    v: u64,
    raw: &[u8],
    at: chrono::DateTime<chrono::Utc>,
) -> crate::snapshot::SnapshotMeta {
    use crate::snapshot::{SnapshotMeta, Trigger};
    let z = crate::codec::compress(raw, 3).unwrap();
    let meta = SnapshotMeta {
        version: v,
        sha256: crate::codec::sha256_hex(raw),
        size: raw.len() as u64,
        stored_size: z.len() as u64,
        created_at: at,
        trigger: Trigger::Schedule,
        author: None,
        message: None,
        source: None,
        key: crate::layout::snapshot_key(env, v),
        restored_from: None,
        schema_errors: None,
        schema_error: None,
        recipients: None,
        ignoring_sha256: None,
    };
    store
        .put(
            &meta.key,
            z.into(),
            &meta.to_metadata(),
            crate::store::PutMode::Create,
        )
        .await
        .unwrap();
    meta
}
