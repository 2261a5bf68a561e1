//! `jetvault prune` through the real binary, on a long history written through the
//! library (so that creation times span months), with a release and a pin.

use crate::harness::cli::Jv;
use crate::harness::scenarios;

#[test]
fn prune_500_versions_keeps_release_history_pins_and_latest_local() {
    scenarios::prune_500(&Jv::new());
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
