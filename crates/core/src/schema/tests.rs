//! Schema checks over a local directory store: the shipped Node-RED schema on real
//! exports, and refuse / flag / override on backup, release, promote and restore.

use std::sync::Arc;

use super::*;
use crate::error::{ErrorKind, Step};
use crate::events::{Action, Actor};
use crate::live::file::FileTarget;
use crate::meta::Trigger;
use crate::promote::PromoteRequest;
use crate::release::ReleaseRequest;
use crate::restore::{PreRestore, RestoreRequest};
use crate::selector::Selector;
use crate::snapshot::{BackupOutcome, BackupRequest};
use crate::store::LocalStore;
use crate::testutil::corpus;
use crate::vault::{Vault, VaultOptions};

const NODE_RED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../schemas/node-red-flows.json"
);
const FLOWS: &str = "nodered-http-endpoint-example.json";
const NOT_FLOWS: &[u8] = br#"{"not":"a flow list"}"#;

fn env(name: &str) -> EnvRef {
    EnvRef::parse("flows", name).unwrap()
}

/// A config where `flows/production` checks the Node-RED schema (`on_backup` as
/// given; absent: the default) and `flows/staging` has no schema.
fn config(on_backup: Option<&str>) -> Config {
    let on_backup = on_backup.map_or(String::new(), |o| format!("on_backup = \"{o}\"\n"));
    Config::parse(&format!(
        "[apps.flows.envs.production.schema]\nfile = {NODE_RED:?}\n{on_backup}\n\
         [apps.flows.envs.staging]\n"
    ))
    .unwrap()
}

struct Fixture {
    dir: tempfile::TempDir,
    vault: Vault,
}

fn fixture(on_backup: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path().join("store")).unwrap());
    let options = VaultOptions {
        schemas: Schemas::from_config(&config(on_backup)),
        ..VaultOptions::default()
    };
    Fixture {
        vault: Vault::new(store, options),
        dir,
    }
}

fn actor() -> Actor {
    Actor {
        who: Some("ada".into()),
        via: "test".into(),
        from: None,
    }
}

/// The real export without the `id` of its second node.
fn node_without_id() -> Vec<u8> {
    let mut flows: serde_json::Value = serde_json::from_slice(&corpus(FLOWS)).unwrap();
    flows[1].as_object_mut().unwrap().remove("id");
    serde_json::to_vec(&flows).unwrap()
}

fn node_red() -> EnvSchema {
    EnvSchema {
        config: SchemaConfig {
            file: NODE_RED.into(),
            on_backup: OnBackup::Refuse,
        },
        compiled: OnceLock::new(),
        borrowed: OnceLock::new(),
        preparing: std::sync::atomic::AtomicBool::new(false),
    }
}

#[test]
fn the_node_red_schema_accepts_real_exports_and_rejects_other_shapes() {
    let s = node_red();
    let e = env("production");
    assert_eq!(s.check(&e, &corpus(FLOWS)).unwrap(), None);
    // The v2 shape: {flows, rev}.
    let v2 = format!(
        "{{\"flows\":{},\"rev\":\"7f1e\"}}",
        String::from_utf8(corpus(FLOWS)).unwrap()
    );
    assert_eq!(s.check(&e, v2.as_bytes()).unwrap(), None);

    let found = s.check(&e, NOT_FLOWS).unwrap().expect("not a flow list");
    assert_eq!(found.first[0].pointer, "");
    assert!(found.first[0].message.contains("flows"), "{found:?}");

    let found = s
        .check(&e, &node_without_id())
        .unwrap()
        .expect("a node without id");
    assert_eq!(found.count, 1);
    assert_eq!(found.first[0].pointer, "/1");
    assert!(found.first[0].message.contains("\"id\""), "{found:?}");

    // Typed optional fields, each violation with its pointer.
    let bad = br#"[{"id":"a","type":"tab","label":"Flow 1"},
                  {"id":"b","type":"inject","z":7,"wires":[["c", 3]]},
                  {"id":"","type":"debug"}]"#;
    let found = s.check(&e, bad).unwrap().expect("typed fields");
    let pointers: Vec<&str> = found.first.iter().map(|v| v.pointer.as_str()).collect();
    assert_eq!(found.count, 3, "{found:?}");
    for p in ["/1/z", "/1/wires/0/1", "/2/id"] {
        assert!(pointers.contains(&p), "{p} in {pointers:?}");
    }
    assert!(
        found
            .listing()
            .contains("/1/z: 7 is not of type \"string\""),
        "{}",
        found.listing()
    );
}

