//! Unit tests of releases over a local directory store.

use super::*;

const FIXTURES: [&[u8]; 3] = [
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/nodered-http-endpoint-example.json"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/appsmith-import-app-all-access.json"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/grafana-k8s-views-nodes.json"
    )),
];

struct Fixture {
    _dir: tempfile::TempDir,
    vault: Vault,
    env: EnvRef,
}

fn actor() -> Actor {
    Actor {
        who: Some("ada".into()),
        via: "test".into(),
        from: None,
    }
}

/// A vault with `crm/production` holding one snapshot per fixture (v1, v2, v3).
async fn fixture() -> Fixture {
    let (dir, _store, vault, env) = crate::testutil::local_vault();
    for raw in FIXTURES {
        let out = vault
            .backup(&env, BackupRequest::new(raw, Trigger::Manual))
            .await
            .unwrap();
        assert!(matches!(out, BackupOutcome::Created(_)));
    }
    Fixture {
        _dir: dir,
        vault,
        env,
    }
}

fn req(version: u64) -> ReleaseRequest {
    ReleaseRequest::new(version, actor())
}

fn labelled(version: u64, label: &str) -> ReleaseRequest {
    ReleaseRequest {
        label: Some(Label::new(label).unwrap()),
        ..req(version)
    }
}

async fn pointer_etag(f: &Fixture) -> String {
    f.vault
        .store()
        .head(&layout::release_pointer_key(&f.env))
        .await
        .unwrap()
        .etag
}

async fn history_seqs(f: &Fixture) -> Vec<u64> {
    let page = f
        .vault
        .store()
        .list(&layout::releases_prefix(&f.env), None, 1000)
        .await
        .unwrap();
    page.objects
        .iter()
        .filter_map(|o| layout::parse_release_key(&o.key))
        .collect()
}

#[tokio::test]
async fn first_release_writes_pointer_history_and_label() {
    let f = fixture().await;
    assert!(f.vault.current_release(&f.env).await.unwrap().is_none());
    let p = f.vault.release(&f.env, req(2)).await.unwrap();
    let r = &p.release;
    assert_eq!((r.seq, r.label.as_str(), r.version), (1, "1", 2));
    assert_eq!(r.kind, ReleaseKind::Release);
    assert_eq!(r.previous, None);
    assert_eq!(r.base, None);
    assert_eq!(r.released_by.as_deref(), Some("ada"));
    let meta = f.vault.snapshot_meta(&f.env, 2).await.unwrap();
    assert_eq!(
        (&r.sha256, r.size, r.stored_size),
        (&meta.sha256, meta.size, meta.stored_size)
    );
    assert_eq!(p.etag, pointer_etag(&f).await);
    assert_eq!(
        f.vault.current_release(&f.env).await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(history_seqs(&f).await, vec![1]);
    assert_eq!(
        f.vault
            .find_label(&f.env, &Label::new("1").unwrap())
            .await
            .unwrap(),
        p.release
    );
    let events = f.vault.events(&f.env, 10).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == Action::Release && e.version == Some(2))
    );
}

#[tokio::test]
async fn second_release_records_what_it_replaced() {
    let f = fixture().await;
    f.vault.release(&f.env, req(1)).await.unwrap();
    let p = f.vault.release(&f.env, labelled(3, "1.4.0")).await.unwrap();
    let r = &p.release;
    assert_eq!((r.seq, r.label.as_str(), r.version), (2, "1.4.0", 3));
    assert_eq!(
        r.previous,
        Some(ReleaseRef {
            seq: 1,
            label: Label::new("1").unwrap(),
            version: 1
        })
    );
    assert_eq!(r.base, Some(1));
    let all = f.vault.releases(&f.env, 10).await.unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 1]);
    assert_eq!(f.vault.releases(&f.env, 1).await.unwrap().len(), 1);
    let older = f.vault.releases_page(&f.env, Some(2), 10).await.unwrap();
    assert_eq!(older.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1]);
}

