//! What one restore costs in store requests, counted by operation with a
//! [`CountingStore`] over the directory store: exact counts, so that a request added to
//! the restore's path fails here (docs/PERFORMANCE.md, "Platform-wide restore").

use std::sync::Arc;

use super::*;
use crate::codec;
use crate::events::Actor;
use crate::live::file::FileTarget;
use crate::meta::Trigger;
use crate::snapshot::BackupRequest;
use crate::store::counting::{Ops, RequestCounts, minus, ops};
use crate::store::{CountingStore, LocalStore};
use crate::vault::{Vault, VaultOptions};

struct World {
    dir: tempfile::TempDir,
    vault: Vault,
    counts: Arc<RequestCounts>,
    env: EnvRef,
}

const GOOD: &[u8] = br#"{"flows":[1,2,3],"name":"good"}"#;
const BAD: &[u8] = br#"{"flows":[],"name":"damaged"}"#;

impl World {
    /// v1 = GOOD, v2 = BAD, written by backups (with their listing index entries), and
    /// the vault's marker checked: what a running process has done before a restore.
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = CountingStore::new(Arc::new(LocalStore::open(dir.path().join("s")).unwrap()));
        let counts = store.counts().clone();
        let vault = Vault::new(Arc::new(store), VaultOptions::default());
        let env = EnvRef::parse("crm", "prod").unwrap();
        for raw in [GOOD, BAD] {
            vault
                .backup(&env, BackupRequest::new(raw.to_vec(), Trigger::Manual))
                .await
                .unwrap();
        }
        vault.ensure_marker().await.unwrap();
        Self {
            dir,
            vault,
            counts,
            env,
        }
    }

    fn target(&self, live: &[u8]) -> FileTarget {
        let path = self.dir.path().join("live.json");
        std::fs::write(&path, live).unwrap();
        FileTarget::new(path)
    }

    /// Restores v1 to a live target holding `live`; the requests it made.
    async fn restore_v1(&self, live: &[u8]) -> (RestoreReport, Ops) {
        let target = self.target(live);
        let before = ops(&self.counts);
        let req = RestoreRequest::new(Selector::Version(1), Actor::default());
        let report = self.vault.restore(&self.env, &target, req).await.unwrap();
        assert_eq!(
            std::fs::read(self.dir.path().join("live.json")).unwrap(),
            GOOD
        );
        (report, minus(ops(&self.counts), before))
    }
}

#[tokio::test]
async fn a_restore_over_live_equal_to_the_latest_costs_six_requests() {
    let w = World::new().await;
    let (report, cost) = w.restore_v1(BAD).await;
    assert!(
        matches!(&report.pre_restore, PreRestore::Reused { snapshot } if snapshot.version == 2)
    );
    assert!(matches!(&report.recorded, Recorded::Saved { snapshot } if snapshot.version == 3));
    assert_eq!(report.verified, Verification::Sha256);
    // GET v1 (its metadata comes with it: no HEAD); one `latest` (one LIST: the newest
    // index entry and snapshot key in one page) for the pre-restore check; v3 claimed after
    // the v2 that check found (no second `latest`): its object, index entry and backup
    // event; the restore event.
    assert_eq!(cost, (1, 0, 4, 1, 0), "(get, head, put, list, delete)");
}

#[tokio::test]
async fn a_restore_that_saves_live_first_costs_nine_requests() {
    let w = World::new().await;
    let edited = br#"{"flows":[9],"name":"edited by hand"}"#;
    let (report, cost) = w.restore_v1(edited).await;
    let PreRestore::Saved { snapshot } = &report.pre_restore else {
        panic!("{:?}", report.pre_restore)
    };
    assert_eq!(snapshot.version, 3);
    assert_eq!(snapshot.sha256, codec::sha256_hex(edited));
    assert!(matches!(&report.recorded, Recorded::Saved { snapshot } if snapshot.version == 4));
    // As above, plus the pre-restore snapshot's object, index entry and event; the
    // restored configuration is claimed as v4 after the v3 just written.
    assert_eq!(cost, (1, 0, 7, 1, 0), "(get, head, put, list, delete)");
    // Both are where a listing finds them, in order.
    let listed: Vec<_> = w
        .vault
        .list(&w.env, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.version, m.trigger))
        .collect();
    assert_eq!(
        listed,
        [
            (4, Trigger::Restore),
            (3, Trigger::PreRestore),
            (2, Trigger::Manual),
            (1, Trigger::Manual)
        ]
    );
}

#[tokio::test]
async fn a_stale_latest_from_the_caller_loses_nothing_and_numbers_stay_dense() {
    let w = World::new().await;
    let stale = w.vault.latest(&w.env).await.unwrap().unwrap();
    assert_eq!(stale.version, 2);
    // A backup after the caller read the latest: v3 holds something else.
    let other = br#"{"flows":[7],"name":"written meanwhile"}"#;
    w.vault
        .backup(
            &w.env,
            BackupRequest::new(other.to_vec(), Trigger::Schedule),
        )
        .await
        .unwrap();
    // Live still holds v2's bytes: v2 is the undo point (immutable, the same bytes).
    let target = w.target(BAD);
    let mut req = RestoreRequest::new(Selector::Version(1), Actor::default());
    req.latest = Some(stale);
    let report = w.vault.restore(&w.env, &target, req).await.unwrap();
    assert!(
        matches!(&report.pre_restore, PreRestore::Reused { snapshot } if snapshot.version == 2)
    );
    // The claim of v3 failed (taken), the latest was read, v4 written: no gap, no
    // overwrite.
    assert!(matches!(&report.recorded, Recorded::Saved { snapshot } if snapshot.version == 4));
    assert_eq!(w.vault.all_versions(&w.env).await.unwrap(), [4, 3, 2, 1]);
    let (_, v3) = w.vault.get(&w.env, 3).await.unwrap();
    assert_eq!(&v3[..], other);

    // Live held something new: the pre-restore snapshot can't reuse a stale latest.
    let stale = w.vault.latest(&w.env).await.unwrap().unwrap();
    w.vault
        .backup(&w.env, BackupRequest::new(BAD.to_vec(), Trigger::Schedule))
        .await
        .unwrap();
    let edited = br#"{"flows":[8],"name":"edited"}"#;
    let target = w.target(edited);
    let mut req = RestoreRequest::new(Selector::Version(1), Actor::default());
    req.latest = Some(stale);
    let report = w.vault.restore(&w.env, &target, req).await.unwrap();
    let PreRestore::Saved { snapshot } = &report.pre_restore else {
        panic!("{:?}", report.pre_restore)
    };
    assert_eq!(snapshot.version, 6);
    assert_eq!(snapshot.sha256, codec::sha256_hex(edited));
    assert!(matches!(&report.recorded, Recorded::Saved { snapshot } if snapshot.version == 7));
}
