//! History after a restore: what live holds becomes the newest snapshot (trigger
//! `restore`), so `latest` is what is live and an unchanged backup writes nothing.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::*;
use crate::codec;
use crate::error::{Error, Result};
use crate::events::{Action, Actor};
use crate::live::LiveTarget;
use crate::live::file::FileTarget;
use crate::meta::Trigger;
use crate::snapshot::{BackupOutcome, BackupRequest};
use crate::store::{Conditional, ListPage, Metadata, Object, ObjectInfo, PutMode, Store};
use crate::testutil::{corpus, local_vault};
use crate::vault::{Vault, VaultOptions};

const GOOD: &str = "nodered-http-endpoint-example.json";
const DISASTER: &str = "grafana-k8s-views-nodes.json";

fn actor() -> Actor {
    Actor {
        who: Some("tester".into()),
        via: "test".into(),
        from: None,
    }
}

fn req(source: Selector) -> RestoreRequest {
    RestoreRequest::new(source, actor())
}

/// v1 = GOOD, v2 = DISASTER; live holds the disaster.
async fn disaster(vault: &Vault, env: &EnvRef, live: &PathBuf) {
    for name in [GOOD, DISASTER] {
        vault
            .backup(env, BackupRequest::new(corpus(name), Trigger::Manual))
            .await
            .unwrap();
    }
    std::fs::write(live, corpus(DISASTER)).unwrap();
}

#[tokio::test]
async fn the_restored_content_becomes_the_latest_and_an_unchanged_backup_writes_nothing() {
    let (dir, _store, vault, env) = local_vault();
    let live = dir.path().join("live.json");
    disaster(&vault, &env, &live).await;
    let target = FileTarget::new(live.clone());

    let report = vault
        .restore(&env, &target, req(Selector::Version(1)))
        .await
        .unwrap();
    assert!(matches!(report.pre_restore, PreRestore::Reused { .. }));
    let Recorded::Saved { snapshot } = &report.recorded else {
        panic!("{:?}", report.recorded)
    };
    assert_eq!(snapshot.version, 3);

    // `latest` is what is live: the restored content, trigger restore, naming v1.
    let latest = vault.latest(&env).await.unwrap().unwrap();
    assert_eq!(
        (latest.version, latest.trigger, latest.restored_from),
        (3, Trigger::Restore, Some(1))
    );
    let (_, raw) = vault.get(&env, 3).await.unwrap();
    assert_eq!(raw, corpus(GOOD));
    assert_eq!(std::fs::read(&live).unwrap(), corpus(GOOD));
    // The listing (through the index) and a HEAD agree on it.
    let listed = vault.list(&env, None, 10).await.unwrap();
    assert_eq!(listed[0], latest);
    assert_eq!(vault.snapshot_meta(&env, 3).await.unwrap(), latest);

    // A backup right after writes nothing.
    let mut scheduled = BackupRequest::new(Bytes::new(), Trigger::Schedule);
    scheduled.actor = actor();
    let outcome = vault
        .backup_from_live(&env, &target, scheduled)
        .await
        .unwrap();
    assert!(
        matches!(&outcome, BackupOutcome::Unchanged(m) if m.version == 3),
        "{outcome:?}"
    );
    assert_eq!(vault.all_versions(&env).await.unwrap().len(), 3);

    // `restore latest` now puts back what was restored, not the disaster: live already
    // holds it, so nothing is pushed and nothing written.
    let again = vault
        .restore(&env, &target, req(Selector::Latest))
        .await
        .unwrap();
    assert!(!again.pushed);
    assert_eq!(again.restored.version, 3);
    assert!(
        matches!(&again.recorded, Recorded::Latest { snapshot } if snapshot.version == 3),
        "{:?}",
        again.recorded
    );
    assert_eq!(std::fs::read(&live).unwrap(), corpus(GOOD));
    assert_eq!(vault.all_versions(&env).await.unwrap().len(), 3);

    // The audit event says how the history recorded it.
    let events = vault.events(&env, 20).await.unwrap();
    let restored = events
        .iter()
        .find(|e| e.action == Action::Restore && e.details["outcome"] == "restored")
        .unwrap();
    assert_eq!(restored.details["recorded"]["kind"], "saved");
    assert_eq!(restored.details["recorded"]["snapshot"]["version"], 3);
    assert_eq!(restored.details["recorded"]["snapshot"]["restored_from"], 1);
}

#[tokio::test]
async fn restoring_the_latest_over_a_missing_live_writes_no_duplicate() {
    let (dir, _store, vault, env) = local_vault();
    vault
        .backup(&env, BackupRequest::new(corpus(GOOD), Trigger::Manual))
        .await
        .unwrap();
    let target = FileTarget::new(dir.path().join("gone.json"));
    let mut r = req(Selector::Latest);
    r.allow_missing_live = true;
    let report = vault.restore(&env, &target, r).await.unwrap();
    assert!(report.pushed);
    assert!(
        matches!(&report.recorded, Recorded::Latest { snapshot } if snapshot.version == 1),
        "{:?}",
        report.recorded
    );
    assert_eq!(vault.all_versions(&env).await.unwrap().len(), 1);
}

