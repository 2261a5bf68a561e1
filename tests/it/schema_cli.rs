//! The real `jetvault` binary with a JSON Schema on an environment (the shipped
//! Node-RED schema): `backup` refuses a configuration that fails it with exit 2 and
//! writes nothing; `--skip-schema-check` stores it flagged; `release` refuses it the
//! same way, and the override is recorded in the release's audit event.

use crate::harness::cli::Jv;
use crate::harness::{NODERED, corpus};

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/node-red-flows.json");

#[test]
fn backup_refuses_with_exit_2_and_release_records_the_override() {
    let jv = Jv::new();
    let live = jv.path("flows.json");
    jv.write_config(&Jv::file_env(
        "flows",
        "production",
        &live,
        &format!("schema = {{ file = {SCHEMA:?} }}"),
    ));
    let r = jv.ok(&["config", "check"]);
    assert!(r.stdout.contains("1 JSON Schema"), "{}", r.stdout);

    // A flow export passes.
    assert_eq!(
        jv.backup_bytes("flows", "production", &live, &corpus(NODERED)),
        1
    );

    // A node without its id: refused, exit 2, the violation named with its pointer.
    let mut flows: serde_json::Value = serde_json::from_slice(&corpus(NODERED)).unwrap();
    flows[2].as_object_mut().unwrap().remove("id");
    std::fs::write(&live, serde_json::to_vec(&flows).unwrap()).unwrap();
    let r = jv.fails(&["backup", "flows", "production"], 2);
    assert!(
        r.stderr.contains("/2: \"id\" is a required property"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("nothing was written"), "{}", r.stderr);
    assert!(r.stderr.contains("--skip-schema-check"), "{}", r.stderr);
    let list = jv.json(&["list", "flows", "production"]);
    assert_eq!(list.as_array().unwrap().len(), 1);

    // With the override it is stored, flagged; `list` and `show` say so.
    let out = jv.json(&["backup", "flows", "production", "--skip-schema-check"]);
    assert_eq!(out["version"], 2);
    assert_eq!(out["schema_errors"], 1);
    let text = jv.ok(&["list", "flows", "production"]).stdout;
    assert!(text.contains("[schema: 1 error]"), "{text}");
    let text = jv.ok(&["show", "flows", "production", "2"]).stdout;
    assert!(text.contains("schema      FAILED: 1 violation"), "{text}");

    // Releasing it is refused the same way; the override is recorded in the event.
    let r = jv.fails(&["release", "flows", "production", "2"], 2);
    assert!(r.stderr.contains("refusing to release v2"), "{}", r.stderr);
    let releases = jv.json(&["releases", "flows", "production"]);
    assert_eq!(
        releases.as_array().unwrap().len(),
        0,
        "nothing was published"
    );
    jv.ok(&["release", "flows", "production", "2", "--skip-schema-check"]);
    let events = jv.json(&["events", "flows", "production", "--limit", "1"]);
    assert_eq!(events[0]["action"], "release");
    assert_eq!(events[0]["details"]["schema_check_skipped"], true);
    assert_eq!(events[0]["details"]["schema_violations"]["count"], 1);
    assert_eq!(
        events[0]["details"]["schema_violations"]["first"][0]["pointer"],
        "/2"
    );
}

#[test]
fn config_check_names_a_schema_that_does_not_compile() {
    let jv = Jv::new();
    let bad = jv.file("bad.json", br#"{"type": 5}"#);
    jv.write_config(&format!(
        "[apps.flows.envs.production.schema]\nfile = {bad:?}\n"
    ));
    let r = jv.fails(&["config", "check"], 2);
    assert!(
        r.stderr.contains("apps.flows.envs.production.schema"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("bad.json"), "{}", r.stderr);
}
