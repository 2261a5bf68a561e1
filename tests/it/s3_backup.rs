//! The real `jetvault` binary against LocalStack: racing backups from several processes,
//! restore by hand with the AWS CLI and zstd, an unreachable endpoint, `list --json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::harness::{self, Backend, StoreSpec, TestBucket, sha256};

const WORKERS: usize = 8;
const BACKUPS_PER_WORKER: usize = 25;

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}:\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A corpus document with a small edit that makes it distinct and keeps it valid JSON.
fn edited(original: &[u8], tag: &str) -> Vec<u8> {
    let at = original
        .iter()
        .position(|b| *b == b'{' || *b == b'[')
        .expect("a JSON document");
    let insert = if original[at] == b'{' {
        format!("\"jetvault_test_edit\":\"{tag}\",")
    } else {
        format!("{{\"jetvault_test_edit\":\"{tag}\"}},")
    };
    let mut out = Vec::with_capacity(original.len() + insert.len());
    out.extend_from_slice(&original[..=at]);
    out.extend_from_slice(insert.as_bytes());
    out.extend_from_slice(&original[at + 1..]);
    serde_json::from_slice::<serde_json::Value>(&out).expect("the edit keeps the JSON valid");
    out
}

fn list_json(bucket: &TestBucket, app: &str, env: &str, limit: usize) -> Vec<serde_json::Value> {
    let out =
        ok(bucket
            .jetvault()
            .args(["list", app, env, "--json", "--limit", &limit.to_string()]));
    serde_json::from_slice(&out.stdout).expect("list --json prints a JSON array")
}

