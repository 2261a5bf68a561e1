use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use super::*;
use crate::config::Config;
use crate::events::Actor;
use crate::live::file::FileTarget;
use crate::restore::{PreRestore, RestoreRequest, Verification};
use crate::selector::Selector;
use crate::snapshot::{BackupOutcome, BackupRequest, Trigger};
use crate::testutil::{corpus, local_vault};

const FLOWS: &str = "nodered-http-endpoint-example.json";
/// A Node-RED credentials file as Node-RED writes it (encrypted with credentialSecret).
const CREDS: &[u8] = b"{\n    \"$\": \"4d1c2b0e8f7a6b5c9d3e2f1a0b9c8d7eQ2x5Yl0pK3vR8w==\"\n}\n";

fn file(path: &Path) -> Arc<dyn LiveTarget> {
    Arc::new(FileTarget::new(path.to_path_buf()))
}

/// Two file parts in `dir`: `flows` (the corpus flow) and `credentials`.
fn node_red_files(dir: &Path) -> (PartsTarget, std::path::PathBuf, std::path::PathBuf) {
    let (flows, creds) = (dir.join("flows.json"), dir.join("flows_cred.json"));
    std::fs::write(&flows, corpus(FLOWS)).unwrap();
    std::fs::write(&creds, CREDS).unwrap();
    let target = PartsTarget::new(
        vec![
            ("flows".into(), file(&flows)),
            ("credentials".into(), file(&creds)),
        ],
        1 << 20,
    );
    (target, flows, creds)
}

fn backup() -> BackupRequest {
    BackupRequest::new(Bytes::new(), Trigger::Manual)
}

fn req(v: u64) -> RestoreRequest {
    RestoreRequest::new(Selector::Version(v), Actor::default())
}

#[tokio::test]
async fn backs_up_the_parts_as_one_object_and_restores_each_byte_for_byte() {
    let (dir, _store, vault, env) = local_vault();
    let (target, flows, creds) = node_red_files(dir.path());
    assert_eq!(
        target.describe(),
        format!(
            "parts {{credentials: file:{}, flows: file:{}}}",
            creds.display(),
            flows.display()
        )
    );
    let BackupOutcome::Created(v1) = vault
        .backup_from_live(&env, &target, backup())
        .await
        .unwrap()
    else {
        panic!("the first backup creates v1");
    };
    let (_, stored) = vault.get(&env, v1.version).await.unwrap();
    let stored: Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(
        stored,
        json!({
            "credentials": serde_json::from_slice::<Value>(CREDS).unwrap(),
            "flows": serde_json::from_slice::<Value>(&corpus(FLOWS)).unwrap(),
        }),
        "one snapshot holds both documents under their names"
    );

    // The disaster: both files gone.
    std::fs::remove_file(&flows).unwrap();
    std::fs::remove_file(&creds).unwrap();
    let e = vault.restore(&env, &target, req(1)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert!(!flows.exists() && !creds.exists(), "nothing was written");

    let mut r = req(1);
    r.allow_missing_live = true;
    let report = vault.restore(&env, &target, r).await.unwrap();
    assert_eq!(report.verified, Verification::Sha256);
    assert!(matches!(report.pre_restore, PreRestore::Impossible { .. }));
    // Each part is back with its own bytes, but for the trailing newline jetvault does
    // not store (JSON text is kept from its first to its last character).
    assert_eq!(std::fs::read(&creds).unwrap(), CREDS.trim_ascii_end());
    assert_eq!(
        std::fs::read(&flows).unwrap(),
        corpus(FLOWS).trim_ascii_end()
    );
    // And live reads back as v1 itself: the next backup writes nothing.
    assert!(matches!(
        vault
            .backup_from_live(&env, &target, backup())
            .await
            .unwrap(),
        BackupOutcome::Unchanged(_)
    ));
}

#[tokio::test]
async fn a_part_missing_beside_present_ones_is_unreadable_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (target, flows, creds) = node_red_files(dir.path());
    std::fs::remove_file(&creds).unwrap();
    let e = target.read(1 << 20).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert!(!e.is_live_missing());
    assert!(e.message().contains("credentials ("), "names the part: {e}");
    assert!(e.message().contains("while flows is present"), "{e}");

    std::fs::remove_file(&flows).unwrap();
    let e = target.read(1 << 20).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LiveMissing, "{e}");
}

