//! The store conformance suite: one set of checks that every [`Store`] must pass, run
//! against the local directory, LocalStack and moto.
//!
//! It panics on the first failed check. Keys live under a fresh random prefix, so the
//! suite can share a bucket with other tests.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;

use super::{Conditional, Metadata, PutMode, Store};
use crate::error::ErrorKind;

/// How many writers race in the concurrency checks.
pub const RACERS: usize = 20;

/// Runs every check against `store`.
pub async fn suite(store: &dyn Store) {
    let base = format!("conformance/{}", uuid::Uuid::new_v4().simple());
    store.check().await.expect("check() on a reachable store");
    missing_objects(store, &base).await;
    create_only(store, &base).await;
    compare_and_swap(store, &base).await;
    overwrite_and_delete(store, &base).await;
    conditional_get(store, &base).await;
    metadata_round_trip(store, &base).await;
    listing(store, &base).await;
    list_dirs(store, &base).await;
    racing_creators(store, &base).await;
    racing_swappers(store, &base).await;
    super::precondition_self_test(store)
        .await
        .expect("precondition self-test");
}

fn meta(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

async fn missing_objects(store: &dyn Store, base: &str) {
    let key = format!("{base}/missing/nothing.json");
    assert_eq!(
        store.get(&key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.head(&key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store
            .get_if_none_match(&key, "\"x\"")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let update = store
        .put(
            &key,
            Bytes::from_static(b"x"),
            &Metadata::new(),
            PutMode::Update {
                etag: "\"0123\"".into(),
            },
        )
        .await;
    assert!(
        matches!(
            update.as_ref().map_err(|e| e.kind()),
            Err(ErrorKind::NotFound | ErrorKind::PreconditionFailed)
        ),
        "update of a missing key must fail, got {update:?}"
    );
    assert!(store.head(&key).await.is_err(), "failed update wrote");
    store
        .delete(&key)
        .await
        .expect("deleting a missing key succeeds");
    let page = store
        .list(&format!("{base}/missing/"), None, 10)
        .await
        .unwrap();
    assert!(page.objects.is_empty() && !page.truncated);
}

async fn create_only(store: &dyn Store, base: &str) {
    let key = format!("{base}/create/one.bin");
    let m = meta(&[("jetvault-version", "1")]);
    let etag = store
        .put(&key, Bytes::from_static(b"first"), &m, PutMode::Create)
        .await
        .expect("create on a free key");
    assert!(!etag.is_empty());
    let err = store
        .put(&key, Bytes::from_static(b"second"), &m, PutMode::Create)
        .await
        .expect_err("create on a taken key must fail");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    let obj = store.get(&key).await.unwrap();
    assert_eq!(&obj.bytes[..], b"first", "a failed create must not write");
    assert_eq!(obj.info.etag, etag);
    assert_eq!(obj.info.size, 5);
    assert_eq!(obj.info.key, key);
    let head = store.head(&key).await.unwrap();
    assert_eq!(head.etag, etag);
    assert_eq!(head.size, 5);
    assert_eq!(
        head.metadata.get("jetvault-version").map(String::as_str),
        Some("1")
    );

    // The empty object is an object.
    let empty = format!("{base}/create/empty");
    store
        .put(&empty, Bytes::new(), &Metadata::new(), PutMode::Create)
        .await
        .unwrap();
    assert_eq!(store.get(&empty).await.unwrap().bytes.len(), 0);
    assert_eq!(store.head(&empty).await.unwrap().size, 0);
}

async fn compare_and_swap(store: &dyn Store, base: &str) {
    let key = format!("{base}/cas/pointer.json");
    let none = Metadata::new();
    let e1 = store
        .put(
            &key,
            Bytes::from_static(b"{\"v\":1}"),
            &none,
            PutMode::Create,
        )
        .await
        .unwrap();
    let e2 = store
        .put(
            &key,
            Bytes::from_static(b"{\"v\":2}"),
            &none,
            PutMode::Update { etag: e1.clone() },
        )
        .await
        .expect("update with the current etag");
    assert_ne!(e1, e2, "an update with other content must change the etag");
    let err = store
        .put(
            &key,
            Bytes::from_static(b"{\"v\":3}"),
            &none,
            PutMode::Update { etag: e1 },
        )
        .await
        .expect_err("update with a stale etag must fail");
    assert_eq!(err.kind(), ErrorKind::PreconditionFailed, "{err}");
    let obj = store.get(&key).await.unwrap();
    assert_eq!(&obj.bytes[..], b"{\"v\":2}");
    assert_eq!(obj.info.etag, e2);
}

async fn overwrite_and_delete(store: &dyn Store, base: &str) {
    let key = format!("{base}/overwrite/x");
    let none = Metadata::new();
    store
        .put(&key, Bytes::from_static(b"a"), &none, PutMode::Overwrite)
        .await
        .unwrap();
    store
        .put(&key, Bytes::from_static(b"bb"), &none, PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(&store.get(&key).await.unwrap().bytes[..], b"bb");
    store.delete(&key).await.unwrap();
    assert_eq!(
        store.get(&key).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // A deleted key can be created again.
    store
        .put(&key, Bytes::from_static(b"c"), &none, PutMode::Create)
        .await
        .unwrap();
}

async fn conditional_get(store: &dyn Store, base: &str) {
    let key = format!("{base}/cond/x.json");
    let none = Metadata::new();
    let e1 = store
        .put(&key, Bytes::from_static(b"one"), &none, PutMode::Create)
        .await
        .unwrap();
    assert!(matches!(
        store.get_if_none_match(&key, &e1).await.unwrap(),
        Conditional::NotModified
    ));
    store
        .put(
            &key,
            Bytes::from_static(b"two!"),
            &none,
            PutMode::Update { etag: e1.clone() },
        )
        .await
        .unwrap();
    match store.get_if_none_match(&key, &e1).await.unwrap() {
        Conditional::Modified(obj) => assert_eq!(&obj.bytes[..], b"two!"),
        Conditional::NotModified => panic!("a changed object must be returned"),
    }
}

async fn metadata_round_trip(store: &dyn Store, base: &str) {
    let key = format!("{base}/meta/x.json.zst");
    let m = meta(&[
        (
            "jetvault-sha256",
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        ),
        ("jetvault-created-at", "2026-11-25T20:00:00.123Z"),
        ("jetvault-message", "fix%20the%20%E2%9C%93%20button"),
        ("jetvault-trigger", "pre-restore"),
    ]);
    let body = Bytes::from(vec![7u8; 100_000]);
    store
        .put(&key, body.clone(), &m, PutMode::Create)
        .await
        .unwrap();
    let obj = store.get(&key).await.unwrap();
    assert_eq!(obj.bytes, body);
    assert_eq!(obj.info.metadata, m);
    assert_eq!(store.head(&key).await.unwrap().metadata, m);
}

async fn listing(store: &dyn Store, base: &str) {
    let dir = format!("{base}/list");
    let none = Metadata::new();
    let mut keys: Vec<String> = (0..25).map(|i| format!("{dir}/k{i:03}")).collect();
    keys.push(format!("{dir}/sub/deeper/z"));
    keys.push(format!("{dir}/k010x"));
    keys.push(format!("{base}/listing-sibling"));
    for k in &keys {
        store
            .put(k, Bytes::from(k.clone()), &none, PutMode::Create)
            .await
            .unwrap();
    }
    let mut expected: Vec<String> = keys
        .iter()
        .filter(|k| k.starts_with(&format!("{dir}/")))
        .cloned()
        .collect();
    expected.sort();

    // Paging with start_after returns every key once, in byte order.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .list(&format!("{dir}/"), after.as_deref(), 10)
            .await
            .unwrap();
        assert!(page.objects.len() <= 10);
        seen.extend(page.objects.iter().map(|o| o.key.clone()));
        if !page.truncated {
            break;
        }
        after = seen.last().cloned();
    }
    assert_eq!(seen, expected);

    // A prefix that is not a directory boundary.
    let page = store.list(&format!("{dir}/k01"), None, 100).await.unwrap();
    let got: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    let want: Vec<String> = (10..20).map(|i| format!("{dir}/k{i:03}")).collect();
    let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
    let extra = format!("{dir}/k010x");
    want.insert(1, &extra);
    assert_eq!(got, want);

    // Limit 1 gives the first key: "latest in one LIST".
    let first = store.list(&format!("{dir}/"), None, 1).await.unwrap();
    assert_eq!(first.objects.len(), 1);
    assert!(first.truncated);
    assert_eq!(first.objects[0].key, expected[0]);
    assert_eq!(first.objects[0].size, expected[0].len() as u64);
    assert!(!first.objects[0].etag.is_empty());
}

async fn list_dirs(store: &dyn Store, base: &str) {
    let none = Metadata::new();
    for k in [
        "apps/a/x",
        "apps/b/envs/y",
        "apps/b/z",
        "apps/c.d/q",
        "apps-other/n",
    ] {
        store
            .put(
                &format!("{base}/dirs/{k}"),
                Bytes::from_static(b"1"),
                &none,
                PutMode::Create,
            )
            .await
            .unwrap();
    }
    let dirs = store
        .list_dirs(&format!("{base}/dirs/apps/"))
        .await
        .unwrap();
    assert_eq!(dirs, vec!["a", "b", "c.d"]);
    assert!(
        store
            .list_dirs(&format!("{base}/dirs/none/"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn racing_creators(store: &dyn Store, base: &str) {
    let key = Arc::new(format!("{base}/race/create"));
    let tasks = (0..RACERS).map(|i| {
        let key = Arc::clone(&key);
        async move {
            let body = Bytes::from(format!("writer {i}"));
            (
                i,
                store
                    .put(&key, body, &Metadata::new(), PutMode::Create)
                    .await,
            )
        }
    });
    let results = join_all(tasks).await;
    let winners: Vec<usize> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one create-only writer must win: {results:?}"
    );
    for (_, r) in &results {
        if let Err(e) = r {
            assert!(e.is_conflict(), "losers must see a conflict, got {e}");
        }
    }
    let stored = store.get(&key).await.unwrap();
    assert_eq!(stored.bytes, Bytes::from(format!("writer {}", winners[0])));
}

async fn racing_swappers(store: &dyn Store, base: &str) {
    let key = Arc::new(format!("{base}/race/swap"));
    let etag = store
        .put(
            &key,
            Bytes::from_static(b"start"),
            &Metadata::new(),
            PutMode::Create,
        )
        .await
        .unwrap();
    let tasks = (0..RACERS).map(|i| {
        let (key, etag) = (Arc::clone(&key), etag.clone());
        async move {
            let body = Bytes::from(format!("swapper {i}"));
            (
                i,
                store
                    .put(&key, body, &Metadata::new(), PutMode::Update { etag })
                    .await,
            )
        }
    });
    let results = join_all(tasks).await;
    let winners: Vec<usize> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one if-match writer must win: {results:?}"
    );
    for (_, r) in &results {
        if let Err(e) = r {
            assert!(e.is_conflict(), "losers must see a conflict, got {e}");
        }
    }
    let stored = store.get(&key).await.unwrap();
    assert_eq!(stored.bytes, Bytes::from(format!("swapper {}", winners[0])));
}
