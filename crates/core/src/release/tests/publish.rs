//! Publishing: labels, If-Match, refusals, lost races, records.

use super::*;
use crate::release::publish::Publish;

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
            restored_from: None,
            schema_errors: None,
            schema_error: None,
            recipients: None,
            ignoring_sha256: None,
        },
        label: Some(Label::new(label).unwrap()),
        schema_overridden: None,
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
