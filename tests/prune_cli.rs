//! `jetvault prune` through the real binary, on a long history written through the
//! library (so that creation times span months), with a release and a pin.

mod cliutil;

use std::sync::Arc;

use chrono::{Duration, Utc};
use cliutil::Jv;
use jetvault::store::{OpenOptions, PutMode, Store};
use jetvault::{EnvRef, SnapshotMeta, Trigger, codec, layout};

/// Writes versions 1..=n of `env`, one every six hours up to now, straight into the store.
fn history(url: &str, env: &EnvRef, n: u64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store: Arc<dyn Store> = jetvault::store::open(url, &OpenOptions::default())
            .await
            .unwrap();
        let now = Utc::now();
        let writes = (1..=n).map(|v| {
            let store = store.clone();
            let env = env.clone();
            async move {
                let raw =
                    format!("{{\"app\":\"crm\",\"pages\":[{{\"name\":\"Home\",\"rev\":{v}}}]}}");
                let z = codec::compress(raw.as_bytes(), 3).unwrap();
                let meta = SnapshotMeta {
                    version: v,
                    sha256: codec::sha256_hex(raw.as_bytes()),
                    size: raw.len() as u64,
                    stored_size: z.len() as u64,
                    created_at: now - Duration::hours(6 * (n - v) as i64),
                    trigger: Trigger::Schedule,
                    author: None,
                    message: None,
                    source: None,
                    key: layout::snapshot_key(&env, v),
                };
                store
                    .put(&meta.key, z.into(), &meta.to_metadata(), PutMode::Create)
                    .await
                    .unwrap();
            }
        });
        futures::future::join_all(writes).await;
    });
}

fn prune_500(jv: &Jv) {
    let live = jv.path("production.json");
    jv.write_config(&Jv::file_env("crm", "production", &live, ""));
    let env = EnvRef::parse("crm", "production").unwrap();
    history(&jv.store_url, &env, 500);
    jv.ok(&["release", "crm", "production", "100", "--label", "1.0.0"]);
    jv.ok(&["release", "crm", "production", "250", "--label", "1.1.0"]);
    jv.ok(&["pin", "crm", "production", "42"]);

    let r = jv.ok(&[
        "--json",
        "prune",
        "crm",
        "production",
        "--keep-last",
        "10",
        "--keep-daily",
        "7",
        "--dry-run",
    ]);
    let report = &r.json()[0];
    assert_eq!(report["result"], "pruned");
    assert_eq!(report["dry_run"], true);
    let decisions = report["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 500);
    let reasons = |v: u64| -> Vec<String> {
        let d = decisions.iter().find(|d| d["version"] == v).unwrap();
        assert_eq!(d["keep"], true, "v{v} must be kept: {d}");
        d["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect()
    };
    assert!(reasons(500).contains(&"latest".to_string()));
    assert!(reasons(250).contains(&"released".to_string()));
    assert!(reasons(100).contains(&"release-history".to_string()));
    assert!(reasons(42).contains(&"pinned".to_string()));
    let kept = report["kept"].as_u64().unwrap();
    // 10 last + 7 daily (4 a day: the newest of each of 7 days, 3 overlap with the
    // last 10) + released + history + pinned.
    assert!((15..=20).contains(&kept), "kept {kept}");
    assert_eq!(report["deleted"].as_u64().unwrap(), 500 - kept);
    let list = jv
        .ok(&["--json", "list", "crm", "production", "--limit", "1000"])
        .json();
    assert_eq!(
        list.as_array().unwrap().len(),
        500,
        "a dry run deletes nothing"
    );

    // For real: the same decisions, and the protected versions still restore.
    let r = jv.ok(&[
        "--json",
        "prune",
        "crm",
        "production",
        "--keep-last",
        "10",
        "--keep-daily",
        "7",
    ]);
    assert_eq!(r.json()[0]["kept"].as_u64().unwrap(), kept);
    let list = jv
        .ok(&["--json", "list", "crm", "production", "--limit", "1000"])
        .json();
    assert_eq!(list.as_array().unwrap().len() as u64, kept);
    jv.ok(&[
        "restore",
        "crm",
        "production",
        "--release",
        "1.0.0",
        "--yes",
    ]);
    jv.ok(&[
        "restore",
        "crm",
        "production",
        "42",
        "--to",
        jv.path("v42.json").to_str().unwrap(),
    ]);
    jv.ok(&["verify", "crm", "production"]);
    let events = jv
        .ok(&["--json", "events", "crm", "production", "--limit", "10"])
        .json();
    let prune = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "prune")
        .unwrap();
    assert_eq!(prune["details"]["deleted"].as_u64().unwrap(), 500 - kept);
}

#[test]
fn prune_500_versions_keeps_release_history_pins_and_latest_local() {
    prune_500(&Jv::new());
}

/// No policy anywhere: refuse. A policy in the config applies to its environment only;
/// environments without one are skipped, never pruned.
#[test]
fn prune_needs_a_policy() {
    let jv = Jv::new();
    let prod = jv.path("production.json");
    let staging = jv.path("staging.json");
    jv.write_config(&format!(
        "{}{}",
        Jv::file_env("crm", "production", &prod, ""),
        Jv::file_env("crm", "staging", &staging, "")
    ));
    for i in 0..4 {
        let doc = format!("{{\"rev\":{i}}}");
        jv.backup_bytes("crm", "production", &prod, doc.as_bytes());
        jv.backup_bytes("crm", "staging", &staging, doc.as_bytes());
    }
    let r = jv.fails(&["prune"], 2);
    assert!(r.stderr.contains("no retention policy"), "{}", r.stderr);
    let r = jv.fails(&["prune", "crm", "production", "--dry-run"], 2);
    assert!(
        r.stderr.contains("no retention policy for crm/production"),
        "{}",
        r.stderr
    );

    jv.write_config(&format!(
        "{}{}",
        Jv::file_env("crm", "production", &prod, "retention = { keep_last = 2 }"),
        Jv::file_env("crm", "staging", &staging, "")
    ));
    let r = jv.ok(&["prune"]);
    assert!(
        r.stdout
            .contains("crm/production: 4 snapshots, 2 kept, deleted 2"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("crm/staging: skipped"), "{}", r.stdout);
    let count = |env: &str| {
        jv.ok(&["--json", "list", "crm", env])
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!((count("production"), count("staging")), (2, 4));
    // Flags override the config and reach every environment in the store.
    jv.ok(&["prune", "--keep-last", "3"]);
    assert_eq!((count("production"), count("staging")), (2, 3));
    jv.fails(&["prune", "--keep-within", "a while"], 2);
}
