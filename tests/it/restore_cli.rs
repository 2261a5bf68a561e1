//! `jetvault restore`, `verify`, `pin` and `events` through the real binary, with a
//! local directory store and file live targets.

use crate::harness::cli::Jv;
use crate::harness::scenarios::{self, A, B, C, file_sha, versions, world};
use crate::harness::{corpus, sha256};

#[test]
fn flipped_byte_local() {
    scenarios::flipped_byte(&Jv::new());
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

#[test]
fn nothing_matches_local() {
    scenarios::nothing_matches(&Jv::new());
}

#[test]
fn drill_local() {
    scenarios::drill(&Jv::new());
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