#[test]
fn config_check_names_the_file_and_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let (not_json, not_schema) = (dir.path().join("a.json"), dir.path().join("b.json"));
    std::fs::write(&not_json, "{ nope").unwrap();
    std::fs::write(&not_schema, r#"{"type": 5}"#).unwrap();
    for (file, what) in [
        (&not_json, "is not JSON"),
        (&not_schema, "is not a valid schema"),
        (
            &dir.path().join("missing.json"),
            "cannot read the schema file",
        ),
    ] {
        let c = Config::parse(&format!(
            "[apps.flows.envs.production.schema]\nfile = {:?}\n",
            file.display().to_string()
        ))
        .unwrap();
        let e = Schemas::from_config(&c).compile_all().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let text = e.to_string();
        assert!(text.contains("apps.flows.envs.production.schema"), "{text}");
        assert!(text.contains(&file.display().to_string()), "{text}");
        assert!(text.contains(what), "{text}");
    }
    let ok = Schemas::from_config(&config(None)).compile_all().unwrap();
    assert_eq!(ok, vec![(env("production"), NODE_RED.into())]);
    // Unknown values and keys are refused.
    let bad =
        format!("[apps.flows.envs.production.schema]\nfile = {NODE_RED:?}\non_backup = \"warn\"\n");
    assert!(Config::parse(&bad).is_err());
    // Relative paths are the config file's directory's.
    let path = dir.path().join("jetvault.toml");
    std::fs::write(
        &path,
        "[apps.flows.envs.production.schema]\nfile = \"s.json\"\n",
    )
    .unwrap();
    let c = Config::load(&path).unwrap();
    let schema = c.env(&env("production")).unwrap().schema.as_ref().unwrap();
    assert_eq!(schema.file, dir.path().join("s.json"));
    assert_eq!(schema.on_backup, OnBackup::Refuse);
}

#[tokio::test]
async fn prepare_compiles_once_and_a_broken_schema_is_still_reported_by_the_check() {
    let schemas = Schemas::from_config(&config(None));
    let e = env("production");
    assert!(schemas.prepare(&env("staging")).is_none(), "no schema");
    let compiling = schemas.prepare(&e).expect("not compiled yet");
    assert!(schemas.prepare(&e).is_none(), "started already");
    compiling.await.unwrap();
    assert!(matches!(
        schemas.get(&e).unwrap().borrowed.get(),
        Some(Ok(_))
    ));
    assert!(schemas.prepare(&e).is_none(), "compiled already");

    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, r#"{"type": 5}"#).unwrap();
    let c = Config::parse(&format!(
        "[apps.flows.envs.production.schema]\nfile = {:?}\n",
        broken.display().to_string()
    ))
    .unwrap();
    let schemas = Schemas::from_config(&c);
    schemas.prepare(&e).unwrap().await.unwrap();
    let err = schemas.check(&e, &corpus(FLOWS)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("is not a valid schema"), "{err}");
}

#[tokio::test]
async fn backup_refuses_by_default_and_writes_nothing() {
    let f = fixture(None);
    let e = env("production");
    let err = f
        .vault
        .backup(&e, BackupRequest::new(node_without_id(), Trigger::Manual))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = err.to_string();
    assert!(text.contains("/1: \"id\" is a required property"), "{text}");
    assert!(text.contains("nothing was written"), "{text}");
    assert_eq!(err.hint().unwrap().steps, vec![Step::SkipSchemaCheck]);
    assert!(f.vault.latest(&e).await.unwrap().is_none());
    // Valid content, and an environment without a schema, are stored as before.
    let ok = BackupRequest::new(corpus(FLOWS), Trigger::Schedule);
    let m = f.vault.backup(&e, ok).await.unwrap();
    assert_eq!(m.snapshot().schema_errors, None);
    let other = BackupRequest::new(NOT_FLOWS, Trigger::Manual);
    f.vault.backup(&env("staging"), other).await.unwrap();

    // The override stores it, flagged, and the event records the override.
    let mut forced = BackupRequest::new(node_without_id(), Trigger::Manual);
    forced.skip_schema_check = true;
    let out = f.vault.backup(&e, forced).await.unwrap();
    assert_eq!(out.snapshot().schema_errors, Some(1));
    let events = f.vault.events(&e, 10).await.unwrap();
    let backup = events
        .iter()
        .find(|ev| ev.action == Action::Backup && ev.version == Some(2))
        .unwrap();
    assert_eq!(backup.details["schema_check_skipped"], true);
    assert_eq!(backup.details["schema_violations"]["count"], 1);
}

