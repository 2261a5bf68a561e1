use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::*;
use crate::error::ErrorKind;
use crate::layout;
use crate::selector::Selector;
use crate::store::{CountingStore, LocalStore, Store};
use crate::vault::Vault;
use crate::vault::VaultOptions;

const SMALL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/nodered-http-endpoint-example.json"
));
const MEDIUM: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/grafana-k8s-views-nodes.json"
));

fn env() -> EnvRef {
    EnvRef::parse("crm", "production").unwrap()
}

fn vault(dir: &tempfile::TempDir) -> (Vault, CountingStore) {
    let store = CountingStore::new(Arc::new(LocalStore::open(dir.path()).unwrap()));
    let vault = Vault::new(Arc::new(store.clone()), VaultOptions::default());
    (vault, store)
}

/// A distinct, valid variant of a corpus document.
fn variant(base: &[u8], n: usize) -> Bytes {
    let mut v: serde_json::Value = serde_json::from_slice(base).unwrap();
    match &mut v {
        serde_json::Value::Object(m) => {
            m.insert("jetvaultTestEdit".into(), n.into());
        }
        serde_json::Value::Array(a) => a.push(n.into()),
        _ => unreachable!(),
    }
    Bytes::from(serde_json::to_vec(&v).unwrap())
}

fn req(raw: impl Into<Bytes>) -> BackupRequest {
    let mut r = BackupRequest::new(raw, Trigger::Manual);
    r.actor.who = Some("tester".into());
    r
}

#[tokio::test]
async fn backup_dedups_unless_forced_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = vault(&dir);
    let mut r = req(MEDIUM);
    r.message = Some("first ✓ 100% done".into());
    let BackupOutcome::Created(m1) = v.backup(&env(), r).await.unwrap() else {
        panic!()
    };
    assert_eq!(m1.version, 1);
    assert_eq!(m1.sha256, codec::sha256_hex(MEDIUM));
    assert!(m1.stored_size < m1.size);
    let again = v.backup(&env(), req(MEDIUM)).await.unwrap();
    assert_eq!(again, BackupOutcome::Unchanged(m1.clone()));
    let mut forced = req(MEDIUM);
    forced.force = true;
    assert_eq!(
        v.backup(&env(), forced).await.unwrap().snapshot().version,
        2
    );
    let (meta, raw) = v.get(&env(), 1).await.unwrap();
    assert_eq!(&raw[..], MEDIUM);
    assert_eq!(meta.message.as_deref(), Some("first ✓ 100% done"));
    assert_eq!(meta.author.as_deref(), Some("tester"));
    assert_eq!(meta, m1);
    // The stored object is a plain zstd frame of the original bytes.
    let stored = std::fs::read(dir.path().join(&m1.key)).unwrap();
    assert_eq!(zstd::decode_all(&stored[..]).unwrap(), MEDIUM);
}

#[tokio::test]
async fn bad_input_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (v, store) = vault(&dir);
    let e = v.backup(&env(), req(&b"{\"a\": "[..])).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let small = Vault::new(
        Arc::new(store.clone()),
        VaultOptions {
            max_size: 100,
            ..VaultOptions::default()
        },
    );
    let e = small.backup(&env(), req(SMALL)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    let mut long = req(SMALL);
    long.message = Some("é".repeat(600));
    assert_eq!(
        v.backup(&env(), long).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        store.counts().put.load(Ordering::Relaxed),
        0,
        "nothing may be written"
    );
    assert!(v.latest(&env()).await.unwrap().is_none());
}

#[tokio::test]
async fn latest_costs_the_same_whatever_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let (v, store) = vault(&dir);
    let mut cost = Vec::new();
    for n in 0..300 {
        v.backup(&env(), req(variant(SMALL, n))).await.unwrap();
        if n == 0 || n == 299 {
            let before = store.counts().total();
            let latest = v.latest(&env()).await.unwrap().unwrap();
            assert_eq!(latest.version, n as u64 + 1);
            cost.push(store.counts().total() - before);
        }
    }
    assert_eq!(
        cost,
        vec![2, 2],
        "one LIST and one HEAD, at 1 and at 300 versions"
    );
}

