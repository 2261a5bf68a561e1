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