#[tokio::test]
async fn a_part_that_is_not_json_or_too_large_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (target, _flows, creds) = node_red_files(dir.path());
    std::fs::write(&creds, "not json").unwrap();
    let e = target.read(1 << 20).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.message().contains("part credentials is not JSON"), "{e}");

    std::fs::write(&creds, CREDS).unwrap();
    let size = corpus(FLOWS).len() as u64;
    let e = target.read(size + 10).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "the whole is over: {e}");
}

#[tokio::test]
async fn a_write_with_other_parts_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (target, flows, creds) = node_red_files(dir.path());
    for bad in [
        r#"{"flows": []}"#,
        r#"{"flows": [], "credentials": {}, "x": 1}"#,
        "[1]",
    ] {
        let e = target.write(Bytes::from(bad)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.message().starts_with("nothing was written"), "{e}");
    }
    assert_eq!(std::fs::read(&flows).unwrap(), corpus(FLOWS));
    assert_eq!(std::fs::read(&creds).unwrap(), CREDS);
}

/// A part whose writes fail while `broken` is set (a disk full, a platform refusing).
#[derive(Debug)]
struct Flaky {
    inner: FileTarget,
    broken: AtomicBool,
}

#[async_trait]
impl LiveTarget for Flaky {
    fn describe(&self) -> String {
        "flaky".into()
    }
    async fn read(&self, limit: u64) -> Result<Bytes> {
        self.inner.read(limit).await
    }
    async fn write(&self, bytes: Bytes) -> Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(Error::unavailable("no space left on device"));
        }
        self.inner.write(bytes).await
    }
}