#[tokio::test]
async fn a_page_is_two_lists_and_falls_back_to_head_without_the_index() {
    let dir = tempfile::tempdir().unwrap();
    let (v, store) = vault(&dir);
    for n in 0..60 {
        let mut r = req(variant(SMALL, n));
        r.message = Some(format!("edit {n}"));
        v.backup(&env(), r).await.unwrap();
    }
    let before = store.counts().total();
    let page = v.list(&env(), None, 50).await.unwrap();
    assert_eq!(
        store.counts().total() - before,
        2,
        "one LIST of snapshots, one of the index"
    );
    assert_eq!(page.len(), 50);
    assert_eq!(page[0].version, 60);
    // What the index says is what the snapshot's own metadata says.
    for m in &page[..3] {
        assert_eq!(m, &v.snapshot_meta(&env(), m.version).await.unwrap());
    }
    // Without its index entry a snapshot costs a HEAD, and is listed the same.
    let entry = v.index_entries(&env(), Some(59), 1).await;
    let (_, e) = entry.iter().next().unwrap();
    assert_eq!(e.meta.version, 58);
    store.delete(&e.key).await.unwrap();
    let before = store.counts().total();
    let again = v.list(&env(), None, 50).await.unwrap();
    assert_eq!(store.counts().total() - before, 3);
    assert_eq!(again, page);
    // An index entry whose snapshot is gone is ignored.
    store
        .delete(&layout::snapshot_key(&env(), 60))
        .await
        .unwrap();
    let after = v.list(&env(), None, 3).await.unwrap();
    assert_eq!(
        after.iter().map(|m| m.version).collect::<Vec<_>>(),
        vec![59, 58, 57]
    );
    assert_eq!(v.latest(&env()).await.unwrap().unwrap().version, 59);
}

#[tokio::test]
async fn racing_writers_get_distinct_versions_without_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = vault(&dir);
    let tasks: Vec<_> = (0..8)
        .map(|w| {
            let v = v.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for i in 0..10 {
                    let raw = variant(SMALL, w * 100 + i);
                    let out = v.backup(&env(), req(raw.clone())).await.unwrap();
                    let BackupOutcome::Created(m) = out else {
                        panic!("distinct content")
                    };
                    mine.push((m.version, raw));
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by_key(|(v, _)| *v);
    let versions: Vec<u64> = all.iter().map(|(v, _)| *v).collect();
    assert_eq!(versions, (1..=80).collect::<Vec<_>>());
    for (version, raw) in &all {
        assert_eq!(&v.get(&env(), *version).await.unwrap().1, raw);
    }
}

#[tokio::test]
async fn replicas_backing_up_the_same_content_write_one_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = vault(&dir);
    let outcomes = {
        let e = env();
        futures::future::join_all((0..6).map(|_| v.backup(&e, req(MEDIUM)))).await
    };
    let created = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(BackupOutcome::Created(_))))
        .count();
    assert_eq!(created, 1, "{outcomes:?}");
    assert_eq!(v.all_versions(&env()).await.unwrap(), vec![1]);
}

#[tokio::test]
async fn listing_pages_and_missing_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = vault(&dir);
    for n in 0..12 {
        v.backup(&env(), req(variant(SMALL, n))).await.unwrap();
    }
    let page: Vec<u64> = v
        .list(&env(), None, 5)
        .await
        .unwrap()
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(page, vec![12, 11, 10, 9, 8]);
    let next: Vec<u64> = v
        .list(&env(), Some(8), 5)
        .await
        .unwrap()
        .iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(next, vec![7, 6, 5, 4, 3]);
    std::fs::remove_file(dir.path().join(layout::snapshot_key(&env(), 6))).unwrap();
    let e = v.get(&env(), 6).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("nearest are v5 and v7"), "{e}");
    let e = v.snapshot_meta(&env(), 40).await.unwrap_err();
    assert!(e.to_string().contains("the latest is v12"), "{e}");
    let other = EnvRef::parse("crm", "staging").unwrap();
    let e = v.resolve(&other, &Selector::Latest).await.unwrap_err();
    assert!(
        e.to_string().contains("crm/staging has no snapshots"),
        "{e}"
    );
}

#[tokio::test]
async fn a_flipped_byte_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let (v, _) = vault(&dir);
    let m = v
        .backup(&env(), req(MEDIUM))
        .await
        .unwrap()
        .snapshot()
        .clone();
    let path = dir.path().join(&m.key);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let e = v.get(&env(), 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(
        e.to_string().contains("snapshot v1 of crm/production"),
        "{e}"
    );
}