/// 8 processes x 25 backups of distinct content into one environment: versions 1..200,
/// no gap, no duplicate, and `cat` of each gives back its input byte for byte.
#[test]
fn racing_backup_processes_get_distinct_gapless_versions() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(bucket) = rt.block_on(TestBucket::new(Backend::LocalStack, "race")) else {
        return;
    };
    let originals: Vec<Vec<u8>> = harness::corpus_files()
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .filter(|b| b.len() < 350_000)
        .collect();
    assert!(
        originals.len() >= 3,
        "the corpus has small files to back up"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut inputs: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut plan: Vec<Vec<PathBuf>> = vec![Vec::new(); WORKERS];
    for (w, files) in plan.iter_mut().enumerate() {
        for i in 0..BACKUPS_PER_WORKER {
            let n = w * BACKUPS_PER_WORKER + i;
            let doc = edited(&originals[n % originals.len()], &format!("w{w}-i{i}"));
            let path = dir.path().join(format!("w{w}-i{i}.json"));
            std::fs::write(&path, &doc).unwrap();
            assert!(inputs.insert(sha256(&doc), path.clone()).is_none());
            files.push(path);
        }
    }

    std::thread::scope(|s| {
        for (w, files) in plan.iter().enumerate() {
            let bucket = &bucket;
            s.spawn(move || {
                for f in files {
                    ok(bucket
                        .jetvault()
                        .args(["backup", "crm", "production", "--from"])
                        .arg(f)
                        .args(["--message", &format!("worker {w}")]));
                }
            });
        }
    });

    let total = WORKERS * BACKUPS_PER_WORKER;
    let listed = list_json(&bucket, "crm", "production", total + 50);
    let versions: Vec<u64> = listed
        .iter()
        .map(|s| s["version"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=total as u64).rev().collect();
    assert_eq!(
        versions, expected,
        "versions 1..{total}, newest first, no gap, no duplicate"
    );

    // Every input is stored exactly once, and `cat` gives it back byte for byte.
    let by_version: BTreeMap<u64, String> = listed
        .iter()
        .map(|s| {
            (
                s["version"].as_u64().unwrap(),
                s["sha256"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let stored: BTreeSet<&String> = by_version.values().collect();
    assert_eq!(stored, inputs.keys().collect::<BTreeSet<_>>());
    let chunks: Vec<Vec<(u64, String)>> = by_version
        .into_iter()
        .collect::<Vec<_>>()
        .chunks(total.div_ceil(WORKERS))
        .map(<[_]>::to_vec)
        .collect();
    std::thread::scope(|s| {
        for chunk in &chunks {
            let (bucket, inputs) = (&bucket, &inputs);
            s.spawn(move || {
                for (version, sha) in chunk {
                    let out = ok(bucket.jetvault().args([
                        "cat",
                        "crm",
                        "production",
                        &version.to_string(),
                    ]));
                    let want = std::fs::read(&inputs[sha]).unwrap();
                    assert!(
                        out.stdout == want,
                        "cat of v{version} differs from its input"
                    );
                }
            });
        }
    });
}

/// A snapshot fetched with the AWS CLI alone and decompressed with `zstd -d` is the
/// original file, byte for byte; its metadata is readable with `aws s3api`.
#[test]
fn restore_by_hand_with_aws_cli_and_zstd() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(bucket) = rt.block_on(TestBucket::new(Backend::LocalStack, "by-hand")) else {
        return;
    };
    let Some(_) = bucket.aws_cli() else {
        return;
    };
    let file = harness::corpus_path(harness::APPSMITH_LARGE);
    let original = std::fs::read(&file).unwrap();
    ok(bucket
        .jetvault_at("backups")
        .args(["backup", "crm", "production", "--from"])
        .arg(&file));

    // Find the newest version: the first key of one listing.
    let prefix = format!(
        "s3://{}/backups/apps/crm/envs/production/snapshots/",
        bucket.name
    );
    let out = ok(bucket.aws_cli().unwrap().args(["s3", "ls", &prefix]));
    let listing = String::from_utf8(out.stdout).unwrap();
    let name = listing
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().last())
        .unwrap_or_else(|| panic!("aws s3 ls lists the snapshot: {listing:?}"))
        .to_string();
    assert!(name.ends_with("-v1.json.zst"), "{name}");

    let dir = tempfile::tempdir().unwrap();
    let zst = dir.path().join(&name);
    ok(bucket
        .aws_cli()
        .unwrap()
        .args(["s3", "cp", &format!("{prefix}{name}")])
        .arg(&zst));
    let restored = dir.path().join("restored.json");
    let zstd = Command::new("zstd")
        .arg("-d")
        .arg("-q")
        .arg(&zst)
        .arg("-o")
        .arg(&restored)
        .output()
        .expect("zstd is installed (Debian package zstd; .ci/run installs it)");
    assert!(
        zstd.status.success(),
        "zstd -d failed: {}",
        String::from_utf8_lossy(&zstd.stderr)
    );
    assert!(
        std::fs::read(&restored).unwrap() == original,
        "zstd -d gives the original bytes"
    );

    let head = ok(bucket.aws_cli().unwrap().args([
        "s3api",
        "head-object",
        "--bucket",
        &bucket.name,
        "--key",
        &format!("backups/apps/crm/envs/production/snapshots/{name}"),
    ]));
    let head: serde_json::Value = serde_json::from_slice(&head.stdout).unwrap();
    assert_eq!(head["ContentType"], "application/zstd");
    assert_eq!(head["Metadata"]["jetvault-version"], "1");
    assert_eq!(head["Metadata"]["jetvault-sha256"], sha256(&original));
}

/// An endpoint where nothing listens: a clear error naming it and pointing to `doctor`,
/// exit code 5 (unavailable), and nothing else.
#[test]
fn unreachable_endpoint_is_named_with_exit_code_5() {
    let endpoint = format!("http://127.0.0.1:{}", harness::closed_port());
    let file = harness::corpus_path(harness::NODERED);
    for args in [
        vec![
            "backup",
            "crm",
            "production",
            "--from",
            file.to_str().unwrap(),
        ],
        vec!["list", "crm", "production"],
    ] {
        let started = std::time::Instant::now();
        let out = run(
            harness::store_command(&StoreSpec::s3("s3://jetvault-nowhere", &endpoint)).args(&args),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{args:?} failed after {:?}: {stderr}", started.elapsed());
        assert_eq!(out.status.code(), Some(5), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&endpoint),
            "the error names the endpoint: {stderr}"
        );
        assert!(
            stderr.contains("jetvault doctor"),
            "the error points to doctor: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "nothing on stdout: {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// A store URL whose bucket does not exist: the error says to create it.
#[test]
fn missing_bucket_says_to_create_it() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(bucket) = rt.block_on(TestBucket::new(Backend::LocalStack, "nobucket")) else {
        return;
    };
    let file = harness::corpus_path(harness::NODERED);
    let out = run(harness::store_command(&StoreSpec::s3(
        &format!("s3://{}-absent", bucket.name),
        &bucket.endpoint,
    ))
    .args(["backup", "crm", "production", "--from"])
    .arg(&file));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("does not exist") && stderr.contains("create it"),
        "{stderr}"
    );
}

/// `list --json` prints the documented fields of every snapshot, newest first.
#[test]
fn list_json_has_the_documented_fields() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(bucket) = rt.block_on(TestBucket::new(Backend::LocalStack, "list")) else {
        return;
    };
    let files = [
        harness::corpus_path(harness::GRAFANA),
        harness::corpus_path(harness::N8N),
    ];
    for (i, f) in files.iter().enumerate() {
        ok(bucket
            .jetvault()
            .args(["backup", "crm", "staging", "--from"])
            .arg(f)
            .args([
                "--message",
                &format!("change {i} ✓"),
                "--author",
                "ana@example.com",
            ]));
    }
    // The same content again makes no new snapshot.
    let again = ok(bucket
        .jetvault()
        .args(["backup", "crm", "staging", "--from"])
        .arg(&files[1]));
    assert!(String::from_utf8_lossy(&again.stdout).contains("unchanged"));

    let listed = list_json(&bucket, "crm", "staging", 10);
    assert_eq!(listed.len(), 2);
    for (entry, (i, file)) in listed.iter().zip(files.iter().enumerate().rev()) {
        let raw = std::fs::read(file).unwrap();
        assert_eq!(entry["version"], i as u64 + 1);
        assert_eq!(entry["sha256"], sha256(&raw));
        assert_eq!(entry["size"], raw.len() as u64);
        let stored = entry["stored_size"].as_u64().unwrap();
        assert!(
            stored > 0 && stored < raw.len() as u64,
            "stored_size {stored}"
        );
        let created = entry["created_at"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(created).expect("created_at is RFC 3339");
        assert_eq!(entry["trigger"], "upload");
        assert_eq!(entry["author"], "ana@example.com");
        assert_eq!(entry["message"], format!("change {i} ✓"));
    }
    let newest = list_json(&bucket, "crm", "staging", 1);
    assert_eq!(newest.len(), 1);
    assert_eq!(newest[0]["version"], 2);
}