#[tokio::test]
async fn flag_stores_and_records_the_violations_in_the_metadata() {
    let f = fixture(Some("flag"));
    let e = env("production");
    let out = f
        .vault
        .backup(&e, BackupRequest::new(NOT_FLOWS, Trigger::Schedule))
        .await
        .unwrap();
    let BackupOutcome::Created(m) = out else {
        panic!("{out:?}")
    };
    assert_eq!(m.schema_errors, Some(1));
    let first = m.schema_error.clone().unwrap();
    assert!(first.starts_with("/: "), "{first}");
    assert!(first.contains("flows"), "{first}");
    // Listing (the index) and the snapshot's own metadata agree.
    assert_eq!(f.vault.snapshot_meta(&e, 1).await.unwrap(), m);
    assert_eq!(f.vault.list(&e, None, 5).await.unwrap(), vec![m]);
    let events = f.vault.events(&e, 10).await.unwrap();
    assert_eq!(events[0].details["schema_check_skipped"], false);
    assert_eq!(events[0].details["schema_violations"]["count"], 1);
}

#[tokio::test]
async fn release_refuses_a_failing_snapshot_unless_overridden() {
    let f = fixture(Some("flag"));
    let e = env("production");
    for raw in [corpus(FLOWS), NOT_FLOWS.to_vec()] {
        f.vault
            .backup(&e, BackupRequest::new(raw, Trigger::Manual))
            .await
            .unwrap();
    }
    f.vault
        .release(&e, ReleaseRequest::new(1, actor()))
        .await
        .unwrap();
    let err = f
        .vault
        .release(&e, ReleaseRequest::new(2, actor()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("to release v2"), "{err}");
    let current = f.vault.current_release(&e).await.unwrap().unwrap();
    assert_eq!(current.release.version, 1, "the pointer did not move");

    let mut req = ReleaseRequest::new(2, actor());
    req.skip_schema_check = true;
    let p = f.vault.release(&e, req).await.unwrap();
    assert_eq!(p.release.version, 2);
    let events = f.vault.events(&e, 10).await.unwrap();
    let released = events
        .iter()
        .find(|ev| ev.action == Action::Release && ev.version == Some(2))
        .unwrap();
    assert_eq!(released.details["schema_check_skipped"], true);
    assert_eq!(released.details["schema_violations"]["count"], 1);
}

#[tokio::test]
async fn promote_refuses_into_an_env_whose_schema_fails_unless_overridden() {
    let f = fixture(None);
    let (staging, production) = (env("staging"), env("production"));
    f.vault
        .backup(&staging, BackupRequest::new(NOT_FLOWS, Trigger::Manual))
        .await
        .unwrap();
    let app = &staging.app;
    let err = f
        .vault
        .promote(
            app,
            &staging.env,
            &production.env,
            PromoteRequest::new(actor()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert!(f.vault.latest(&production).await.unwrap().is_none());

    let mut req = PromoteRequest::new(actor());
    req.skip_schema_check = true;
    req.release = true;
    let out = f
        .vault
        .promote(app, &staging.env, &production.env, req)
        .await
        .unwrap();
    // Stored and flagged (a promote's copy is never refused by `on_backup`).
    assert_eq!(out.snapshot.snapshot().schema_errors, Some(1));
    assert_eq!(out.release.unwrap().release.version, 1);
    let events = f.vault.events(&production, 10).await.unwrap();
    let promoted = events
        .iter()
        .find(|ev| ev.action == Action::Promote)
        .unwrap();
    assert_eq!(promoted.details["schema_check_skipped"], true);
}

#[tokio::test]
async fn restore_refuses_a_failing_snapshot_unless_overridden_and_saves_a_failing_live() {
    let f = fixture(Some("flag"));
    let e = env("production");
    for raw in [corpus(FLOWS), NOT_FLOWS.to_vec()] {
        f.vault
            .backup(&e, BackupRequest::new(raw, Trigger::Manual))
            .await
            .unwrap();
    }
    let live = f.dir.path().join("live.json");
    std::fs::write(&live, corpus(FLOWS)).unwrap();
    let target = FileTarget::new(live.clone());

    // The dry run names the violations.
    let plan = f
        .vault
        .plan_restore(&e, &target, &Selector::Version(2))
        .await
        .unwrap();
    assert_eq!(plan.schema_violations.as_ref().unwrap().count, 1);
    let err = f
        .vault
        .restore(
            &e,
            &target,
            RestoreRequest::new(Selector::Version(2), actor()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("nothing was pushed"), "{err}");
    assert_eq!(std::fs::read(&live).unwrap(), corpus(FLOWS));
    assert_eq!(f.vault.all_versions(&e).await.unwrap().len(), 2);

    let mut req = RestoreRequest::new(Selector::Version(2), actor());
    req.skip_schema_check = true;
    let report = f.vault.restore(&e, &target, req).await.unwrap();
    assert!(report.pushed);
    assert_eq!(std::fs::read(&live).unwrap(), NOT_FLOWS);
    let recorded = report.recorded.snapshot().unwrap();
    assert_eq!(
        (recorded.trigger, recorded.schema_errors),
        (Trigger::Restore, Some(1))
    );
    let events = f.vault.events(&e, 10).await.unwrap();
    let restored = events
        .iter()
        .find(|ev| ev.action == Action::Restore)
        .unwrap();
    assert_eq!(restored.details["schema_check_skipped"], true);

    // What is live now fails the schema, and is saved first all the same (flagged):
    // a restore never loses it to the check.
    let fix = f
        .vault
        .restore(
            &e,
            &target,
            RestoreRequest::new(Selector::Version(1), actor()),
        )
        .await
        .unwrap();
    assert!(matches!(
        fix.pre_restore.snapshot(),
        Some(m) if m.schema_errors == Some(1)
    ));
    assert_eq!(std::fs::read(&live).unwrap(), corpus(FLOWS));
}

#[tokio::test]
async fn refuse_applies_to_a_pre_restore_snapshot_never() {
    let f = fixture(None);
    let e = env("production");
    f.vault
        .backup(&e, BackupRequest::new(corpus(FLOWS), Trigger::Manual))
        .await
        .unwrap();
    let live = f.dir.path().join("live.json");
    std::fs::write(&live, NOT_FLOWS).unwrap();
    let report = f
        .vault
        .restore(
            &e,
            &FileTarget::new(live.clone()),
            RestoreRequest::new(Selector::Version(1), actor()),
        )
        .await
        .unwrap();
    let PreRestore::Saved { snapshot } = &report.pre_restore else {
        panic!("{:?}", report.pre_restore)
    };
    assert_eq!(
        (snapshot.trigger, snapshot.schema_errors),
        (Trigger::PreRestore, Some(1))
    );
    assert_eq!(std::fs::read(&live).unwrap(), corpus(FLOWS));
}

/// The check runs beside the first store round trip, yet a fresh store is left empty
/// when the check fails: not even the store's marker is written.
#[tokio::test]
async fn a_refused_backup_leaves_a_fresh_store_empty() {
    for (name, raw) in [
        ("production", node_without_id()),
        ("production", b"{\"not json".to_vec()),
        ("staging", b"[1,".to_vec()),
    ] {
        let f = fixture(None);
        let err = f
            .vault
            .backup(&env(name), BackupRequest::new(raw, Trigger::Manual))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let store = f.dir.path().join("store");
        // The local store's lock file is made when the store is opened.
        let left: Vec<_> = walk(&store)
            .into_iter()
            .filter(|p| !p.ends_with(".jvlock"))
            .collect();
        assert!(left.is_empty(), "{name}: {left:?}");
    }
}

/// Every file under `dir` (none when it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}
