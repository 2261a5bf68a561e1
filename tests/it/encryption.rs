//! Encrypted snapshots (age) on S3 through LocalStack: `restore` with the identity
//! works and without it fails with exit 2 writing nothing; `verify` with and without an
//! identity; `rekey`; and the by-hand path with stock tools:
//! `aws s3 cp s3://B/KEY - | age -d -i key.txt | zstd -d`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use jetvault_core::crypt::Identities;

use crate::harness::cli::{Jv, Run};
use crate::harness::{self, APPSMITH, APPSMITH_LARGE, Backend, NODERED, TestBucket, corpus};

/// A key pair written as `age-keygen` writes it: (the key file, the public key).
fn key_file(jv: &Jv, name: &str) -> (String, String) {
    let (secret, public) = Identities::generate();
    let text = format!("# created by the jetvault tests\n# public key: {public}\n{secret}\n");
    (jv.file(name, text.as_bytes()), public)
}

fn config(jv: &Jv, live: &Path, recipients: &[&str]) {
    let list: Vec<String> = recipients.iter().map(|r| format!("{r:?}")).collect();
    jv.write_config(&format!(
        "[encryption]\nrecipients = [{}]\n\n{}",
        list.join(", "),
        Jv::file_env("crm", "production", live, "")
    ));
}

/// Runs jetvault with no identity in its environment, plus `env`.
fn run(jv: &Jv, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = jv.command(args);
    cmd.env_remove("JETVAULT_AGE_IDENTITY")
        .env_remove("JETVAULT_AGE_IDENTITY_FILE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap().into()
}

fn expect(r: Run, code: i32, args: &[&str]) -> Run {
    assert_eq!(
        r.code,
        code,
        "jetvault {args:?}: expected exit {code}:\n{}",
        r.text()
    );
    r
}

fn snapshot_count(jv: &Jv) -> usize {
    let r = expect(
        run(jv, &["--json", "list", "crm", "production"], &[]),
        0,
        &["list"],
    );
    r.json().as_array().unwrap().len()
}

/// The `age` command (Debian package `age`): required under CI.
fn age_cli() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("age"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let what = "the `age` command is not installed (Debian package age; .ci/run installs it)";
        assert!(!harness::ci(), "{what}; under CI=true this test must run");
        eprintln!("not run: {what}");
    }
    found
}

#[test]
fn encrypted_restore_needs_the_identity_and_writes_nothing_without_it_localstack() {
    let Some(bucket) = TestBucket::new_blocking(Backend::LocalStack, "crypt-restore") else {
        return;
    };
    let jv = Jv::with_store(bucket.spec("jetvault"));
    let (key, public) = key_file(&jv, "key.txt");
    let (other_key, other_public) = key_file(&jv, "other.txt");
    let live = jv.path("live.json");
    config(&jv, &live, &[&public]);
    let v1 = corpus(APPSMITH);
    let v2 = corpus(NODERED);
    assert_eq!(jv.backup_bytes("crm", "production", &live, &v1), 1);
    assert_eq!(jv.backup_bytes("crm", "production", &live, &v2), 2);

    // No identity: exit 2, naming the recipient and what to set; live untouched and
    // no snapshot written (not even the pre-restore one).
    let args = ["restore", "crm", "production", "1", "--yes"];
    let r = expect(run(&jv, &args, &[]), 2, &args);
    assert!(r.stderr.contains(&public), "{}", r.text());
    assert!(
        r.stderr.contains("JETVAULT_AGE_IDENTITY_FILE"),
        "{}",
        r.text()
    );
    assert_eq!(std::fs::read(&live).unwrap(), v2, "live untouched");
    assert_eq!(snapshot_count(&jv), 2, "nothing written");

    // The wrong identity: exit 2 too, naming both keys.
    let args = [
        "restore",
        "crm",
        "production",
        "1",
        "--yes",
        "--identity",
        &other_key,
    ];
    let r = expect(run(&jv, &args, &[]), 2, &args);
    assert!(r.stderr.contains(&public), "{}", r.text());
    assert!(r.stderr.contains(&other_public), "{}", r.text());
    assert_eq!(std::fs::read(&live).unwrap(), v2, "live untouched");
    assert_eq!(snapshot_count(&jv), 2, "nothing written");

    // With the identity (the flag), the restore works.
    let args = [
        "restore",
        "crm",
        "production",
        "1",
        "--yes",
        "--identity",
        &key,
    ];
    expect(run(&jv, &args, &[]), 0, &args);
    assert_eq!(std::fs::read(&live).unwrap(), v1);

    // The identity from the environment: a file, or the key itself.
    let secret = std::fs::read_to_string(&key).unwrap();
    for env in [
        ("JETVAULT_AGE_IDENTITY_FILE", key.as_str()),
        ("JETVAULT_AGE_IDENTITY", secret.as_str()),
    ] {
        let args = ["cat", "crm", "production", "2"];
        let r = expect(run(&jv, &args, &[env]), 0, &args);
        assert_eq!(r.stdout.as_bytes(), v2.as_slice(), "{}", env.0);
    }

    // verify: structure only without an identity (and says so), everything with one.
    let r = expect(
        run(&jv, &["verify", "crm", "production"], &[]),
        0,
        &["verify"],
    );
    assert!(r.stdout.contains("structure only"), "{}", r.text());
    assert!(r.stdout.contains("NOT decrypted"), "{}", r.text());
    let args = ["--json", "verify", "crm", "production", "--identity", &key];
    let r = expect(run(&jv, &args, &[]), 0, &args);
    let report = &r.json()[0];
    assert_eq!(report["structure_only"], 0, "{}", r.text());
    assert!(report["ok"].as_u64().unwrap() >= 3, "{}", r.text());

    // Rotation: the config names a new key; rekey (with the old identity) moves every
    // snapshot to it, keeping versions and checksums.
    let before = expect(
        run(&jv, &["--json", "list", "crm", "production"], &[]),
        0,
        &[],
    )
    .json();
    let (new_key, new_public) = key_file(&jv, "new.txt");
    config(&jv, &live, &[&new_public]);
    let args = ["--json", "rekey", "crm", "production", "--identity", &key];
    let r = expect(run(&jv, &args, &[]), 0, &args);
    assert_eq!(
        r.json()[0]["rekeyed"].as_array().unwrap().len(),
        3,
        "{}",
        r.text()
    );
    let after = expect(
        run(&jv, &["--json", "list", "crm", "production"], &[]),
        0,
        &[],
    )
    .json();
    let sums = |l: &serde_json::Value| -> Vec<(u64, String)> {
        l.as_array()
            .unwrap()
            .iter()
            .map(|m| (m["version"].as_u64().unwrap(), m["sha256"].to_string()))
            .collect()
    };
    assert_eq!(sums(&before), sums(&after));
    assert_eq!(after[0]["recipients"], serde_json::json!([new_public]));
    let args = ["cat", "crm", "production", "1", "--identity", &new_key];
    assert_eq!(
        expect(run(&jv, &args, &[]), 0, &args).stdout.as_bytes(),
        v1.as_slice()
    );
    let args = ["cat", "crm", "production", "1", "--identity", &key];
    expect(run(&jv, &args, &[]), 2, &args);
    let events = expect(
        run(&jv, &["--json", "events", "crm", "production"], &[]),
        0,
        &[],
    )
    .json();
    assert!(
        events.to_string().contains("\"rekey\""),
        "the audit trail records the rekey: {events}"
    );
}

