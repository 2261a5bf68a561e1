//! A store directory this user cannot write (a read-only copy for disaster recovery)
//! is readable: `list`, `cat`, `verify` and `restore --to` work against it.
//!
//! Tests run as root, where file modes do not stop writes, so the commands run as
//! `nobody` ([`Jv::unprivileged`]) against a store written by root; as another user the
//! store's directories are also made read-only (mode 0555).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::cli::Jv;
use crate::harness::corpus;
use crate::harness::scenarios::{C, file_sha, world};
use crate::harness::sha256;

fn set_dir_modes(dir: &Path, mode: u32) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            set_dir_modes(&entry.path(), mode);
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Runs the read commands as a user who cannot write the store.
fn read_commands_work(jv: &Jv, live: &Path) {
    // The user really cannot write the store (else this test proves nothing).
    let probe = jv.run(&["backup", "crm", "production", "--force"]);
    assert_ne!(probe.code, 0, "backup should fail: {}", probe.text());

    let list = jv.ok(&["--json", "list", "crm", "production"]).json();
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    let raw = jv.ok(&["cat", "crm", "production", "3"]).stdout;
    assert_eq!(sha256(raw.as_bytes()), sha256(&corpus(C)));
    jv.ok(&["verify"]);
    let out = jv.path("restored.json");
    jv.ok(&[
        "restore",
        "crm",
        "production",
        "3",
        "--to",
        out.to_str().unwrap(),
        "--yes",
    ]);
    assert_eq!(file_sha(&out).unwrap(), sha256(&corpus(C)));
    assert_eq!(file_sha(live).unwrap(), sha256(&corpus(C)));
}

#[test]
fn read_commands_work_on_a_read_only_store() {
    let jv = Jv::new();
    let live = world(&jv);
    let store = jv.store_dir();
    assert!(store.join(".jvlock").exists(), "writers left a lock file");
    let jv = jv.unprivileged();
    set_dir_modes(&store, 0o555);
    read_commands_work(&jv, &live);

    // A copy that never had a lock file (e.g. synced without hidden files) too.
    set_dir_modes(&store, 0o755);
    std::fs::remove_file(store.join(".jvlock")).unwrap();
    set_dir_modes(&store, 0o555);
    read_commands_work(&jv, &live);
    assert!(!store.join(".jvlock").exists());
    set_dir_modes(&store, 0o755);
}
