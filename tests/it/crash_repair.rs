//! Crash consistency: `backup`, `release`, `rollback`, `restore` and `prune` killed
//! with SIGKILL at spread-out points leave gaps that `verify` names and `repair`
//! closes, so that verify then finds nothing. (`scripts/chaos kills` does the same
//! with 200 random kills.) Where the kills land depends on timing; what is asserted
//! does not: whatever they left, repair leaves zero problems.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::cli::Jv;
use crate::harness::corpus;
use crate::harness::scenarios::{A, B, C};

const COMMANDS: [&[&str]; 5] = [
    &["backup", "crm", "production"],
    &["release", "crm", "production", "latest"],
    &["rollback", "crm", "production"],
    &["restore", "crm", "production", "1", "--yes"],
    &["prune", "crm", "production", "--keep-last", "4"],
];
const KILLS: usize = 20;

fn gaps(verify: &serde_json::Value) -> Vec<String> {
    verify
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row["gaps"].as_array().cloned().unwrap_or_default())
        .map(|g| format!("{} {}", g["kind"], g["key"]))
        .collect()
}

#[test]
fn verify_and_repair_leave_nothing_missing_after_kills() {
    let jv = Jv::new();
    let live = jv.path("production.json");
    jv.write_config(&Jv::file_env("crm", "production", &live, ""));
    for name in [A, B, C] {
        jv.backup_bytes("crm", "production", &live, &corpus(name));
        jv.ok(&["release", "crm", "production", "latest"]);
    }
    let changed = |n: usize| {
        let mut doc: serde_json::Value = serde_json::from_slice(&corpus(B)).unwrap();
        doc["chaos"] = n.into();
        std::fs::write(&live, serde_json::to_vec(&doc).unwrap()).unwrap();
    };
    // How long each command takes alone; the kills are spread over that time.
    let took: Vec<Duration> = COMMANDS
        .iter()
        .enumerate()
        .map(|(i, args)| {
            changed(1000 + i);
            let started = Instant::now();
            jv.run(args);
            started.elapsed()
        })
        .collect();
    let mut killed = 0;
    for i in 0..KILLS {
        let c = i % COMMANDS.len();
        changed(i);
        let mut child = jv
            .command(COMMANDS[c])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Evenly spread points within the command's own time, per command.
        let round = (i / COMMANDS.len()) as u32;
        let rounds = KILLS.div_ceil(COMMANDS.len()) as u32;
        std::thread::sleep(took[c] * round / rounds);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
    }
    assert!(killed > 0, "no command was killed while it ran");

    // One gap of a known kind on top of what the kills left, so that repair is seen
    // doing work whatever the timing: a temporary file a killed write left behind.
    let tmp = jv
        .store_dir()
        .join("apps/crm/envs/production/snapshots/.jvtmp-killed");
    std::fs::write(&tmp, b"partial").unwrap();

    let first = jv.run(&["--json", "verify", "--grace", "0s"]);
    assert_eq!(first.code, 6, "{}", first.text());
    let found = gaps(&first.json());
    assert!(
        found.iter().any(|g| g.contains("leftover_file")),
        "{found:?}"
    );
    for row in first.json().as_array().unwrap() {
        assert_eq!(row["bad"], serde_json::json!([]), "{row}");
    }
    // Within the grace period nothing is named: a writer might still be running.
    let young = jv.run(&["--json", "verify"]);
    assert!(gaps(&young.json()).is_empty(), "{}", young.text());

    let repair = jv.json(&["repair", "--grace", "0s"]);
    let repaired: usize = repair
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repaired"].as_array().unwrap().len())
        .sum();
    assert!(repaired >= 1, "{repair}");
    assert!(!tmp.exists());

    let after = jv.run(&["--json", "verify", "--grace", "0s"]);
    assert_eq!(after.code, 0, "{}", after.text());
    assert!(gaps(&after.json()).is_empty(), "{}", after.text());
    let again = jv.ok(&["repair", "--grace", "0s"]);
    assert!(
        again.stdout.contains("nothing to repair"),
        "{}",
        again.text()
    );
}