/// A snapshot written with encryption on, fetched with the AWS CLI and piped through
/// Debian's `age` and `zstd`, is the original file byte for byte.
#[test]
fn encrypted_snapshot_restores_by_hand_with_aws_cli_age_and_zstd_localstack() {
    let Some(bucket) = TestBucket::new_blocking(Backend::LocalStack, "crypt-by-hand") else {
        return;
    };
    let Some(_) = bucket.aws_cli() else {
        return;
    };
    let Some(age) = age_cli() else {
        return;
    };
    let jv = Jv::with_store(bucket.spec("jetvault"));
    let (key, public) = key_file(&jv, "key.txt");
    let (_, dr_public) = key_file(&jv, "offline-dr.txt");
    config(&jv, &jv.path("unused.json"), &[&public, &dr_public]);
    let file = harness::corpus_path(APPSMITH_LARGE);
    let original = std::fs::read(&file).unwrap();
    let r = run(
        &jv,
        &[
            "backup",
            "crm",
            "production",
            "--from",
            file.to_str().unwrap(),
        ],
        &[],
    );
    expect(r, 0, &["backup"]);
    let env = jetvault_core::EnvRef::parse("crm", "production").unwrap();
    let key_name = format!("jetvault/{}", jetvault_core::layout::snapshot_key(&env, 1));

    // aws s3 cp s3://B/KEY - | age -d -i key.txt | zstd -d
    let mut aws = bucket
        .aws_cli()
        .unwrap()
        .args(["s3", "cp", &format!("s3://{}/{key_name}", bucket.name), "-"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("aws CLI runs");
    let mut age = Command::new(age)
        .args(["-d", "-i", &key])
        .stdin(aws.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("age runs");
    let zstd = Command::new("zstd")
        .args(["-d", "-q", "-c"])
        .stdin(age.stdout.take().unwrap())
        .output()
        .expect("zstd is installed (Debian package zstd; .ci/run installs it)");
    assert!(aws.wait().unwrap().success(), "aws s3 cp failed");
    let age_out = age.wait_with_output().unwrap();
    assert!(
        age_out.status.success(),
        "age -d failed: {}",
        String::from_utf8_lossy(&age_out.stderr)
    );
    assert!(
        zstd.status.success(),
        "zstd -d failed: {}",
        String::from_utf8_lossy(&zstd.stderr)
    );
    assert!(zstd.stdout == original, "the pipe gives the original bytes");

    // The metadata stays readable without any key: the plaintext's sha256 and the
    // recipients.
    let head = bucket
        .aws_cli()
        .unwrap()
        .args([
            "s3api",
            "head-object",
            "--bucket",
            &bucket.name,
            "--key",
            &key_name,
        ])
        .output()
        .unwrap();
    assert!(
        head.status.success(),
        "{}",
        String::from_utf8_lossy(&head.stderr)
    );
    let head: serde_json::Value = serde_json::from_slice(&head.stdout).unwrap();
    assert_eq!(
        head["Metadata"]["jetvault-sha256"],
        harness::sha256(&original)
    );
    assert_eq!(head["Metadata"]["jetvault-codec"], "age+zstd");
    assert_eq!(
        head["Metadata"]["jetvault-recipients"],
        format!("{public},{dr_public}")
    );
}
