//! Scenarios that run against any store: each takes a [`Jv`] (a local directory store,
//! or an S3 bucket).

use chrono::{Duration, Utc};
use jetvault_core::EnvRef;

use super::cli::Jv;
use super::{corpus, sha256};

pub const A: &str = super::NODERED;
pub const B: &str = super::APPSMITH;
pub const C: &str = super::GRAFANA;
pub const D: &str = super::N8N;

/// crm/production with v1 = A, v2 = B, v3 = C; live holds C.
pub fn world(jv: &Jv) -> std::path::PathBuf {
    let live = jv.path("production.json");
    jv.write_config(&Jv::file_env("crm", "production", &live, ""));
    for name in [A, B, C] {
        jv.backup_bytes("crm", "production", &live, &corpus(name));
    }
    live
}

pub fn versions(jv: &Jv) -> Vec<serde_json::Value> {
    jv.ok(&["--json", "list", "crm", "production"])
        .json()
        .as_array()
        .unwrap()
        .clone()
}

pub fn file_sha(path: &std::path::Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| sha256(&b))
}

/// One flipped byte in a stored snapshot: `verify` names it, `restore` refuses it and
/// pushes nothing.
pub fn flipped_byte(jv: &Jv) {
    let live = world(jv);
    let key = versions(jv)[1]["key"].as_str().unwrap().to_string();
    jv.flip_byte(&key);

    let r = jv.fails(&["verify"], 6);
    assert!(r.stdout.contains("1 BAD"), "{}", r.stdout);
    assert!(r.stdout.contains("v2 "), "{}", r.stdout);
    let r = jv.fails(&["--json", "verify", "crm", "production"], 6);
    let bad = &r.json()[0]["bad"];
    assert_eq!(bad.as_array().unwrap().len(), 1, "{bad}");
    assert_eq!(bad[0]["version"], 2);

    std::fs::write(&live, corpus(D)).unwrap();
    let r = jv.fails(&["restore", "crm", "production", "2", "--yes"], 6);
    assert!(r.stderr.contains("nothing was pushed"), "{}", r.stderr);
    assert!(
        r.stderr.contains("snapshot v2 of crm/production"),
        "{}",
        r.stderr
    );
    assert_eq!(
        file_sha(&live).unwrap(),
        sha256(&corpus(D)),
        "live untouched"
    );
    assert_eq!(
        versions(jv).len(),
        3,
        "no pre-restore snapshot for a refused restore"
    );
    // The other versions still restore.
    jv.ok(&["restore", "crm", "production", "1", "--yes"]);
    assert_eq!(file_sha(&live).unwrap(), sha256(&corpus(A)));
}

/// A version, label or time that matches nothing: the error names the nearest.
pub fn nothing_matches(jv: &Jv) {
    let live = world(jv);
    for name in [D, A] {
        jv.backup_bytes("crm", "production", &live, &corpus(name));
    }
    jv.ok(&["pin", "crm", "production", "2"]);
    jv.ok(&["prune", "crm", "production", "--keep-last", "1"]);
    // Left: v2 (pinned) and v5 (latest).
    let r = jv.fails(&["restore", "crm", "production", "3", "--yes"], 3);
    assert!(
        r.stderr.contains("the nearest are v2 and v5"),
        "{}",
        r.stderr
    );
    let r = jv.fails(&["restore", "crm", "production", "99", "--dry-run"], 3);
    assert!(r.stderr.contains("the latest is v5"), "{}", r.stderr);
    let r = jv.fails(
        &[
            "restore",
            "crm",
            "production",
            "--at",
            "2001-02-03T04:05:06Z",
            "--yes",
        ],
        3,
    );
    assert!(
        r.stderr.contains("the nearest is the oldest, v2"),
        "{}",
        r.stderr
    );
    let r = jv.fails(
        &[
            "restore",
            "crm",
            "production",
            "--release",
            "9.9.9",
            "--yes",
        ],
        3,
    );
    assert!(r.stderr.contains("9.9.9"), "{}", r.stderr);
    let r = jv.fails(&["pin", "crm", "production", "4"], 3);
    assert!(
        r.stderr.contains("the nearest are v2 and v5"),
        "{}",
        r.stderr
    );
    // Bad input is refused before any I/O.
    jv.fails(
        &[
            "restore",
            "crm",
            "production",
            "--at",
            "last tuesday",
            "--yes",
        ],
        2,
    );
    jv.fails(
        &[
            "restore",
            "crm",
            "production",
            "2",
            "--at",
            "2024-01-01T00:00:00Z",
        ],
        2,
    );
    jv.fails(&["restore", "crm", "production"], 2);
    assert_eq!(
        file_sha(&live).unwrap(),
        sha256(&corpus(A)),
        "live untouched"
    );
}

