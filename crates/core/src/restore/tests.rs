use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use super::*;
use crate::codec;
use crate::error::{Error, ErrorKind, Result, Step};
use crate::events::{Action, Actor};
use crate::id::Label;
use crate::layout;
use crate::live::LiveTarget;
use crate::live::file::FileTarget;
use crate::meta::Trigger;
use crate::release::{ReleaseKind, ReleaseRequest};
use crate::selector::parse_time;
use crate::snapshot::BackupRequest;
use crate::store::LocalStore;
use crate::testutil::corpus;
use crate::vault::Vault;
use crate::vault::VaultOptions;
use bytes::Bytes;

const A: &str = "nodered-http-endpoint-example.json";
const B: &str = "appsmith-import-app-all-access.json";
const C: &str = "grafana-k8s-views-nodes.json";

struct Fixture {
    dir: tempfile::TempDir,
    store: Arc<LocalStore>,
    vault: Vault,
    env: EnvRef,
    live: PathBuf,
}

impl Fixture {
    /// v1 = A, v2 = B, v3 = C; live holds C.
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(dir.path().join("store")).unwrap());
        let vault = Vault::new(store.clone(), VaultOptions::default());
        let env = EnvRef::parse("crm", "production").unwrap();
        for name in [A, B, C] {
            vault
                .backup(&env, BackupRequest::new(corpus(name), Trigger::Manual))
                .await
                .unwrap();
        }
        let live = dir.path().join("live.json");
        std::fs::write(&live, corpus(C)).unwrap();
        Self {
            dir,
            store,
            vault,
            env,
            live,
        }
    }

    fn target(&self) -> FileTarget {
        FileTarget::new(self.live.clone())
    }

    fn actor() -> Actor {
        Actor {
            who: Some("tester".into()),
            via: "test".into(),
            from: None,
        }
    }

    async fn versions(&self) -> usize {
        self.vault.all_versions(&self.env).await.unwrap().len()
    }

    fn live_sha(&self) -> Option<String> {
        std::fs::read(&self.live)
            .ok()
            .map(|b| codec::sha256_hex(&b))
    }
}

fn req(source: Selector) -> RestoreRequest {
    RestoreRequest::new(source, Fixture::actor())
}

#[tokio::test]
async fn restores_reusing_the_latest_when_live_equals_it() {
    let f = Fixture::new().await;
    let plan = f
        .vault
        .plan_restore(&f.env, &f.target(), &Selector::Version(1))
        .await
        .unwrap();
    assert!(!plan.already_live);
    assert!(plan.diff.as_ref().is_some_and(|d| !d.is_empty()));
    assert_eq!(f.versions().await, 3, "a plan writes nothing");

    let report = f
        .vault
        .restore(&f.env, &f.target(), req(Selector::Version(1)))
        .await
        .unwrap();
    assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(A)));
    assert_eq!(report.verified, Verification::Sha256);
    assert!(report.pushed);
    let pre = report.pre_restore.snapshot().unwrap();
    assert!(matches!(report.pre_restore, PreRestore::Reused { .. }));
    assert_eq!(pre.version, 3);
    // No duplicate of v3; v4 records what is live now (v1's content).
    assert_eq!(f.versions().await, 4);
    let Recorded::Saved { snapshot } = &report.recorded else {
        panic!("{:?}", report.recorded)
    };
    assert_eq!(
        (snapshot.version, snapshot.trigger, snapshot.restored_from),
        (4, Trigger::Restore, Some(1))
    );
    assert_eq!(report.undo, vec![Undo::Restore { version: 3 }]);
    let events = f.vault.events(&f.env, 10).await.unwrap();
    let restore = events.iter().find(|e| e.action == Action::Restore).unwrap();
    assert_eq!(restore.version, Some(1));
    assert_eq!(restore.details["outcome"], "restored");
    assert_eq!(restore.details["pre_restore"]["kind"], "reused");
    assert_eq!(restore.actor.who.as_deref(), Some("tester"));
}

#[tokio::test]
async fn saves_a_changed_live_configuration_first() {
    let f = Fixture::new().await;
    let edited = corpus(B);
    let mut edited: serde_json::Value = serde_json::from_slice(&edited).unwrap();
    edited["edited-live"] = serde_json::json!(true);
    let edited = serde_json::to_vec(&edited).unwrap();
    std::fs::write(&f.live, &edited).unwrap();
    let report = f
        .vault
        .restore(&f.env, &f.target(), req(Selector::Latest))
        .await
        .unwrap();
    let PreRestore::Saved { snapshot } = &report.pre_restore else {
        panic!("{:?}", report.pre_restore)
    };
    assert_eq!(snapshot.version, 4);
    assert_eq!(snapshot.trigger, Trigger::PreRestore);
    assert_eq!(snapshot.sha256, codec::sha256_hex(&edited));
    assert_eq!(
        report.restored.version, 3,
        "latest was resolved before the save"
    );
    assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(C)));
    assert_eq!(report.undo, vec![Undo::Restore { version: 4 }]);
    // Undoing puts the edited configuration back, byte for byte.
    f.vault
        .restore(&f.env, &f.target(), req(Selector::Version(4)))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&f.live).unwrap(), edited);
}

