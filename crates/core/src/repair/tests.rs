use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::events::Action;
use crate::release::ReleaseRequest;
use crate::snapshot::{BackupRequest, Trigger};
use crate::store::Store;
use crate::testutil::local_vault;

fn actor() -> Actor {
    Actor {
        who: Some("tester".into()),
        via: "test".into(),
        from: None,
    }
}

fn now_opts() -> RepairOptions {
    RepairOptions {
        grace: Duration::ZERO,
        ..RepairOptions::new(actor())
    }
}

fn kinds(gaps: &[Gap]) -> BTreeMap<&'static str, usize> {
    let mut m = BTreeMap::new();
    for g in gaps {
        *m.entry(g.kind.as_str()).or_default() += 1;
    }
    m
}

/// The keys of `env`'s events of `action` (about `version`, if given).
async fn event_keys(
    store: &dyn Store,
    env: &EnvRef,
    action: Action,
    version: Option<u64>,
) -> Vec<String> {
    let page = store
        .list(&layout::events_prefix(env), None, 1000)
        .await
        .unwrap();
    let mut keys = Vec::new();
    for o in page.objects {
        let e: Event = serde_json::from_slice(&store.get(&o.key).await.unwrap().bytes).unwrap();
        if e.action == action && (version.is_none() || e.version == version) {
            keys.push(o.key);
        }
    }
    keys
}

async fn delete_events(store: &dyn Store, env: &EnvRef, action: Action, version: Option<u64>) {
    let keys = event_keys(store, env, action, version).await;
    assert!(
        !keys.is_empty(),
        "no {action} event of {version:?} to delete"
    );
    for k in keys {
        store.delete(&k).await.unwrap();
    }
}

/// A store with one gap of every kind, as kills between the writes of each command
/// leave them (the later writes are deleted after the fact).
async fn broken() -> (tempfile::TempDir, Arc<dyn Store>, Vault, EnvRef) {
    let (dir, store, vault, env) = local_vault();
    for i in 1..=6 {
        vault
            .backup(
                &env,
                BackupRequest::new(format!("{{\"n\":{i}}}"), Trigger::Manual),
            )
            .await
            .unwrap();
    }
    vault
        .release(&env, ReleaseRequest::new(2, actor()))
        .await
        .unwrap();
    let r2 = vault
        .release(&env, ReleaseRequest::new(3, actor()))
        .await
        .unwrap();
    vault.pin(&env, 1, &actor()).await.unwrap();
    let clean = vault.find_gaps(&env, Duration::ZERO).await.unwrap();
    assert!(clean.is_empty(), "{clean:#?}");
    // A restore killed after its pre-restore snapshot (v7): no restore event.
    vault
        .backup(
            &env,
            BackupRequest::new("{\"live\":1}", Trigger::PreRestore),
        )
        .await
        .unwrap();

    // backup killed before its index entry and its event (v4).
    let v4 = vault
        .index_entries(&env, None, 100)
        .await
        .remove(&4)
        .unwrap();
    store.delete(&v4.key).await.unwrap();
    delete_events(store.as_ref(), &env, Action::Backup, Some(4)).await;
    // release killed right after moving the pointer: no history entry, label, event.
    store.delete(&layout::release_key(&env, 2)).await.unwrap();
    store
        .delete(&layout::label_key(&env, &r2.release.label))
        .await
        .unwrap();
    delete_events(store.as_ref(), &env, Action::Release, Some(3)).await;
    // pin killed before its event.
    delete_events(store.as_ref(), &env, Action::Pin, Some(1)).await;
    // prune killed after deleting v5 (the entry of v5 left as a hand-deletion would).
    store.delete(&layout::snapshot_key(&env, 5)).await.unwrap();
    // A temporary file of a killed write.
    let tmp = dir
        .path()
        .join(layout::snapshots_prefix(&env))
        .join(".jvtmp-killed");
    std::fs::write(&tmp, b"partial").unwrap();
    (dir, store, vault, env)
}