/// A target that pretty-prints what it stores (equal JSON, other bytes).
#[derive(Debug)]
struct Reformats(FileTarget);

#[async_trait]
impl LiveTarget for Reformats {
    fn describe(&self) -> String {
        self.0.describe()
    }
    async fn read(&self, limit: u64) -> Result<Bytes> {
        self.0.read(limit).await
    }
    async fn write(&self, bytes: Bytes) -> Result<()> {
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        self.0
            .write(serde_json::to_vec_pretty(&v).unwrap().into())
            .await
    }
}

#[tokio::test]
async fn a_target_that_reformats_is_recorded_as_it_reads_back() {
    let (dir, _store, vault, env) = local_vault();
    let live = dir.path().join("live.json");
    disaster(&vault, &env, &live).await;
    let target = Reformats(FileTarget::new(live.clone()));
    let report = vault
        .restore(&env, &target, req(Selector::Version(1)))
        .await
        .unwrap();
    assert_eq!(report.verified, Verification::EquivalentJson);
    let recorded = report.recorded.snapshot().unwrap();
    assert_eq!(
        recorded.sha256,
        codec::sha256_hex(&std::fs::read(&live).unwrap())
    );
    assert_ne!(recorded.sha256, report.restored.sha256);
    let outcome = vault
        .backup_from_live(
            &env,
            &target,
            BackupRequest::new(Bytes::new(), Trigger::Schedule),
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, BackupOutcome::Unchanged(_)),
        "{outcome:?}"
    );
}

/// A store whose snapshot writes fail once `broken` is set.
#[derive(Debug)]
struct BreaksSnapshots {
    inner: Arc<dyn Store>,
    broken: Arc<AtomicBool>,
}

#[async_trait]
impl Store for BreaksSnapshots {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn get(&self, key: &str) -> Result<Object> {
        self.inner.get(key).await
    }
    async fn get_if_none_match(&self, key: &str, etag: &str) -> Result<Conditional> {
        self.inner.get_if_none_match(key, etag).await
    }
    async fn head(&self, key: &str) -> Result<ObjectInfo> {
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, bytes: Bytes, md: &Metadata, mode: PutMode) -> Result<String> {
        if self.broken.load(Ordering::SeqCst) && key.contains("/snapshots/") {
            return Err(Error::unavailable("the store answered 503 SlowDown"));
        }
        self.inner.put(key, bytes, md, mode).await
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

/// A file target that breaks the store once it has been written.
#[derive(Debug)]
struct BreaksOnWrite(FileTarget, Arc<AtomicBool>);

#[async_trait]
impl LiveTarget for BreaksOnWrite {
    fn describe(&self) -> String {
        self.0.describe()
    }
    async fn read(&self, limit: u64) -> Result<Bytes> {
        self.0.read(limit).await
    }
    async fn write(&self, bytes: Bytes) -> Result<()> {
        self.0.write(bytes).await?;
        self.1.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_record_keeps_the_restore_and_the_pre_restore_snapshot() {
    let (dir, store, _, env) = local_vault();
    let broken = Arc::new(AtomicBool::new(false));
    let vault = Vault::new(
        Arc::new(BreaksSnapshots {
            inner: store,
            broken: broken.clone(),
        }),
        VaultOptions::default(),
    );
    let live = dir.path().join("live.json");
    disaster(&vault, &env, &live).await;
    // An edit after the last backup: the pre-restore snapshot is a new one (v3).
    let mut edited: serde_json::Value = serde_json::from_slice(&corpus(DISASTER)).unwrap();
    edited["edited"] = serde_json::json!(true);
    std::fs::write(&live, serde_json::to_vec(&edited).unwrap()).unwrap();

    let target = BreaksOnWrite(FileTarget::new(live.clone()), broken);
    let report = vault
        .restore(&env, &target, req(Selector::Version(1)))
        .await
        .expect("the restore itself succeeded");
    assert_eq!(report.verified, Verification::Sha256);
    let Recorded::Failed { error } = &report.recorded else {
        panic!("{:?}", report.recorded)
    };
    assert!(error.contains("503 SlowDown"), "{error}");
    assert!(error.contains("after restoring v1"), "{error}");
    assert_eq!(std::fs::read(&live).unwrap(), corpus(GOOD));
    let latest = vault.latest(&env).await.unwrap().unwrap();
    assert_eq!((latest.version, latest.trigger), (3, Trigger::PreRestore));
    assert_eq!(report.undo, vec![Undo::Restore { version: 3 }]);
    let events = vault.events(&env, 20).await.unwrap();
    let restored = events.iter().find(|e| e.action == Action::Restore).unwrap();
    assert_eq!(restored.details["outcome"], "restored");
    assert_eq!(restored.details["recorded"]["kind"], "failed");
}