/// The drill: the live file is deleted; one command brings the release back, byte for
/// byte.
pub fn drill(jv: &Jv) {
    let live = world(jv);
    jv.ok(&["release", "crm", "production", "2", "--label", "2.0.0"]);
    let releases = jv.ok(&["--json", "releases", "crm", "production"]).json();
    let want = releases[0]["sha256"].as_str().unwrap().to_string();
    std::fs::remove_file(&live).unwrap();
    let started = std::time::Instant::now();
    let r = jv.ok(&[
        "restore",
        "crm",
        "production",
        "--release",
        "2.0.0",
        "--yes",
    ]);
    eprintln!("drill restore took {:?}", started.elapsed());
    assert_eq!(file_sha(&live).unwrap(), want);
    assert!(r.stdout.contains("restored v2"), "{}", r.stdout);
    assert!(r.stdout.contains("no pre-restore snapshot"), "{}", r.stdout);
    assert!(r.stdout.contains("it is missing"), "{}", r.stdout);
    // Nothing to save (live was gone); v4 records what the restore put back.
    let list = versions(jv);
    assert_eq!(list.len(), 4);
    assert_eq!(list[0]["trigger"], "restore");
    assert_eq!(list[0]["restored_from"], 2);
    assert_eq!(list[0]["sha256"], want.as_str());
    let events = jv
        .ok(&["--json", "events", "crm", "production", "--limit", "1"])
        .json();
    assert_eq!(events[0]["action"], "restore");
    assert_eq!(events[0]["details"]["pre_restore"]["kind"], "impossible");

    // `latest` is what is live: restoring it pushes nothing and writes nothing.
    let r = jv.ok(&["restore", "crm", "production", "latest", "--yes"]);
    assert!(r.stdout.contains("already holds v4"), "{}", r.stdout);
    assert_eq!(versions(jv).len(), 4);

    // Live equals the latest snapshot (v4): that is the undo point, no duplicate; v5
    // records what is live after the restore, and the printed undo command brings
    // live back.
    let r = jv.ok(&["--json", "restore", "crm", "production", "1", "--yes"]);
    let report = r.json();
    assert_eq!(report["pre_restore"]["kind"], "reused");
    assert_eq!(report["pre_restore"]["snapshot"]["version"], 4);
    assert_eq!(report["recorded"]["kind"], "saved");
    assert_eq!(report["recorded"]["snapshot"]["version"], 5);
    let list = versions(jv);
    assert_eq!(list[0]["trigger"], "restore");
    assert_eq!(list[0]["restored_from"], 1);
    assert_eq!(list[1]["sha256"], want.as_str());
    let undo = report["undo"][0].as_str().unwrap().to_string();
    assert!(undo.ends_with("restore crm production 4 --yes"), "{undo}");
    let args: Vec<&str> = undo.split(' ').skip(1).collect();
    jv.ok(&args);
    assert_eq!(file_sha(&live).unwrap(), want);

    // `release` restores what the pointer names; --publish moves the pointer.
    let r = jv.ok(&[
        "--json",
        "restore",
        "crm",
        "production",
        "3",
        "--publish",
        "--yes",
    ]);
    let report = r.json();
    assert_eq!(report["published"]["version"], 3);
    assert_eq!(report["published"]["changed"], true);
    let undo: Vec<&str> = report["undo"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    // v5 recorded live (v1's bytes) after the restore of v1, v6 (v2's bytes) after the
    // undo: the latest, so the undo point of this restore.
    assert!(
        undo[0].ends_with("restore crm production 6 --yes"),
        "{undo:?}"
    );
    assert!(undo[1].ends_with("rollback crm production"), "{undo:?}");
    let releases = jv.ok(&["--json", "releases", "crm", "production"]).json();
    assert_eq!(releases[0]["version"], 3);
    assert_eq!(releases[0]["kind"], "restore");
    jv.ok(&["rollback", "crm", "production"]);
    let r = jv.ok(&["restore", "crm", "production", "release", "--yes"]);
    assert!(r.stdout.contains("restored v2"), "{}", r.stdout);
    assert_eq!(file_sha(&live).unwrap(), want);
}

/// Writes versions 1..=n of `env`, one every six hours up to now, straight into the store.
pub fn history(jv: &Jv, env: &EnvRef, n: u64) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = jv.store.store().await;
        let now = Utc::now();
        let writes = (1..=n).map(|v| {
            let store = store.clone();
            async move {
                let raw =
                    format!("{{\"app\":\"crm\",\"pages\":[{{\"name\":\"Home\",\"rev\":{v}}}]}}");
                let at = now - Duration::hours(6 * (n - v) as i64);
                jetvault_core::testutil::put_snapshot(store.as_ref(), env, v, raw.as_bytes(), at)
                    .await;
            }
        });
        futures::future::join_all(writes).await;
    });
}

pub fn prune_500(jv: &Jv) {
    let live = jv.path("production.json");
    jv.write_config(&Jv::file_env("crm", "production", &live, ""));
    let env = EnvRef::parse("crm", "production").unwrap();
    history(jv, &env, 500);
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
    // `history` wrote the snapshots as an older jetvault would have, without index
    // entries or backup events: those are the only gaps; the prune left none.
    let gaps = jv.json(&["repair", "crm", "production", "--dry-run"]);
    for gap in gaps[0]["repaired"].as_array().unwrap() {
        let (kind, detail) = (
            gap["kind"].as_str().unwrap(),
            gap["detail"].as_str().unwrap(),
        );
        assert!(
            kind == "missing_index_entry"
                || (kind == "missing_event" && detail.ends_with("has no backup event")),
            "{gap}"
        );
    }
    jv.ok(&["repair", "crm", "production"]);
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
