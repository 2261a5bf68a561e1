//! `jetvault restore`, `verify`, `pin` and `events` through the real binary, with a
//! local directory store and file live targets.

mod cliutil;

use cliutil::{Jv, corpus, sha256};

const A: &str = "nodered-http-endpoint-example.json";
const B: &str = "appsmith-import-app-all-access.json";
const C: &str = "grafana-k8s-views-nodes.json";
const D: &str = "n8n-webhook-manual-create.json";

/// crm/production with v1 = A, v2 = B, v3 = C; live holds C.
fn world(jv: &Jv) -> std::path::PathBuf {
    let live = jv.path("production.json");
    jv.write_config(&Jv::file_env("crm", "production", &live, ""));
    for name in [A, B, C] {
        jv.backup_bytes("crm", "production", &live, &corpus(name));
    }
    live
}

fn versions(jv: &Jv) -> Vec<serde_json::Value> {
    jv.ok(&["--json", "list", "crm", "production"])
        .json()
        .as_array()
        .unwrap()
        .clone()
}

fn file_sha(path: &std::path::Path) -> Option<String> {
    std::fs::read(path).ok().map(|b| sha256(&b))
}

/// One flipped byte in a stored snapshot: `verify` names it, `restore` refuses it and
/// pushes nothing.
fn flipped_byte(jv: &Jv) {
    let live = world(jv);
    let v2 = jv
        .store_dir()
        .join(versions(jv)[1]["key"].as_str().unwrap());
    let mut bytes = std::fs::read(&v2).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&v2, &bytes).unwrap();

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

#[test]
fn flipped_byte_local() {
    flipped_byte(&Jv::new());
}

/// A live target that refuses the write (a file in a read-only directory): live is
/// unchanged and said to be, and the pre-restore snapshot exists.
#[test]
fn push_into_a_read_only_directory() {
    let jv = Jv::new().unprivileged();
    let dir = jv.path("live");
    std::fs::create_dir(&dir).unwrap();
    let live = dir.join("production.json");
    jv.write_config(&Jv::file_env("crm", "production", &live, ""));
    for name in [A, B] {
        std::fs::write(&live, corpus(name)).unwrap();
        jv.ok(&["backup", "crm", "production"]);
    }
    std::fs::write(&live, corpus(C)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();

    let r = jv.fails(&["restore", "crm", "production", "1", "--yes"], 5);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(r.stderr.contains("pushing it to file:"), "{}", r.stderr);
    assert!(r.stderr.contains("live is unchanged"), "{}", r.stderr);
    assert_eq!(file_sha(&live).unwrap(), sha256(&corpus(C)));
    let list = versions(&jv);
    assert_eq!(list.len(), 3);
    assert_eq!(list[0]["trigger"], "pre-restore");
    assert_eq!(list[0]["sha256"], sha256(&corpus(C)));
    let events = jv.ok(&["--json", "events", "crm", "production"]).json();
    let failed = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "restore")
        .unwrap();
    assert_eq!(failed["details"]["outcome"], "failed");
    assert_eq!(failed["details"]["live_after"], "unchanged");
}