#[tokio::test]
async fn publish_moves_the_release_and_says_how_to_undo() {
    let f = Fixture::new().await;
    let mut r = req(Selector::Version(1));
    r.publish = true;
    let report = f.vault.restore(&f.env, &f.target(), r).await.unwrap();
    let p = report.published.unwrap();
    assert_eq!((p.version, p.changed, p.previous_version), (1, true, None));
    assert_eq!(
        report.undo.len(),
        1,
        "no release before: nothing to roll back to"
    );
    let mut r = req(Selector::Version(2));
    r.publish = true;
    let report = f.vault.restore(&f.env, &f.target(), r).await.unwrap();
    let p = report.published.unwrap();
    assert_eq!((p.version, p.previous_version), (2, Some(1)));
    assert_eq!(report.undo[1], Undo::Rollback);
    let cur = f.vault.current_release(&f.env).await.unwrap().unwrap();
    assert_eq!(
        (cur.release.version, cur.release.kind),
        (2, ReleaseKind::Restore)
    );
    // Already the release: nothing published again.
    let mut r = req(Selector::Version(2));
    r.publish = true;
    let report = f.vault.restore(&f.env, &f.target(), r).await.unwrap();
    assert!(!report.published.unwrap().changed);
    assert!(!report.pushed);
}

#[tokio::test]
async fn already_live_pushes_nothing() {
    let f = Fixture::new().await;
    let report = f
        .vault
        .restore(&f.env, &f.target(), req(Selector::Version(3)))
        .await
        .unwrap();
    assert!(!report.pushed);
    assert_eq!(report.pre_restore, PreRestore::NotNeeded);
    assert_eq!(report.verified, Verification::NotPushed);
    assert!(report.undo.is_empty());
    assert!(
        matches!(&report.recorded, Recorded::Latest { snapshot } if snapshot.version == 3),
        "{:?}",
        report.recorded
    );
    assert_eq!(f.versions().await, 3);
}

#[tokio::test]
async fn missing_live_needs_consent() {
    let f = Fixture::new().await;
    std::fs::remove_file(&f.live).unwrap();
    let plan = f
        .vault
        .plan_restore(&f.env, &f.target(), &Selector::Version(2))
        .await
        .unwrap();
    assert!(matches!(plan.live, LiveState::Missing { .. }));
    assert!(plan.diff.is_none());
    let e = f
        .vault
        .restore(&f.env, &f.target(), req(Selector::Version(2)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    assert!(e.to_string().contains("missing"), "{e}");
    assert!(e.to_string().contains("nothing was pushed"), "{e}");
    assert!(!f.live.exists());

    let mut r = req(Selector::Version(2));
    r.allow_missing_live = true;
    let report = f.vault.restore(&f.env, &f.target(), r).await.unwrap();
    assert!(matches!(report.pre_restore, PreRestore::Impossible { .. }));
    assert!(report.undo.is_empty());
    assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(B)));
    assert_eq!(f.versions().await, 4, "v4 records what is live now");
    assert_eq!(report.recorded.snapshot().unwrap().restored_from, Some(2));
}

#[tokio::test]
async fn live_that_is_not_json_needs_consent() {
    let f = Fixture::new().await;
    std::fs::write(&f.live, b"<html>502 Bad Gateway</html>").unwrap();
    let e = f
        .vault
        .restore(&f.env, &f.target(), req(Selector::Version(1)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    assert!(e.to_string().contains("can't be snapshotted"), "{e}");
    assert_eq!(
        std::fs::read(&f.live).unwrap(),
        b"<html>502 Bad Gateway</html>"
    );
    // `allow_missing_live` (the CLI's --yes) is not enough: live is not missing.
    let mut r = req(Selector::Version(1));
    r.allow_missing_live = true;
    let e = f.vault.restore(&f.env, &f.target(), r).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    assert_eq!(
        std::fs::read(&f.live).unwrap(),
        b"<html>502 Bad Gateway</html>"
    );
    let mut r = req(Selector::Version(1));
    r.allow_unreadable_live = true;
    let report = f.vault.restore(&f.env, &f.target(), r).await.unwrap();
    assert!(matches!(
        report.pre_restore,
        PreRestore::Impossible {
            overridden_unreadable: true,
            ..
        }
    ));
    assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(A)));
}

