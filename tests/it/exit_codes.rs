//! Exit codes and messages the README's table promises, for cases that once got them
//! wrong: a directory as `--from`, `list --limit 0`, `+1` as a version.

use crate::harness::cli::Jv;

#[test]
fn backup_from_a_directory_is_a_bad_argument() {
    let jv = Jv::new();
    let dir = jv.path("a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    let r = jv.fails(
        &[
            "backup",
            "crm",
            "production",
            "--from",
            dir.to_str().unwrap(),
        ],
        2,
    );
    assert!(r.stderr.contains("cannot read"), "{}", r.stderr);
}

#[test]
fn list_limit_zero_is_a_bad_argument_not_an_empty_history() {
    let jv = Jv::new();
    let from = jv.file("c.json", br#"{"a": 1}"#);
    jv.ok(&["backup", "crm", "production", "--from", &from]);
    let r = jv.fails(&["list", "crm", "production", "--limit", "0"], 2);
    assert!(r.stderr.contains("--limit"), "{}", r.stderr);
    assert!(!r.stderr.contains("no snapshots"), "{}", r.stderr);
}

#[test]
fn a_signed_version_is_not_a_version() {
    let jv = Jv::new();
    let from = jv.file("c.json", br#"{"a": 1}"#);
    jv.ok(&["backup", "crm", "production", "--from", &from]);
    for bad in ["+1", "v+1"] {
        let r = jv.fails(&["cat", "crm", "production", bad], 2);
        assert!(r.stderr.contains("is not a version"), "{}", r.stderr);
    }
    let r = jv.fails(&["restore", "crm", "production", "+1", "--dry-run"], 2);
    assert!(r.stderr.contains("is not a version"), "{}", r.stderr);
}

/// A stored snapshot whose sha256 matches but that is not JSON is the store's fault:
/// exit 6 for `cat` and `diff` (restore and verify: unit tests in the core), never 2.
#[test]
fn a_stored_snapshot_that_is_not_json_is_corrupt() {
    use jetvault_core::store::{LocalStore, PutMode, Store};
    use jetvault_core::{EnvRef, SnapshotMeta, codec, layout};

    let jv = Jv::new();
    let one = jv.file("one.json", br#"{"a": 1}"#);
    let two = jv.file("two.json", br#"{"a": 2}"#);
    jv.ok(&["backup", "crm", "production", "--from", &one]);
    jv.ok(&["backup", "crm", "production", "--from", &two]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = LocalStore::open(jv.store_dir()).unwrap();
        let env = EnvRef::parse("crm", "production").unwrap();
        let key = layout::snapshot_key(&env, 1);
        let mut meta = SnapshotMeta::from_object(&store.head(&key).await.unwrap()).unwrap();
        let raw = br#"{"a": "#;
        let compressed = codec::compress(raw, 3).unwrap();
        meta.sha256 = codec::sha256_hex(raw);
        meta.size = raw.len() as u64;
        meta.stored_size = compressed.len() as u64;
        store
            .put(
                &key,
                compressed.into(),
                &meta.to_metadata(),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
    });
    let r = jv.fails(&["cat", "crm", "production", "1"], 6);
    assert!(
        r.stderr.contains("snapshot v1 of crm/production"),
        "{}",
        r.stderr
    );
    jv.fails(&["diff", "crm", "production", "1", "2"], 6);
    jv.ok(&["cat", "crm", "production", "2"]);
}