#[tokio::test]
async fn names_every_gap_a_kill_leaves_and_repairs_each_once() {
    let (dir, store, vault, env) = broken().await;
    let gaps = vault.find_gaps(&env, Duration::ZERO).await.unwrap();
    let found = kinds(&gaps);
    assert_eq!(
        found,
        BTreeMap::from([
            ("dangling_index_entry", 1),
            ("leftover_file", 1),
            ("missing_event", 5), // backup v4, release r2, pin v1, restore v7, prune v5
            ("missing_index_entry", 1),
            ("missing_release_record", 1),
        ]),
        "{gaps:#?}"
    );
    // Young gaps are a running writer's: not named.
    assert!(
        vault
            .find_gaps(&env, Duration::from_secs(3600))
            .await
            .unwrap()
            .is_empty()
    );
    // verify names them too, with the same kinds.
    let opts = crate::verify::VerifyOptions {
        grace: Duration::ZERO,
        ..Default::default()
    };
    let report = vault.verify_env(&env, &opts).await.unwrap();
    assert_eq!(kinds(&report.gaps), found);

    // A dry run writes nothing.
    let dry = vault
        .repair_env(
            &env,
            &RepairOptions {
                dry_run: true,
                ..now_opts()
            },
        )
        .await
        .unwrap();
    assert_eq!(kinds(&dry.repaired), found);
    assert_eq!(
        kinds(&vault.find_gaps(&env, Duration::ZERO).await.unwrap()),
        found
    );

    let done = vault.repair_env(&env, &now_opts()).await.unwrap();
    assert!(done.failed.is_empty(), "{:?}", done.failed);
    assert_eq!(kinds(&done.repaired), found);
    assert!(
        vault
            .find_gaps(&env, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    let again = vault.repair_env(&env, &now_opts()).await.unwrap();
    assert!(again.repaired.is_empty() && again.failed.is_empty());

    // What was rebuilt: the index entry, the release's history entry and label key,
    // the events (marked as reconstructed, naming their source); the temp file is gone
    // and no snapshot or release was touched.
    assert!(vault.index_entries(&env, None, 100).await.contains_key(&4));
    assert!(!vault.index_entries(&env, None, 100).await.contains_key(&5));
    assert_eq!(
        vault.history_entry(&env, 2).await.unwrap().unwrap().version,
        3
    );
    assert_eq!(vault.all_versions(&env).await.unwrap(), [7, 6, 4, 3, 2, 1]);
    assert!(
        !dir.path()
            .join(layout::snapshots_prefix(&env))
            .join(".jvtmp-killed")
            .exists()
    );
    let events = vault.events(&env, 100).await.unwrap();
    let rebuilt: Vec<&Event> = events.iter().filter(|e| e.actor.via == "repair").collect();
    assert_eq!(rebuilt.len(), 5, "{rebuilt:#?}");
    for e in &rebuilt {
        let note = &e.details["reconstructed"];
        assert_eq!(note["by"]["who"], "tester", "{e:?}");
        assert!(
            note["from"].as_str().is_some_and(|f| !f.is_empty()),
            "{e:?}"
        );
    }
    let backup = rebuilt.iter().find(|e| e.action == Action::Backup).unwrap();
    assert_eq!(backup.version, Some(4));
    assert_eq!(
        backup.at,
        vault.snapshot_meta(&env, 4).await.unwrap().created_at
    );
    let release = rebuilt
        .iter()
        .find(|e| e.action == Action::Release)
        .unwrap();
    assert_eq!(release.details["seq"], 2);
    let prune = rebuilt.iter().find(|e| e.action == Action::Prune).unwrap();
    assert_eq!(
        (
            prune.details["oldest_deleted"].as_u64(),
            prune.details["newest_deleted"].as_u64()
        ),
        (Some(5), Some(5))
    );
    let restore = rebuilt
        .iter()
        .find(|e| e.action == Action::Restore)
        .unwrap();
    assert_eq!(restore.details["outcome"], "interrupted");
    drop(store);
}

/// Two repairs at once write each missing record once: the keys depend only on what
/// they describe, and every write is create-only.
#[tokio::test]
async fn racing_repairs_write_each_event_once() {
    let (_dir, store, vault, env) = broken().await;
    let before = event_keys(store.as_ref(), &env, Action::Backup, None)
        .await
        .len();
    let opts = now_opts();
    let (a, b) = tokio::join!(vault.repair_env(&env, &opts), vault.repair_env(&env, &opts));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.failed.is_empty() && b.failed.is_empty());
    assert!(
        vault
            .find_gaps(&env, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    let after = event_keys(store.as_ref(), &env, Action::Backup, None)
        .await
        .len();
    assert_eq!(after, before + 1, "one backup event rebuilt, not two");
    let events = vault.events(&env, 100).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.actor.via == "repair").count(), 5);
}

/// Events written by the commands themselves satisfy the checks: a release history
/// with rollbacks, a restore's pre-restore snapshot, a prune's deletions.
#[tokio::test]
async fn the_commands_own_records_leave_no_gap() {
    let (_dir, _store, vault, env) = local_vault();
    for i in 1..=5 {
        vault
            .backup(
                &env,
                BackupRequest::new(format!("{{\"n\":{i}}}"), Trigger::Manual),
            )
            .await
            .unwrap();
    }
    vault
        .release(&env, ReleaseRequest::new(4, actor()))
        .await
        .unwrap();
    vault
        .release(&env, ReleaseRequest::new(5, actor()))
        .await
        .unwrap();
    vault.rollback(&env, None, actor(), None).await.unwrap();
    let policy = crate::config::RetentionPolicy {
        keep_last: Some(1),
        ..Default::default()
    };
    let report = vault
        .apply_retention(&env, &policy, &crate::retention::PruneOptions::default())
        .await
        .unwrap();
    assert!(report.deleted > 0);
    let dir = tempfile::tempdir().unwrap();
    let live = crate::live::file::FileTarget::new(dir.path().join("live.json"));
    crate::live::LiveTarget::write(&live, bytes::Bytes::from_static(b"{\"live\":true}"))
        .await
        .unwrap();
    let mut req = crate::restore::RestoreRequest::new(crate::Selector::Version(5), actor());
    req.allow_missing_live = true;
    vault.restore(&env, &live, req).await.unwrap();
    let gaps = vault.find_gaps(&env, Duration::ZERO).await.unwrap();
    assert!(gaps.is_empty(), "{gaps:#?}");
}

/// A promote killed before its event: the copy's source names where it came from.
#[tokio::test]
async fn a_promote_without_its_event_is_rebuilt_from_the_copy() {
    let (_dir, store, vault, env) = local_vault();
    let staging = EnvRef::parse("crm", "staging").unwrap();
    vault
        .backup(&staging, BackupRequest::new("{\"s\":1}", Trigger::Manual))
        .await
        .unwrap();
    vault
        .promote(
            &env.app,
            &staging.env,
            &env.env,
            crate::PromoteRequest::new(actor()),
        )
        .await
        .unwrap();
    assert!(
        vault
            .find_gaps(&env, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    delete_events(store.as_ref(), &env, Action::Promote, Some(1)).await;
    let gaps = vault.find_gaps(&env, Duration::ZERO).await.unwrap();
    assert_eq!(
        kinds(&gaps),
        BTreeMap::from([("missing_event", 1)]),
        "{gaps:#?}"
    );
    vault.repair_env(&env, &now_opts()).await.unwrap();
    let events = vault.events(&env, 10).await.unwrap();
    let promote = events.iter().find(|e| e.action == Action::Promote).unwrap();
    assert_eq!(promote.details["from"], "crm/staging");
    assert_eq!(promote.details["from_version"], 1);
    assert!(
        vault
            .find_gaps(&env, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

/// With the default grace period, a repair running beside writers takes nothing of
/// theirs for a gap: it writes nothing, and the writers' own records all arrive.
#[tokio::test]
async fn repair_beside_running_writers_touches_nothing_of_theirs() {
    let (_dir, _store, vault, env) = local_vault();
    let writers = async {
        for i in 0..20 {
            vault
                .backup(
                    &env,
                    BackupRequest::new(format!("{{\"n\":{i}}}"), Trigger::Manual),
                )
                .await
                .unwrap();
            if i % 5 == 4 {
                vault
                    .release(&env, ReleaseRequest::new(i + 1, actor()))
                    .await
                    .unwrap();
            }
        }
    };
    let repairs = async {
        let mut written = 0;
        for _ in 0..10 {
            let r = vault
                .repair_env(&env, &RepairOptions::new(actor()))
                .await
                .unwrap();
            written += r.repaired.len() + r.failed.len();
            tokio::task::yield_now().await;
        }
        written
    };
    let ((), written) = tokio::join!(writers, repairs);
    assert_eq!(written, 0);
    let events = vault.events(&env, 100).await.unwrap();
    assert_eq!(
        events.len(),
        24,
        "20 backups and 4 releases, each recorded once"
    );
    assert!(events.iter().all(|e| e.actor.via != "repair"));
    assert!(
        vault
            .find_gaps(&env, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

/// An unpin killed after deleting the pin, before its event: verify names it, repair
/// writes the unpin event once, dated just after the last pin; a pin and unpin that
/// both completed, and a version pinned again, leave no gap.
#[tokio::test]
async fn an_unpin_without_its_event_is_rebuilt_from_the_pin_events() {
    let (_dir, store, vault, env) = local_vault();
    for i in 1..=2 {
        vault
            .backup(
                &env,
                BackupRequest::new(format!("{{\"n\":{i}}}"), Trigger::Manual),
            )
            .await
            .unwrap();
    }
    // v1: pinned, unpinned, pinned again (still pinned); v2: pinned and unpinned.
    vault.pin(&env, 1, &actor()).await.unwrap();
    vault.unpin(&env, 1, &actor()).await.unwrap();
    vault.pin(&env, 1, &actor()).await.unwrap();
    vault.pin(&env, 2, &actor()).await.unwrap();
    vault.unpin(&env, 2, &actor()).await.unwrap();
    let clean = vault.find_gaps(&env, Duration::ZERO).await.unwrap();
    assert!(clean.is_empty(), "{clean:#?}");

    // The kill: v2's unpin event never written.
    delete_events(store.as_ref(), &env, Action::Unpin, Some(2)).await;
    // Younger than the grace period: not named yet.
    assert!(
        vault
            .find_gaps(&env, Duration::from_secs(600))
            .await
            .unwrap()
            .is_empty()
    );
    let gaps = vault.find_gaps(&env, Duration::ZERO).await.unwrap();
    assert_eq!(
        kinds(&gaps),
        BTreeMap::from([("missing_event", 1)]),
        "{gaps:#?}"
    );
    assert_eq!(gaps[0].version, Some(2));
    assert!(gaps[0].detail.contains("unpinned"), "{}", gaps[0].detail);

    let report = vault.repair_env(&env, &now_opts()).await.unwrap();
    assert_eq!(report.repaired.len(), 1, "{report:#?}");
    let unpins = event_keys(store.as_ref(), &env, Action::Unpin, Some(2)).await;
    assert_eq!(unpins.len(), 1);
    let event: Event = serde_json::from_slice(&store.get(&unpins[0]).await.unwrap().bytes).unwrap();
    assert_eq!(event.actor.via, "repair");
    assert!(event.details["reconstructed"].is_object(), "{event:?}");
    let pin = vault
        .events(&env, 20)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == Action::Pin && e.version == Some(2))
        .map(|e| e.at)
        .max()
        .unwrap();
    assert!(event.at > pin, "{} after {pin}", event.at);
    // Closed: nothing left, and a second repair writes nothing.
    assert!(
        vault
            .find_gaps(&env, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    let again = vault.repair_env(&env, &now_opts()).await.unwrap();
    assert!(again.repaired.is_empty(), "{again:#?}");
}