/// A live target whose reads fail (a 503 from a proxy in front of a restarting
/// platform) `fails` times, then succeed; it counts reads and writes.
#[derive(Debug)]
struct Flaky {
    inner: FileTarget,
    fails: u32,
    kind: ErrorKind,
    reads: std::sync::atomic::AtomicU32,
    writes: std::sync::atomic::AtomicU32,
}

impl Flaky {
    fn new(f: &Fixture, fails: u32, kind: ErrorKind) -> Self {
        Self {
            inner: f.target(),
            fails,
            kind,
            reads: 0.into(),
            writes: 0.into(),
        }
    }
    fn reads(&self) -> u32 {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn writes(&self) -> u32 {
        self.writes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait]
impl LiveTarget for Flaky {
    fn describe(&self) -> String {
        format!("flaky {}", self.inner.describe())
    }
    async fn read(&self, limit: u64) -> Result<Bytes> {
        let n = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if n < self.fails {
            return Err(Error::new(
                self.kind,
                "GET answered 503 Service Unavailable",
            ));
        }
        self.inner.read(limit).await
    }
    async fn write(&self, bytes: Bytes) -> Result<()> {
        self.writes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.write(bytes).await
    }
}

fn quick(mut r: RestoreRequest) -> RestoreRequest {
    r.live_retry = LiveRetry {
        attempts: 3,
        backoff: std::time::Duration::from_millis(1),
    };
    r
}

#[tokio::test]
async fn an_unreadable_live_is_read_three_times_then_refused_even_with_consent() {
    for kind in [ErrorKind::Unavailable, ErrorKind::Config] {
        let f = Fixture::new().await;
        std::fs::write(&f.live, corpus(B)).unwrap();
        let t = Flaky::new(&f, u32::MAX, kind);
        let mut r = quick(req(Selector::Version(1)));
        r.allow_missing_live = true;
        let e = f.vault.restore(&f.env, &t, r).await.unwrap_err();
        assert_eq!(e.kind(), kind, "the read's kind: a 503 stays unavailable");
        let text = e.to_string();
        assert!(text.contains("503"), "{text}");
        assert!(text.contains("3 reads"), "{text}");
        assert!(text.contains("nothing was pushed"), "{text}");
        assert_eq!(
            e.hint().unwrap().steps,
            vec![Step::OverrideUnreadableLive],
            "{text}"
        );
        assert_eq!(t.reads(), 3);
        assert_eq!(t.writes(), 0);
        assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(B)));
        assert_eq!(f.versions().await, 3, "no pre-restore snapshot");
    }
}

#[tokio::test]
async fn a_live_that_answers_on_a_retry_is_saved_before_the_push() {
    let f = Fixture::new().await;
    std::fs::write(&f.live, corpus(B)).unwrap();
    std::fs::write(&f.live, br#"{"unsaved": true}"#).unwrap();
    let t = Flaky::new(&f, 2, ErrorKind::Unavailable);
    let report = f
        .vault
        .restore(&f.env, &t, quick(req(Selector::Version(1))))
        .await
        .unwrap();
    assert_eq!(t.reads(), 4, "two failures, a success, the read-back");
    let PreRestore::Saved { snapshot } = &report.pre_restore else {
        panic!("{:?}", report.pre_restore);
    };
    assert_eq!(snapshot.version, 4);
    assert_eq!(report.undo, vec![Undo::Restore { version: 4 }]);
    assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(A)));
}

#[tokio::test]
async fn overwriting_an_unreadable_live_needs_the_override_and_is_recorded() {
    let f = Fixture::new().await;
    // Every read before the push fails; the read-back answers.
    let t = Flaky::new(&f, 3, ErrorKind::Unavailable);
    let mut r = quick(req(Selector::Version(1)));
    r.allow_unreadable_live = true;
    let report = f.vault.restore(&f.env, &t, r).await.unwrap();
    assert!(report.pushed);
    assert!(report.undo.is_empty());
    assert!(matches!(
        report.pre_restore,
        PreRestore::Impossible {
            overridden_unreadable: true,
            ..
        }
    ));
    assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(A)));
    let events = f.vault.events(&f.env, 10).await.unwrap();
    let ev = events.iter().find(|e| e.action == Action::Restore).unwrap();
    assert_eq!(
        ev.details["override_unreadable_live"], true,
        "{:?}",
        ev.details
    );
}