/// Replaces snapshot `version` with `raw`, its metadata (sha256, sizes) made to match:
/// bytes that pass every check but the JSON one.
async fn store_as(v: &Vault, store: &CountingStore, version: u64, raw: &[u8]) {
    let mut meta = v.snapshot_meta(&env(), version).await.unwrap();
    let compressed = codec::compress(raw, 3).unwrap();
    meta.sha256 = codec::sha256_hex(raw);
    meta.size = raw.len() as u64;
    meta.stored_size = compressed.len() as u64;
    store
        .put(
            &meta.key,
            compressed.into(),
            &meta.to_metadata(),
            crate::store::PutMode::Overwrite,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stored_snapshot_that_is_not_json_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (v, store) = vault(&dir);
    v.backup(&env(), req(SMALL)).await.unwrap();
    store_as(&v, &store, 1, b"{\"truncated\": ").await;
    let e = v.get(&env(), 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
    assert!(
        e.to_string().contains("snapshot v1 of crm/production"),
        "{e}"
    );
    // The stored bytes stay reachable for inspection.
    assert!(v.get_stored(&env(), 1).await.is_ok());
}

/// The requests each operation made since `before`, named (zero counts left out).
fn since(store: &CountingStore, before: &[(&'static str, u64); 6]) -> Vec<(&'static str, u64)> {
    store
        .counts()
        .by_op()
        .iter()
        .zip(before)
        .map(|((op, now), (_, then))| (*op, now - then))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Exactly what one backup asks the store: a changed configuration is one LIST (the
/// newest index entry and the newest snapshot key together) and three PUTs (the
/// create-only snapshot, its audit event, its index entry); an unchanged one is the
/// LIST alone; a forced one needs only the newest number (one LIST of the snapshots).
/// The store marker is read once per vault, by the first backup.
#[tokio::test]
async fn one_backup_makes_exactly_these_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (v, store) = vault(&dir);
    let zero = store.counts().by_op();
    v.backup(&env(), req(variant(SMALL, 0))).await.unwrap();
    assert_eq!(
        since(&store, &zero),
        vec![("get", 1), ("put", 4), ("list", 1)],
        "the first backup also reads the missing marker and creates it"
    );
    type Case = (&'static str, Bytes, bool, Vec<(&'static str, u64)>);
    let cases: [Case; 3] = [
        (
            "changed",
            variant(SMALL, 1),
            false,
            vec![("put", 3), ("list", 1)],
        ),
        ("unchanged", variant(SMALL, 1), false, vec![("list", 1)]),
        (
            "forced",
            variant(SMALL, 1),
            true,
            vec![("put", 3), ("list", 1)],
        ),
    ];
    for (what, raw, force, expected) in cases {
        let before = store.counts().by_op();
        let mut r = req(raw);
        r.force = force;
        v.backup(&env(), r).await.unwrap();
        assert_eq!(since(&store, &before), expected, "{what}");
    }
    assert_eq!(v.latest(&env()).await.unwrap().unwrap().version, 3);
}

/// The marker is read beside each backup's check, yet once per vault: eight first
/// backups at once into an empty store make one GET of it and one create-only PUT.
#[tokio::test]
async fn concurrent_first_backups_read_the_marker_once() {
    let dir = tempfile::tempdir().unwrap();
    let (v, store) = vault(&dir);
    let zero = store.counts().by_op();
    let envs: Vec<EnvRef> = (0..8)
        .map(|i| EnvRef::parse(&format!("app{i}"), "production").unwrap())
        .collect();
    let backups = envs
        .iter()
        .enumerate()
        .map(|(i, e)| v.backup(e, req(variant(SMALL, i))));
    for outcome in futures::future::join_all(backups).await {
        assert!(matches!(outcome.unwrap(), BackupOutcome::Created(_)));
    }
    assert_eq!(
        since(&store, &zero),
        vec![("get", 1), ("put", 8 * 3 + 1), ("list", 8)]
    );
}

/// With ignore paths, the latest snapshot's hash without them comes from its listing
/// index entry: a backup whose content differs only in an ignored path is the one LIST,
/// with no HEAD and no read of the snapshot; a changed one is the LIST and three PUTs.
#[tokio::test]
async fn a_backup_with_ignore_paths_compares_the_hash_the_listing_carries() {
    let dir = tempfile::tempdir().unwrap();
    let (v, store) = vault(&dir);
    let config = crate::config::FilterConfig {
        ignore: vec![".v".into(), ".nodes[].at".into()],
        ..Default::default()
    };
    let filters = Arc::new(crate::filter::EnvFilters::compile("t", &config).unwrap());
    let env = env();
    let backup = |raw: &'static str| {
        let mut r = req(Bytes::from_static(raw.as_bytes()));
        r.filters = Some(Arc::clone(&filters));
        v.backup(&env, r)
    };
    let BackupOutcome::Created(first) = backup(r#"{"a":1,"v":1,"nodes":[{"id":1,"at":1}]}"#)
        .await
        .unwrap()
    else {
        panic!("a first backup is created")
    };
    assert!(first.ignoring_sha256.is_some());
    for (what, raw, expected) in [
        (
            "only ignored paths changed",
            r#"{"nodes":[{"at":2,"id":1}],"v":2,"a":1}"#,
            vec![("list", 1)],
        ),
        (
            "changed",
            r#"{"a":2,"v":2,"nodes":[{"id":1,"at":2}]}"#,
            vec![("put", 3), ("list", 1)],
        ),
    ] {
        let before = store.counts().by_op();
        let outcome = backup(raw).await.unwrap();
        assert_eq!(since(&store, &before), expected, "{what}");
        assert_eq!(
            matches!(outcome, BackupOutcome::Created(_)),
            what == "changed",
            "{what}"
        );
    }
}

/// The one-LIST read finds what `latest` finds: past a history longer than its page
/// (a second LIST), and for a newest snapshot without an index entry (a HEAD); and a
/// backup after either claims the version after the true newest.
#[tokio::test]
async fn the_one_list_latest_is_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let (v, store) = vault(&dir);
    assert_eq!(v.latest_in_one_list(&env()).await.unwrap(), None);
    let n = list::ONE_LIST_KEYS + 6;
    for i in 0..n {
        v.backup(&env(), req(variant(SMALL, i))).await.unwrap();
    }
    let before = store.counts().by_op();
    let one = v.latest_in_one_list(&env()).await.unwrap().unwrap();
    assert_eq!(since(&store, &before), vec![("list", 2)], "a long history");
    assert_eq!(Some(&one), v.latest(&env()).await.unwrap().as_ref());
    assert_eq!(one.version, n as u64);
    // The newest snapshot's index entry is lost: its metadata comes from a HEAD, and a
    // configuration equal to it is unchanged.
    let entries = v.index_entries(&env(), None, 1).await;
    let (_, newest) = entries.iter().next().unwrap();
    store.delete(&newest.key).await.unwrap();
    let before = store.counts().by_op();
    let headed = v.latest_in_one_list(&env()).await.unwrap().unwrap();
    assert_eq!(since(&store, &before), vec![("head", 1), ("list", 2)]);
    assert_eq!(headed, one);
    let again = v.backup(&env(), req(variant(SMALL, n - 1))).await.unwrap();
    assert_eq!(again, BackupOutcome::Unchanged(one.clone()));
    // Equal to an older version (the index's newest is now older than the newest
    // snapshot): a new version after the true newest.
    let BackupOutcome::Created(m) = v.backup(&env(), req(variant(SMALL, n - 2))).await.unwrap()
    else {
        panic!("content differing from the newest is a new snapshot")
    };
    assert_eq!(m.version, n as u64 + 1);
}

/// A live target whose read ends only once the store has been listed.
#[derive(Debug)]
struct ReadsWhileListing {
    store: CountingStore,
    raw: Bytes,
}

#[async_trait::async_trait]
impl crate::live::LiveTarget for ReadsWhileListing {
    fn describe(&self) -> String {
        "a platform as slow as the store".into()
    }
    async fn read(&self, _limit: u64) -> crate::error::Result<Bytes> {
        let before = self.store.counts().list.load(Ordering::Relaxed);
        for _ in 0..5_000 {
            if self.store.counts().list.load(Ordering::Relaxed) > before {
                return Ok(self.raw.clone());
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        Err(crate::error::Error::internal(
            "the store was not listed while live was read",
        ))
    }
    async fn write(&self, _bytes: Bytes) -> crate::error::Result<()> {
        Ok(())
    }
}

/// A backup from live lists the latest while live is read (its first round trip hides
/// behind the platform's), with the same requests as a backup of the same bytes.
#[tokio::test]
async fn a_backup_from_live_lists_while_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let (v, store) = vault(&dir);
    let mut expected = vec![
        vec![("get", 1), ("put", 4), ("list", 1)],
        vec![("put", 3), ("list", 1)],
        vec![("list", 1)],
    ]
    .into_iter();
    for raw in [variant(SMALL, 0), variant(SMALL, 1), variant(SMALL, 1)] {
        let target = ReadsWhileListing {
            store: store.clone(),
            raw,
        };
        let before = store.counts().by_op();
        v.backup_from_live(&env(), &target, req(Bytes::new()))
            .await
            .unwrap();
        assert_eq!(since(&store, &before), expected.next().unwrap());
    }
    assert_eq!(v.latest(&env()).await.unwrap().unwrap().version, 2);
}
