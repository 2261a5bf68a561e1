//! Reading the pointer, the history and labels, and resolving the release.

use super::*;

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
    assert_eq!(
        "release".parse::<Selector>().unwrap(),
        Selector::CurrentRelease
    );
    let e = f
        .vault
        .resolve(&f.env, &Selector::CurrentRelease)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("has no release"), "{e}");
    f.vault.release(&f.env, req(2)).await.unwrap();
    let meta = f
        .vault
        .resolve(&f.env, &Selector::CurrentRelease)
        .await
        .unwrap();
    assert_eq!(meta.version, 2);
    let (_, raw) = f.vault.get(&f.env, meta.version).await.unwrap();
    assert_eq!(&raw[..], FIXTURES[1]);
}