#[tokio::test]
async fn a_missing_live_is_not_retried() {
    let f = Fixture::new().await;
    std::fs::remove_file(&f.live).unwrap();
    let t = Flaky::new(&f, 0, ErrorKind::Unavailable);
    let e = f
        .vault
        .restore(&f.env, &t, quick(req(Selector::Version(1))))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
    assert_eq!(t.reads(), 1);
}

fn flip_byte(root: &Path, key: &str) {
    let path = root.join(key);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
}

#[tokio::test]
async fn a_corrupt_snapshot_is_refused_and_nothing_is_written() {
    let f = Fixture::new().await;
    std::fs::write(&f.live, corpus(B)).unwrap();
    flip_byte(f.store.root(), &layout::snapshot_key(&f.env, 1));
    let before = std::fs::read(&f.live).unwrap();
    let e = f
        .vault
        .plan_restore(&f.env, &f.target(), &Selector::Version(1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    let mut r = req(Selector::Version(1));
    r.allow_missing_live = true;
    let e = f.vault.restore(&f.env, &f.target(), r).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert!(e.to_string().contains("v1"), "{e}");
    assert!(e.to_string().contains("nothing was pushed"), "{e}");
    assert_eq!(std::fs::read(&f.live).unwrap(), before);
    assert_eq!(f.versions().await, 3, "no pre-restore snapshot either");
}

/// A file target whose writes fail the way a live platform's can: before writing
/// anything (a 500), after writing part of the bytes (a timeout mid-import), or by
/// storing something other than what was sent.
#[derive(Debug)]
struct Faulty {
    inner: FileTarget,
    path: PathBuf,
    fault: Fault,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    RefuseWrite,
    PartialWrite,
    Reformat,
    DropKey,
}

#[async_trait]
impl LiveTarget for Faulty {
    fn describe(&self) -> String {
        format!("faulty {}", self.inner.describe())
    }
    async fn read(&self, limit: u64) -> Result<Bytes> {
        self.inner.read(limit).await
    }
    async fn write(&self, bytes: Bytes) -> Result<()> {
        match self.fault {
            Fault::RefuseWrite => Err(Error::unavailable("PUT answered 500")),
            Fault::PartialWrite => {
                std::fs::write(&self.path, &bytes[..bytes.len() / 2]).unwrap();
                Err(Error::unavailable("PUT timed out after 30s"))
            }
            Fault::Reformat | Fault::DropKey => {
                let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                if matches!(self.fault, Fault::DropKey) {
                    v = serde_json::json!({"imported": "partly"});
                }
                self.inner
                    .write(serde_json::to_vec_pretty(&v).unwrap().into())
                    .await
            }
        }
    }
}

async fn restore_with(f: &Fixture, fault: Fault) -> Result<RestoreReport> {
    let t = Faulty {
        inner: f.target(),
        path: f.live.clone(),
        fault,
    };
    f.vault.restore(&f.env, &t, req(Selector::Version(1))).await
}

#[tokio::test]
async fn a_refused_push_leaves_live_unchanged_and_says_so() {
    let f = Fixture::new().await;
    std::fs::write(&f.live, corpus(B)).unwrap();
    let e = restore_with(&f, Fault::RefuseWrite).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let text = e.to_string();
    assert!(text.contains("500"), "{text}");
    assert!(text.contains("live is unchanged"), "{text}");
    assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(B)));
    // The pre-restore snapshot exists.
    let latest = f.vault.latest(&f.env).await.unwrap().unwrap();
    assert_eq!((latest.version, latest.trigger), (4, Trigger::PreRestore));
    let events = f.vault.events(&f.env, 10).await.unwrap();
    assert!(events.iter().any(|e| e.action == Action::Restore
        && e.details["outcome"] == "failed"
        && e.details["live_after"] == "unchanged"));
}

#[tokio::test]
async fn a_partial_push_names_the_state_and_the_undo_command() {
    let f = Fixture::new().await;
    std::fs::write(&f.live, corpus(B)).unwrap();
    let e = restore_with(&f, Fault::PartialWrite).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("partially written"), "{text}");
    // The undo is a hint the front ends render (the CLI as
    // `jetvault restore crm production 4 --yes`).
    let hint = e.hint().expect("the undo is a hint");
    assert_eq!(
        hint.steps,
        vec![
            Step::Restore((&f.env).into(), 4),
            Step::OverrideUnreadableLive
        ],
        "{text}"
    );
    // The undo command (the override lets it overwrite the half-written live, which
    // can't be snapshotted) does what it says.
    let mut undo = req(Selector::Version(4));
    undo.allow_unreadable_live = true;
    let report = f.vault.restore(&f.env, &f.target(), undo).await.unwrap();
    assert!(matches!(report.pre_restore, PreRestore::Impossible { .. }));
    assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(B)));
}