#[tokio::test]
async fn a_part_failing_mid_restore_names_what_was_written_and_the_undo_puts_all_back() {
    let (dir, _store, vault, env) = local_vault();
    let p = |name: &str| dir.path().join(name);
    std::fs::write(p("a.json"), r#"{"n":1}"#).unwrap();
    std::fs::write(p("b.json"), r#"{"n":1}"#).unwrap();
    std::fs::write(p("c.json"), r#"{"n":1}"#).unwrap();
    let flaky = Arc::new(Flaky {
        inner: FileTarget::new(p("b.json")),
        broken: AtomicBool::new(false),
    });
    let target = PartsTarget::new(
        vec![
            ("c".into(), file(&p("c.json"))),
            ("b".into(), flaky.clone()),
            ("a".into(), file(&p("a.json"))),
        ],
        1 << 20,
    );
    vault
        .backup_from_live(&env, &target, backup())
        .await
        .unwrap();
    for f in ["a.json", "b.json", "c.json"] {
        std::fs::write(p(f), r#"{"n":2}"#).unwrap();
    }

    flaky.broken.store(true, Ordering::SeqCst);
    let e = vault.restore(&env, &target, req(1)).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let text = e.message();
    assert!(text.contains("writing part b (flaky) failed"), "{text}");
    assert!(text.contains("no space left on device"), "{text}");
    assert!(text.contains("parts written before it: a;"), "{text}");
    assert!(text.contains("parts not written: c;"), "{text}");
    assert!(
        text.contains("saved as v2"),
        "the pre-restore snapshot: {text}"
    );
    // Parts are written in name order: a was, c was not.
    assert_eq!(std::fs::read(p("a.json")).unwrap(), br#"{"n":1}"#);
    assert_eq!(std::fs::read(p("c.json")).unwrap(), br#"{"n":2}"#);

    // The pre-restore snapshot holds every part as it was: restoring it undoes all.
    flaky.broken.store(false, Ordering::SeqCst);
    vault.restore(&env, &target, req(2)).await.unwrap();
    for f in ["a.json", "b.json", "c.json"] {
        assert_eq!(std::fs::read(p(f)).unwrap(), br#"{"n":2}"#, "{f}");
    }
}

#[tokio::test]
async fn each_part_has_its_own_filter() {
    let (dir, _store, vault, env) = local_vault();
    let flows = dir.path().join("flows.json");
    std::fs::write(&flows, r#"{"flows":[{"id":"a"}],"rev":"r1"}"#).unwrap();
    std::fs::write(dir.path().join("creds.json"), CREDS).unwrap();
    let config = Config::parse(&format!(
        r#"
        [apps.crm.envs.production.live]
        kind = "parts"
        [apps.crm.envs.production.live.parts.flows]
        kind = "file"
        path = "{flows}"
        filter = {{ read = ".flows", write = "{{flows: ., rev: $live.rev}}" }}
        [apps.crm.envs.production.live.parts.credentials]
        kind = "file"
        path = "{creds}"
        secret = true
        allow_plaintext_secrets = true
        "#,
        flows = flows.display(),
        creds = dir.path().join("creds.json").display(),
    ))
    .unwrap();
    let target = crate::live::open_configured(&config, &env).await.unwrap();
    let BackupOutcome::Created(v1) = vault
        .backup_from_live(&env, target.as_ref(), backup())
        .await
        .unwrap()
    else {
        panic!("v1");
    };
    let (_, stored) = vault.get(&env, v1.version).await.unwrap();
    let stored: Value = serde_json::from_slice(&stored).unwrap();
    assert_eq!(stored["flows"], json!([{"id": "a"}]), "the read filter ran");

    std::fs::write(&flows, r#"{"flows":[],"rev":"r2"}"#).unwrap();
    let report = vault.restore(&env, target.as_ref(), req(1)).await.unwrap();
    assert_eq!(report.verified, Verification::Sha256);
    let live: Value = serde_json::from_slice(&std::fs::read(&flows).unwrap()).unwrap();
    assert_eq!(live, json!({"flows": [{"id": "a"}], "rev": "r2"}));
}

const PARTS: &str = r#"
    [apps.crm.envs.production.live]
    kind = "parts"
    [apps.crm.envs.production.live.parts.flows]
    kind = "http"
    url = "http://127.0.0.1:1880/flows"
    write_method = "POST"
    [apps.crm.envs.production.live.parts.credentials]
    kind = "file"
    path = "/var/lib/node-red/flows_cred.json"
    secret = true
"#;

#[test]
fn a_secret_part_needs_encryption_or_the_written_opt_in() {
    let e = Config::parse(PARTS).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message()
            .starts_with("apps.crm.envs.production.live.parts.credentials: secret = true"),
        "{e}"
    );
    assert!(
        e.message().contains("allow_plaintext_secrets = true"),
        "{e}"
    );

    let (_, recipient) = crate::crypt::Identities::generate();
    let store_wide = format!("[encryption]\nrecipients = [\"{recipient}\"]\n{PARTS}");
    Config::parse(&store_wide).unwrap();
    let per_env =
        format!("{PARTS}\n[apps.crm.envs.production.encryption]\nrecipients = [\"{recipient}\"]\n");
    Config::parse(&per_env).unwrap();
    // Encryption turned off for this environment: refused again.
    let off = format!("{store_wide}\n[apps.crm.envs.production.encryption]\nrecipients = []\n");
    assert!(Config::parse(&off).is_err());
    let opt_in = PARTS.replace(
        "secret = true",
        "secret = true\nallow_plaintext_secrets = true",
    );
    Config::parse(&opt_in).unwrap();
}

#[test]
fn part_tables_are_checked_like_live_targets() {
    let opt_in = PARTS.replace("secret = true", "allow_plaintext_secrets = true");
    let cases = [
        (
            opt_in.replace("kind = \"file\"", "kind = \"file\"\nsecrt = true"),
            "secrt",
        ),
        (
            opt_in.replace("http://127.0.0.1:1880/flows", "ftp://x"),
            "not an http",
        ),
        (
            opt_in.replace("parts.credentials]", "parts.\"a b\"]"),
            "letters, digits",
        ),
        (
            format!("{opt_in}\nfilter = {{ ignore = [\".rev\"] }}"),
            "ignore paths of a part",
        ),
        (
            "[apps.crm.envs.production.live]\nkind = \"parts\"\nparts = {}".into(),
            "at least one part",
        ),
    ];
    for (text, says) in cases {
        let e = Config::parse(&text).unwrap_err();
        assert!(e.report().contains(says), "{says}: {}", e.report());
    }
}

/// A part whose reads fail as a platform's 5xx does.
#[derive(Debug)]
struct Down;

#[async_trait]
impl LiveTarget for Down {
    fn describe(&self) -> String {
        "down".into()
    }
    async fn read(&self, _limit: u64) -> Result<Bytes> {
        Err(Error::unavailable("HTTP 503 Service Unavailable"))
    }
    async fn write(&self, _bytes: Bytes) -> Result<()> {
        Err(Error::unavailable("HTTP 503 Service Unavailable"))
    }
}

#[tokio::test]
async fn an_optional_part_missing_is_absent_from_the_version_and_left_alone_by_restore() {
    let (dir, _store, vault, env) = local_vault();
    let (target, flows, creds) = node_red_files(dir.path());
    let target = target.with_optional(&["credentials"]);
    // Node-RED before any credentials exist: no flows_cred.json.
    std::fs::remove_file(&creds).unwrap();
    let v1 = vault
        .backup_from_live(&env, &target, backup())
        .await
        .unwrap();
    let (_, stored) = vault.get(&env, v1.snapshot().version).await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&stored).unwrap(),
        json!({"flows": serde_json::from_slice::<Value>(&corpus(FLOWS)).unwrap()}),
        "the version records the part as absent"
    );
    // Credentials come; the next version holds them.
    std::fs::write(&creds, CREDS).unwrap();
    let BackupOutcome::Created(v2) = vault
        .backup_from_live(&env, &target, backup())
        .await
        .unwrap()
    else {
        panic!("the credentials are a change");
    };
    assert_eq!(v2.version, 2);

    // Restoring v1 writes its flows and leaves the credentials file as it is.
    std::fs::write(&flows, "[]").unwrap();
    let report = vault.restore(&env, &target, req(1)).await.unwrap();
    assert!(report.pushed);
    assert_eq!(report.verified, Verification::OptionalPartsKept);
    assert_eq!(
        std::fs::read(&flows).unwrap(),
        corpus(FLOWS).trim_ascii_end()
    );
    assert_eq!(std::fs::read(&creds).unwrap(), CREDS, "left as it was");

    // A write naming a part the environment does not have, or lacking a required
    // one, still writes nothing.
    for bad in [r#"{"credentials": {}}"#, r#"{"flows": [], "x": 1}"#] {
        let e = target.write(Bytes::from(bad)).await.unwrap_err();
        assert!(e.message().starts_with("nothing was written"), "{e}");
        assert!(
            e.message().contains("of which [credentials] optional"),
            "{e}"
        );
    }
    // Every part gone: live is missing, as for any target.
    std::fs::remove_file(&flows).unwrap();
    std::fs::remove_file(&creds).unwrap();
    let e = target.read(1 << 20).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LiveMissing, "{e}");
}

#[tokio::test]
async fn only_missing_makes_an_optional_part_absent_and_a_required_one_says_how() {
    let dir = tempfile::tempdir().unwrap();
    let (target, _flows, creds) = node_red_files(dir.path());
    // An optional part that fails otherwise than missing fails the read.
    let flows = dir.path().join("flows.json");
    let down = PartsTarget::new(
        vec![
            ("flows".into(), file(&flows)),
            ("credentials".into(), Arc::new(Down) as Arc<dyn LiveTarget>),
        ],
        1 << 20,
    )
    .with_optional(&["credentials"]);
    let e = down.read(1 << 20).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.report().contains("reading part credentials"), "{e}");
    std::fs::write(&creds, "not json").unwrap();
    let e = target
        .with_optional(&["credentials"])
        .read(1 << 20)
        .await
        .unwrap_err();
    assert!(e.message().contains("part credentials is not JSON"), "{e}");

    // A required part missing names itself and the way to make it optional.
    std::fs::remove_file(&creds).unwrap();
    let (target, _, _) = {
        let t = node_red_files(dir.path());
        std::fs::remove_file(&creds).unwrap();
        t
    };
    let e = target.read(1 << 20).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert!(
        e.message().starts_with("the required part credentials ("),
        "{e}"
    );
    assert!(
        e.message()
            .contains("write optional = true in [...live.parts.credentials]"),
        "{e}"
    );
}

#[test]
fn optional_is_read_from_the_part_table() {
    let text = PARTS.replace(
        "secret = true",
        "secret = true\nallow_plaintext_secrets = true\noptional = true",
    );
    let config = Config::parse(&text).unwrap();
    let env = crate::id::EnvRef::parse("crm", "production").unwrap();
    let parts = crate::config::parts_of(config.env(&env).unwrap().live.as_ref().unwrap()).unwrap();
    assert!(parts["credentials"].optional);
    assert!(parts.values().filter(|p| !p.optional).count() >= 1);
}
