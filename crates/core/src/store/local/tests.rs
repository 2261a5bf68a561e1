use super::*;

#[test]
fn refuses_escaping_keys() {
    for key in ["", "/abs", "a/../b", "a//b", ".jvmeta/x", "a/./b", "a\\b"] {
        assert!(check_key(key).is_err(), "{key}");
    }
    assert!(check_key("apps/crm/envs/p/snapshots/1.json.zst").is_ok());
}

#[tokio::test]
async fn conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    crate::store::conformance::suite(&store).await;
}

#[tokio::test]
async fn content_is_stored_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    store
        .put(
            "a/b.bin",
            Bytes::from_static(b"\x28\xb5raw"),
            &Metadata::new(),
            PutMode::Create,
        )
        .await
        .unwrap();
    assert_eq!(
        fs::read(dir.path().join("a/b.bin")).unwrap(),
        b"\x28\xb5raw"
    );
}

/// A lock held by someone else (another open file description: flock locks conflict
/// across them even in one process, as across processes) makes reads and writes
/// answer `Unavailable` after the wait, and work again once it is released.
#[tokio::test]
async fn lock_waits_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path())
        .unwrap()
        .with_lock_wait(Duration::from_millis(50));
    store
        .put(
            "a/b",
            Bytes::from_static(b"x"),
            &Metadata::new(),
            PutMode::Create,
        )
        .await
        .unwrap();
    let held = File::open(dir.path().join(LOCK_FILE)).unwrap();
    held.lock().unwrap();
    let e = store.get("a/b").await.unwrap_err();
    assert_eq!(e.kind(), crate::error::ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("held the lock"), "{e}");
    let e = store.list("a/", None, 10).await.unwrap_err();
    assert_eq!(e.kind(), crate::error::ErrorKind::Unavailable, "{e}");
    let e = store
        .put(
            "a/c",
            Bytes::from_static(b"y"),
            &Metadata::new(),
            PutMode::Create,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), crate::error::ErrorKind::Unavailable, "{e}");
    // A shared lock held elsewhere lets readers in but not writers.
    held.unlock().unwrap();
    held.lock_shared().unwrap();
    assert_eq!(&store.get("a/b").await.unwrap().bytes[..], b"x");
    assert!(store.check().await.is_err());
    held.unlock().unwrap();
    store.check().await.unwrap();
    store.delete("a/b").await.unwrap();
}