/// A version, label or time that matches nothing: the error names the nearest.
fn nothing_matches(jv: &Jv) {
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

#[test]
fn nothing_matches_local() {
    nothing_matches(&Jv::new());
}

/// The drill: the live file is deleted; one command brings the release back, byte for
/// byte.
fn drill(jv: &Jv) {
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
    assert_eq!(versions(jv).len(), 3, "nothing to save: live was gone");
    let events = jv
        .ok(&["--json", "events", "crm", "production", "--limit", "1"])
        .json();
    assert_eq!(events[0]["action"], "restore");
    assert_eq!(events[0]["details"]["pre_restore"]["kind"], "impossible");

    // With live present (and not the latest), the pre-restore snapshot is written and
    // listed, and the printed undo command brings live back.
    let r = jv.ok(&["--json", "restore", "crm", "production", "1", "--yes"]);
    let report = r.json();
    assert_eq!(report["pre_restore"]["kind"], "saved");
    assert_eq!(report["pre_restore"]["snapshot"]["version"], 4);
    let list = versions(jv);
    assert_eq!(list[0]["trigger"], "pre-restore");
    assert_eq!(list[0]["sha256"], want.as_str());
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
    // v5 saved live (v1's bytes) before the undo; v6 saved it (v2's bytes) before this.
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

#[test]
fn drill_local() {
    drill(&Jv::new());
}

/// Without a terminal and without --yes nothing happens; --dry-run shows the diff;
/// --to writes a file and leaves live alone.
#[test]
fn confirmation_dry_run_and_to_file() {
    let jv = Jv::new();
    let live = world(&jv);
    let r = jv.fails(&["restore", "crm", "production", "2"], 10);
    assert!(r.stderr.contains("pass --yes"), "{}", r.stderr);
    assert_eq!(file_sha(&live).unwrap(), sha256(&corpus(C)));
    assert_eq!(versions(&jv).len(), 3);

    let mut edited: serde_json::Value = serde_json::from_slice(&corpus(C)).unwrap();
    edited["title"] = serde_json::json!("edited by hand");
    std::fs::write(&live, serde_json::to_vec(&edited).unwrap()).unwrap();
    let r = jv.ok(&["restore", "crm", "production", "3", "--dry-run"]);
    assert!(r.stdout.contains("~ /title"), "{}", r.stdout);
    assert!(r.stdout.contains("edited by hand"), "{}", r.stdout);
    assert!(
        r.stdout.contains("0 added, 0 removed, 1 changed"),
        "{}",
        r.stdout
    );
    let plan = jv
        .ok(&["--json", "restore", "crm", "production", "3", "--dry-run"])
        .json();
    assert_eq!(plan["changes"].as_array().unwrap().len(), 1);
    assert_eq!(plan["snapshot"]["version"], 3);
    assert_eq!(versions(&jv).len(), 3, "a dry run writes nothing");

    let out = jv.path("copy.json");
    let r = jv.ok(&[
        "restore",
        "crm",
        "production",
        "1",
        "--to",
        out.to_str().unwrap(),
    ]);
    assert!(r.stdout.contains("live left alone"), "{}", r.stdout);
    assert_eq!(std::fs::read(&out).unwrap(), corpus(A));
    // Replacing an existing file needs confirmation too.
    jv.fails(
        &[
            "restore",
            "crm",
            "production",
            "2",
            "--to",
            out.to_str().unwrap(),
        ],
        10,
    );
    assert_eq!(std::fs::read(&out).unwrap(), corpus(A));
    assert_eq!(
        std::fs::read(&live).unwrap(),
        serde_json::to_vec(&edited).unwrap()
    );
    // latest and --at resolve too.
    jv.ok(&["restore", "crm", "production", "latest", "--yes"]);
    assert_eq!(file_sha(&live).unwrap(), sha256(&corpus(C)));
    jv.ok(&[
        "restore",
        "crm",
        "production",
        "--at",
        "2999-01-01T00:00:00Z",
        "--yes",
    ]);
}

#[test]
fn pins_and_events() {
    let jv = Jv::new();
    world(&jv);
    let r = jv.ok(&["pin", "crm", "production", "2"]);
    assert!(r.stdout.contains("v2 pinned"), "{}", r.stdout);
    let r = jv.ok(&["pin", "crm", "production", "v2"]);
    assert!(r.stdout.contains("already pinned"), "{}", r.stdout);
    jv.ok(&["pin", "crm", "production", "latest"]);
    let r = jv.ok(&["--json", "unpin", "crm", "production", "3"]).json();
    assert_eq!(r["changed"], true);
    let r = jv.fails(&["unpin", "crm", "production", "3"], 3);
    assert!(r.stderr.contains("pinned: v2"), "{}", r.stderr);
    let events = jv.ok(&["--json", "events", "crm", "production"]).json();
    let actions: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.iter().filter(|a| **a == "pin").count(), 2);
    assert_eq!(actions.iter().filter(|a| **a == "unpin").count(), 1);
    assert_eq!(actions.iter().filter(|a| **a == "backup").count(), 3);
    let text = jv.ok(&["events", "crm", "production", "--limit", "2"]);
    assert_eq!(text.stdout.lines().count(), 3, "{}", text.stdout);
    assert!(events[0]["actor"]["who"] == "tester");
}