#[tokio::test]
async fn reused_label_is_a_conflict_and_writes_nothing() {
    let f = fixture().await;
    f.vault.release(&f.env, labelled(1, "1.0.0")).await.unwrap();
    f.vault.release(&f.env, labelled(2, "1.1.0")).await.unwrap();
    let etag = pointer_etag(&f).await;
    for label in ["1.1.0", "1.0.0"] {
        let e = f
            .vault
            .release(&f.env, labelled(3, label))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{label}: {e}");
        assert!(e.to_string().contains(label), "{e}");
    }
    assert_eq!(pointer_etag(&f).await, etag);
    assert_eq!(history_seqs(&f).await, vec![2, 1]);
}

#[tokio::test]
async fn default_label_skips_numbers_taken_by_hand() {
    let f = fixture().await;
    let p = f.vault.release(&f.env, labelled(1, "2")).await.unwrap();
    assert_eq!(p.release.seq, 1);
    let p = f.vault.release(&f.env, req(2)).await.unwrap();
    assert_eq!((p.release.seq, p.release.label.as_str()), (2, "3"));
    let p = f.vault.release(&f.env, req(3)).await.unwrap();
    assert_eq!((p.release.seq, p.release.label.as_str()), (3, "4"));
}

#[tokio::test]
async fn if_match_must_be_the_current_etag() {
    let f = fixture().await;
    let first = f.vault.release(&f.env, req(1)).await.unwrap();
    let second = f
        .vault
        .release(
            &f.env,
            ReleaseRequest {
                if_match: Some(first.etag.clone()),
                ..req(2)
            },
        )
        .await
        .unwrap();
    // Stale: the first etag no longer holds.
    let e = f
        .vault
        .release(
            &f.env,
            ReleaseRequest {
                if_match: Some(first.etag.clone()),
                ..req(3)
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert!(
        e.to_string().contains(&second.etag),
        "names the current etag: {e}"
    );
    assert_eq!(history_seqs(&f).await, vec![2, 1]);
    // Unquoted works as well as quoted.
    let bare = second.etag.trim_matches('"').to_string();
    assert_ne!(bare, second.etag, "the local store quotes its etags");
    let third = f
        .vault
        .release(
            &f.env,
            ReleaseRequest {
                if_match: Some(bare),
                ..req(3)
            },
        )
        .await
        .unwrap();
    assert_eq!(third.release.seq, 3);
    // `*`: any current release.
    let fourth = f
        .vault
        .release(
            &f.env,
            ReleaseRequest {
                if_match: Some("*".into()),
                ..req(1)
            },
        )
        .await
        .unwrap();
    assert_eq!(fourth.release.seq, 4);
}

#[tokio::test]
async fn if_match_without_a_pointer_fails() {
    let f = fixture().await;
    let e = f
        .vault
        .release(
            &f.env,
            ReleaseRequest {
                if_match: Some("\"0123\"".into()),
                ..req(1)
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    let e = f
        .vault
        .release(
            &f.env,
            ReleaseRequest {
                if_match: Some("*".into()),
                ..req(1)
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert!(f.vault.current_release(&f.env).await.unwrap().is_none());
}

#[tokio::test]
async fn missing_version_and_long_notes_are_refused() {
    let f = fixture().await;
    let e = f.vault.release(&f.env, req(9)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("v9"), "{e}");
    let e = f
        .vault
        .release(
            &f.env,
            ReleaseRequest {
                notes: Some("x".repeat(MAX_NOTES_LEN + 1)),
                ..req(1)
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(f.vault.current_release(&f.env).await.unwrap().is_none());
}

#[tokio::test]
async fn rollback_twice_goes_two_steps_back() {
    let f = fixture().await;
    for v in 1..=3 {
        f.vault.release(&f.env, req(v)).await.unwrap();
    }
    let p = f.vault.rollback(&f.env, None, actor(), None).await.unwrap();
    let r = &p.release;
    assert_eq!((r.seq, r.version, r.kind), (4, 2, ReleaseKind::Rollback));
    assert_eq!(r.label.as_str(), "4");
    assert_eq!(r.previous.as_ref().map(|p| p.seq), Some(3));
    assert_eq!(r.base, Some(1));
    assert!(r.notes.as_deref().unwrap().contains("r2"), "{:?}", r.notes);

    let p = f
        .vault
        .rollback(&f.env, Some(p.etag.clone()), actor(), Some("again".into()))
        .await
        .unwrap();
    let r = &p.release;
    assert_eq!((r.seq, r.version, r.base), (5, 1, None));
    assert_eq!(r.notes.as_deref(), Some("again"));

    let e = f
        .vault
        .rollback(&f.env, None, actor(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("no release before"), "{e}");

    // A new release after rollbacks rolls back to the rolled-back state.
    f.vault.release(&f.env, req(3)).await.unwrap();
    let p = f.vault.rollback(&f.env, None, actor(), None).await.unwrap();
    assert_eq!((p.release.seq, p.release.version), (7, 1));
    assert_eq!(history_seqs(&f).await, vec![7, 6, 5, 4, 3, 2, 1]);
    let events = f.vault.events(&f.env, 50).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == Action::Rollback)
            .count(),
        3
    );
}

#[tokio::test]
async fn rollback_needs_a_release_and_a_matching_etag() {
    let f = fixture().await;
    let e = f
        .vault
        .rollback(&f.env, None, actor(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    f.vault.release(&f.env, req(1)).await.unwrap();
    let e = f
        .vault
        .rollback(&f.env, None, actor(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    f.vault.release(&f.env, req(2)).await.unwrap();
    let e = f
        .vault
        .rollback(&f.env, Some("\"stale\"".into()), actor(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert_eq!(
        f.vault
            .current_release(&f.env)
            .await
            .unwrap()
            .unwrap()
            .release
            .seq,
        2
    );
}

#[tokio::test]
async fn history_is_repaired_after_a_crash_between_pointer_and_history() {
    let f = fixture().await;
    f.vault.release(&f.env, req(1)).await.unwrap();
    let crashed = f.vault.release(&f.env, labelled(2, "2.0.0")).await.unwrap();
    // Simulate a crash after the pointer moved: its history entry and label key never
    // got written.
    let store = f.vault.store();
    store.delete(&layout::release_key(&f.env, 2)).await.unwrap();
    let label = Label::new("2.0.0").unwrap();
    store
        .delete(&layout::label_key(&f.env, &label))
        .await
        .unwrap();
    assert_eq!(history_seqs(&f).await, vec![1]);

    // Readers still see it; its label is still taken.
    let all = f.vault.releases(&f.env, 10).await.unwrap();
    assert_eq!(all[0], crashed.release);
    assert_eq!(all.len(), 2);
    let page = f.vault.releases_page(&f.env, Some(3), 1).await.unwrap();
    assert_eq!(page, vec![crashed.release.clone()]);
    let page = f.vault.releases_page(&f.env, Some(2), 10).await.unwrap();
    assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1]);
    assert_eq!(
        f.vault.find_label(&f.env, &label).await.unwrap(),
        crashed.release
    );
    let e = f
        .vault
        .release(&f.env, labelled(3, "2.0.0"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");

    // The next release writes what the crash left out, then itself.
    f.vault.release(&f.env, req(3)).await.unwrap();
    assert_eq!(history_seqs(&f).await, vec![3, 2, 1]);
    let entry = store.get(&layout::release_key(&f.env, 2)).await.unwrap();
    assert_eq!(Release::decode(&entry).unwrap(), crashed.release);
    assert!(store.head(&layout::label_key(&f.env, &label)).await.is_ok());
    // And rollback finds the repaired entry.
    let p = f.vault.rollback(&f.env, None, actor(), None).await.unwrap();
    assert_eq!(p.release.version, 2);
}

#[tokio::test]
async fn a_deleted_pointer_does_not_restart_the_numbering() {
    let f = fixture().await;
    f.vault.release(&f.env, req(1)).await.unwrap();
    f.vault.release(&f.env, req(2)).await.unwrap();
    f.vault
        .store()
        .delete(&layout::release_pointer_key(&f.env))
        .await
        .unwrap();
    let p = f.vault.release(&f.env, req(3)).await.unwrap();
    assert_eq!((p.release.seq, p.release.label.as_str()), (3, "3"));
    assert_eq!(p.release.previous.map(|r| r.seq), Some(2));
    assert_eq!(history_seqs(&f).await, vec![3, 2, 1]);
}

#[tokio::test]
async fn find_label_names_labels_nearby() {
    let f = fixture().await;
    f.vault.release(&f.env, labelled(1, "1.3.0")).await.unwrap();
    f.vault.release(&f.env, labelled(2, "1.4.0")).await.unwrap();
    let e = f
        .vault
        .find_label(&f.env, &Label::new("1.3.5").unwrap())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let text = e.to_string();
    assert!(text.contains("1.3.0") && text.contains("1.4.0"), "{text}");
}

#[tokio::test]
async fn conditional_read_of_the_pointer() {
    let f = fixture().await;
    let e = f
        .vault
        .current_release_if_changed(&f.env, "\"x\"")
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let p1 = f.vault.release(&f.env, req(1)).await.unwrap();
    assert_eq!(
        f.vault
            .current_release_if_changed(&f.env, &p1.etag)
            .await
            .unwrap(),
        None
    );
    let bare = p1.etag.trim_matches('"');
    assert_eq!(
        f.vault
            .current_release_if_changed(&f.env, bare)
            .await
            .unwrap(),
        None
    );
    let p2 = f.vault.release(&f.env, req(2)).await.unwrap();
    assert_eq!(
        f.vault
            .current_release_if_changed(&f.env, &p1.etag)
            .await
            .unwrap(),
        Some(p2)
    );
}

#[tokio::test]
async fn release_selector_resolves_through_the_pointer() {
    let f = fixture().await;
    assert_eq!("release".parse::<Selector>().unwrap(), Selector::Release);
    let e = f
        .vault
        .resolve(&f.env, &Selector::Release)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("has no release"), "{e}");
    f.vault.release(&f.env, req(2)).await.unwrap();
    let meta = f.vault.resolve(&f.env, &Selector::Release).await.unwrap();
    assert_eq!(meta.version, 2);
    let (_, raw) = f.vault.get(&f.env, meta.version).await.unwrap();
    assert_eq!(&raw[..], FIXTURES[1]);
}

fn staging(f: &Fixture) -> EnvRef {
    EnvRef::parse(f.env.app.as_str(), "staging").unwrap()
}

#[tokio::test]
async fn promote_copies_the_release_by_default() {
    let f = fixture().await;
    let src = staging(&f);
    // Source: v1 and v2; v1 is released, so it is what gets copied.
    for raw in &FIXTURES[..2] {
        f.vault
            .backup(&src, BackupRequest::new(*raw, Trigger::Manual))
            .await
            .unwrap();
    }
    f.vault.release(&src, req(1)).await.unwrap();
    let out = f
        .vault
        .promote(
            &f.env.app,
            &src.env,
            &f.env.env,
            PromoteRequest::new(actor()),
        )
        .await
        .unwrap();
    assert_eq!(out.source.version, 1);
    assert!(out.release.is_none());
    let BackupOutcome::Created(meta) = &out.snapshot else {
        panic!("expected a new snapshot, got {:?}", out.snapshot);
    };
    assert_eq!(meta.version, 4);
    assert_eq!(meta.trigger, Trigger::Promote);
    assert_eq!(meta.source.as_deref(), Some("promote:crm/staging@v1"));
    assert_eq!(meta.author.as_deref(), Some("ada"));
    let (_, raw) = f.vault.get(&f.env, 4).await.unwrap();
    assert_eq!(&raw[..], FIXTURES[0]);
    assert!(f.vault.current_release(&f.env).await.unwrap().is_none());

    // The same content again writes nothing.
    let again = f
        .vault
        .promote(
            &f.env.app,
            &src.env,
            &f.env.env,
            PromoteRequest::new(actor()),
        )
        .await
        .unwrap();
    assert!(matches!(again.snapshot, BackupOutcome::Unchanged(ref m) if m.version == 4));
    let events = f.vault.events(&f.env, 50).await.unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == Action::Promote)
            .count(),
        2
    );
}

#[tokio::test]
async fn promote_with_release() {
    let f = fixture().await;
    let src = staging(&f);
    for raw in FIXTURES.iter().rev() {
        f.vault
            .backup(&src, BackupRequest::new(*raw, Trigger::Manual))
            .await
            .unwrap();
    }
    f.vault.release(&f.env, labelled(3, "1.0.0")).await.unwrap();
    // No release in staging: its latest (v3, the node-red flow) is copied.
    let out = f
        .vault
        .promote(
            &f.env.app,
            &src.env,
            &f.env.env,
            PromoteRequest {
                release: true,
                label: Some(Label::new("1.1.0").unwrap()),
                notes: Some("from staging".into()),
                ..PromoteRequest::new(actor())
            },
        )
        .await
        .unwrap();
    assert_eq!(out.source.version, 3);
    assert_eq!(out.snapshot.snapshot().version, 4);
    let p = out.release.expect("released");
    assert_eq!(
        (p.release.label.as_str(), p.release.version, p.release.kind),
        ("1.1.0", 4, ReleaseKind::Promote)
    );
    let (_, raw) = f
        .vault
        .get(
            &f.env,
            f.vault
                .resolve(&f.env, &Selector::Release)
                .await
                .unwrap()
                .version,
        )
        .await
        .unwrap();
    assert_eq!(&raw[..], FIXTURES[0]);

    // A taken label fails before anything is copied.
    let e = f
        .vault
        .promote(
            &f.env.app,
            &src.env,
            &f.env.env,
            PromoteRequest {
                version: Some(Selector::Version(1)),
                release: true,
                label: Some(Label::new("1.0.0").unwrap()),
                ..PromoteRequest::new(actor())
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
    assert_eq!(f.vault.latest_version(&f.env).await.unwrap(), Some(4));

    // So does a stale If-Match.
    let e = f
        .vault
        .promote(
            &f.env.app,
            &src.env,
            &f.env.env,
            PromoteRequest {
                version: Some(Selector::Version(1)),
                release: true,
                if_match: Some("\"stale\"".into()),
                ..PromoteRequest::new(actor())
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert_eq!(f.vault.latest_version(&f.env).await.unwrap(), Some(4));

    // Into itself: refused.
    let e = f
        .vault
        .promote(
            &f.env.app,
            &f.env.env,
            &f.env.env,
            PromoteRequest::new(actor()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn promote_from_an_empty_env_is_not_found() {
    let f = fixture().await;
    let e = f
        .vault
        .promote(
            &f.env.app,
            &EnvId::new("nothing").unwrap(),
            &f.env.env,
            PromoteRequest::new(actor()),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[test]
fn release_records_round_trip_with_kebab_case_kinds() {
    let r = Release {
        seq: 3,
        label: Label::new("1.4.0").unwrap(),
        version: 12,
        sha256: "ab".repeat(32),
        size: 10,
        stored_size: 5,
        released_at: Utc::now(),
        released_by: Some("ada".into()),
        notes: None,
        kind: ReleaseKind::Rollback,
        previous: None,
        base: Some(1),
    };
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["kind"], "rollback");
    assert_eq!(serde_json::from_value::<Release>(json).unwrap(), r);
}

fn publish_req(version: u64, label: &str) -> Publish {
    Publish {
        meta: SnapshotMeta {
            version,
            sha256: "ab".repeat(32),
            size: 1,
            stored_size: 1,
            created_at: Utc::now(),
            trigger: Trigger::Manual,
            author: None,
            message: None,
            source: None,
            key: String::new(),
        },
        label: Some(Label::new(label).unwrap()),
        notes: None,
        actor: actor(),
        kind: ReleaseKind::Release,
        base: None,
    }
}

#[tokio::test]
async fn a_lost_compare_and_swap_writes_nothing() {
    let f = fixture().await;
    let p1 = f.vault.release(&f.env, req(1)).await.unwrap();
    let p2 = f.vault.release(&f.env, req(2)).await.unwrap();
    // A writer that read p1 and lost the race to p2 (deterministically, by handing it
    // the stale pointer it read).
    let e = f
        .vault
        .publish(&f.env, Some(p1), publish_req(3, "late"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert_eq!(f.vault.current_release(&f.env).await.unwrap(), Some(p2));
    assert_eq!(history_seqs(&f).await, vec![2, 1]);
    let late = Label::new("late").unwrap();
    assert!(
        f.vault
            .store()
            .head(&layout::label_key(&f.env, &late))
            .await
            .is_err()
    );
    // A first-release writer that lost the create race.
    let e = f
        .vault
        .publish(&f.env, None, publish_req(3, "late"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert_eq!(history_seqs(&f).await, vec![2, 1]);
}
