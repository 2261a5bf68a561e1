//! A store directory this user cannot write (a read-only copy for disaster recovery)
//! is readable: `list`, `cat`, `verify` and `restore --to` work against it; and a
//! restore to live works once what is live can be saved outside the store
//! (`--save-live-to`), never by overwriting live unsaved.
//!
//! Tests run as root, where file modes do not stop writes, so the commands run as
//! `nobody` ([`Jv::unprivileged`]) against a store written by root; as another user the
//! store's directories are also made read-only (mode 0555).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::harness::cli::Jv;
use crate::harness::corpus;
use crate::harness::scenarios::{A, C, D, file_sha, world};
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

/// A restore to live needs what is live saved first; a store that can't be written
/// can't hold the pre-restore snapshot, so the restore is refused naming
/// `--save-live-to`, and with it live is saved to that new file, read back, and only
/// then overwritten.
#[test]
fn restore_to_live_from_a_read_only_store_saves_live_to_a_file_first() {
    let jv = Jv::new();
    let live = world(&jv);
    let store = jv.store_dir();
    std::fs::write(&live, corpus(D)).unwrap();
    std::fs::set_permissions(&live, std::fs::Permissions::from_mode(0o666)).unwrap();
    let jv = jv.unprivileged();
    set_dir_modes(&store, 0o555);

    let r = jv.fails(&["restore", "crm", "production", "1", "--yes"], 5);
    assert!(r.stderr.contains("nothing was pushed"), "{}", r.text());
    assert!(r.stderr.contains("--save-live-to FILE"), "{}", r.text());
    assert_eq!(
        file_sha(&live).unwrap(),
        sha256(&corpus(D)),
        "live untouched"
    );

    let saved = jv.path("live-before.json");
    let saved_arg = saved.to_str().unwrap();
    let r = jv.ok(&[
        "restore",
        "crm",
        "production",
        "1",
        "--yes",
        "--save-live-to",
        saved_arg,
    ]);
    assert!(r.stdout.contains("saved in"), "{}", r.text());
    assert_eq!(file_sha(&saved).unwrap(), sha256(&corpus(D)), "live saved");
    assert_eq!(file_sha(&live).unwrap(), sha256(&corpus(A)), "v1 restored");

    // The copy is never overwritten by a second restore naming it.
    let r = jv.fails(
        &[
            "restore",
            "crm",
            "production",
            "3",
            "--yes",
            "--save-live-to",
            saved_arg,
        ],
        2,
    );
    assert!(r.stderr.contains("exists"), "{}", r.text());
    assert_eq!(file_sha(&saved).unwrap(), sha256(&corpus(D)));
    assert_eq!(file_sha(&live).unwrap(), sha256(&corpus(A)));
    set_dir_modes(&store, 0o755);
}