#[tokio::test]
async fn read_back_accepts_equal_json_and_refuses_a_changed_document() {
    let f = Fixture::new().await;
    let report = restore_with(&f, Fault::Reformat).await.unwrap();
    assert_eq!(report.verified, Verification::EquivalentJson);
    let e = restore_with(&f, Fault::DropKey).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert!(e.to_string().contains("live holds something else"), "{e}");
    assert!(
        matches!(
            e.hint().map(|h| h.steps.as_slice()),
            Some([Step::Restore(_, 4)])
        ),
        "{e}"
    );
}

#[tokio::test]
async fn restore_copy_writes_a_file_and_leaves_live_alone() {
    let f = Fixture::new().await;
    let out = f.dir.path().join("out.json");
    let report = f
        .vault
        .restore_copy(
            &f.env,
            &FileTarget::new(out.clone()),
            &Selector::Version(2),
            &Fixture::actor(),
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), corpus(B));
    assert_eq!(report.pre_restore, PreRestore::NotNeeded);
    assert_eq!(report.recorded, Recorded::NotRecorded);
    assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(C)));
    assert_eq!(f.versions().await, 3);
}

#[tokio::test]
async fn at_finds_the_newest_snapshot_at_or_before_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path()).unwrap());
    let vault = Vault::new(store.clone(), VaultOptions::default());
    let env = EnvRef::parse("crm", "production").unwrap();
    // Written now, long after their created_at (as a copied bucket would be).
    for (v, at) in [
        (1, "2024-01-01T10:00:00Z"),
        (2, "2024-01-02T10:00:00Z"),
        (3, "2024-01-03T10:00:00Z"),
    ] {
        crate::testutil::put_snapshot_at(store.as_ref(), &env, v, parse_time(at).unwrap()).await;
    }
    let at = |s: &str| Selector::At(parse_time(s).unwrap());
    let found = |s: &'static str| {
        let vault = vault.clone();
        let env = env.clone();
        let src = at(s);
        async move { vault.resolve(&env, &src).await }
    };
    assert_eq!(found("2024-01-02T10:00:00Z").await.unwrap().version, 2);
    assert_eq!(found("2024-01-02T23:59:59+02:00").await.unwrap().version, 2);
    assert_eq!(found("2030-01-01T00:00:00Z").await.unwrap().version, 3);
    let e = found("2023-12-31T00:00:00Z").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.to_string()
            .contains("the oldest, v1 taken 2024-01-01T10:00:00"),
        "{e}"
    );
    assert!(parse_time("2024-01-02 10:00:00").is_ok());
    assert_eq!(
        parse_time("yesterday").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    for v in 4..=30 {
        let day = format!("2024-02-{:02}T00:00:00Z", v - 3);
        crate::testutil::put_snapshot_at(store.as_ref(), &env, v, parse_time(&day).unwrap()).await;
    }
    assert_eq!(found("2024-02-10T12:00:00Z").await.unwrap().version, 13);
    assert_eq!(found("2024-02-10T00:00:00Z").await.unwrap().version, 13);
    assert_eq!(found("2024-01-31T00:00:00Z").await.unwrap().version, 3);
    let empty = EnvRef::parse("crm", "empty").unwrap();
    let e = vault
        .resolve(&empty, &at("2024-01-01T00:00:00Z"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has no snapshots"), "{e}");
}

#[tokio::test]
async fn labels_resolve_and_a_missing_one_names_the_recent_releases() {
    let f = Fixture::new().await;
    let label = Label::new("1.4.0").unwrap();
    let mut r = ReleaseRequest::new(2, Fixture::actor());
    r.label = Some(label.clone());
    f.vault.release(&f.env, r).await.unwrap();
    let meta = f
        .vault
        .resolve(&f.env, &Selector::Release(label))
        .await
        .unwrap();
    assert_eq!(meta.version, 2);
    let e = f
        .vault
        .resolve(&f.env, &Selector::Release(Label::new("1.5.0").unwrap()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("1.4.0"), "{e}");
    let meta = f
        .vault
        .resolve(&f.env, &Selector::CurrentRelease)
        .await
        .unwrap();
    assert_eq!(meta.version, 2);
    let e = f
        .vault
        .resolve(&f.env, &Selector::Version(7))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("the latest is v3"), "{e}");
}
