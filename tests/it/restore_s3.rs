//! Restore, verify and prune on S3 (LocalStack through the harness), and S3 going
//! away in the middle of a backup and of a restore.
//!
//! The outage is real network trouble: jetvault talks to LocalStack through a TCP proxy
//! that the test controls (`harness::proxy`). "Stopping S3" forwards the headers
//! and the first bytes of the next upload, then drops the connection and refuses every
//! new one; "restarting" lets traffic through again.

use crate::harness::cli::Jv;
use crate::harness::proxy::{Mode, Proxy};
use crate::harness::scenarios::{self, A, B, versions, world};
use crate::harness::{APPSMITH_LARGE, corpus, sha256};
use crate::harness::{Backend, TestBucket};

fn localstack(label: &str) -> Option<(TestBucket, Jv)> {
    let bucket = TestBucket::new_blocking(Backend::LocalStack, label)?;
    let jv = Jv::with_store(bucket.spec("jetvault"));
    Some((bucket, jv))
}

#[test]
fn drill_localstack() {
    let Some((_bucket, jv)) = localstack("drill") else {
        return;
    };
    scenarios::drill(&jv);
}

#[test]
fn nothing_matches_localstack() {
    let Some((_bucket, jv)) = localstack("nearest") else {
        return;
    };
    scenarios::nothing_matches(&jv);
}

#[test]
fn flipped_byte_localstack() {
    let Some((_bucket, jv)) = localstack("flipped") else {
        return;
    };
    scenarios::flipped_byte(&jv);
}

#[test]
fn prune_500_localstack() {
    let Some((_bucket, jv)) = localstack("prune") else {
        return;
    };
    scenarios::prune_500(&jv);
}

/// S3 stops in the middle of a backup, then of a restore: each fails with an error that
/// names the endpoint, leaves no partial object and live untouched; after S3 is back,
/// `verify` passes and both succeed.
#[test]
fn s3_stopping_mid_backup_or_restore_localstack() {
    s3_stopping_mid_backup_or_restore(Backend::LocalStack);
}

#[test]
fn s3_stopping_mid_backup_or_restore_moto() {
    s3_stopping_mid_backup_or_restore(Backend::Moto);
}

fn s3_stopping_mid_backup_or_restore(backend: Backend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(bucket) = rt.block_on(TestBucket::new(backend, "outage")) else {
        return;
    };
    let proxy = Proxy::start(&bucket.endpoint);
    let jv = Jv::with_store(bucket.spec_via("jetvault", &proxy.endpoint));
    let live = world(&jv);
    let objects = || {
        rt.block_on(async {
            let out = bucket
                .client
                .client()
                .list_objects_v2()
                .bucket(&bucket.name)
                .prefix("jetvault/apps/crm/envs/production/snapshots/")
                .send()
                .await
                .unwrap();
            out.contents()
                .iter()
                .map(|o| (o.key().unwrap().to_string(), o.size().unwrap()))
                .collect::<Vec<_>>()
        })
    };
    let before = objects();
    assert_eq!(before.len(), 3);

    // A large configuration, so that the upload is cut well before its end.
    let big = corpus(APPSMITH_LARGE);
    std::fs::write(&live, &big).unwrap();
    proxy.set(Mode::StopAtNextPut);
    let r = jv.fails(&["backup", "crm", "production"], 5);
    assert_eq!(proxy.mode(), Mode::Down, "the upload was cut");
    assert!(r.stderr.contains(&proxy.endpoint), "{}", r.stderr);
    assert_eq!(objects(), before, "no partial object");

    // The restore of v1 must first save the big live configuration: S3 stops there.
    proxy.set(Mode::StopAtNextPut);
    let r = jv.fails(&["restore", "crm", "production", "1", "--yes"], 5);
    assert!(r.stderr.contains(&proxy.endpoint), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was pushed"), "{}", r.stderr);
    assert_eq!(std::fs::read(&live).unwrap(), big, "live untouched");
    assert_eq!(objects(), before, "no partial object");

    // S3 is back.
    proxy.set(Mode::Pass);
    jv.ok(&["verify"]);
    let r = jv
        .ok(&["--json", "restore", "crm", "production", "1", "--yes"])
        .json();
    assert_eq!(r["pre_restore"]["snapshot"]["version"], 4);
    assert_eq!(std::fs::read(&live).unwrap(), corpus(A));
    let list = versions(&jv);
    assert_eq!(list[1]["sha256"], sha256(&big));
    assert_eq!(list[1]["trigger"], "pre-restore");
    // v5 records what live holds after the restore: v1's content.
    assert_eq!(list[0]["sha256"], sha256(&corpus(A)));
    assert_eq!(list[0]["trigger"], "restore");
    assert_eq!(list[0]["restored_from"], 1);
    jv.ok(&["verify"]);
    // And the earlier content still round-trips.
    jv.ok(&["restore", "crm", "production", "2", "--yes"]);
    assert_eq!(std::fs::read(&live).unwrap(), corpus(B));
}
