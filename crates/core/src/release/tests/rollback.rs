//! Rolling back.

use super::*;

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
