//! `POST /v1/apps/{app}/envs/{env}/restore` on the real binary (`jetvault serve`), with a
//! file live target and a local directory store: the dry run, the restore with its
//! pre-restore snapshot, publishing, a corrupt snapshot, auth, and the not-found
//! messages that name the nearest versions, labels and times. The dry run and the
//! restore also run on LocalStack (through `scripts/test`).

use std::path::PathBuf;

use crate::harness::serve::{
    LARGE, MEDIUM, OP, OTHER, RD, Reply, SMALL, Server, client, config, send,
};
use crate::harness::{Backend, TestBucket};
use crate::harness::{StoreSpec, corpus, sha256, write_atomically};
use jetvault_core::diff::Diff;
use jetvault_core::{EnvRef, Trigger};
use serde_json::{Value, json};

const ENV: &str = "/v1/apps/crm/envs/production";

struct Fixture {
    _dir: tempfile::TempDir,
    store: StoreSpec,
    server: Server,
    http: reqwest::Client,
    live: PathBuf,
}

fn env_ref() -> EnvRef {
    EnvRef::parse("crm", "production").unwrap()
}

/// A server on a fresh local store; `crm/production` has the live file `live.json`,
/// holding `SMALL`.
fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    start_on(dir, store)
}

/// The same on a LocalStack bucket; `None` (after a note) without LocalStack outside CI.
async fn start_on_localstack(label: &str) -> Option<(TestBucket, Fixture)> {
    let bucket = TestBucket::new(Backend::LocalStack, label).await?;
    let store = bucket.spec("");
    let fixture = start_on(tempfile::tempdir().unwrap(), store);
    Some((bucket, fixture))
}

fn start_on(dir: tempfile::TempDir, store: StoreSpec) -> Fixture {
    let live = dir.path().join("live.json");
    std::fs::write(&live, corpus(SMALL)).unwrap();
    let apps = format!(
        "[apps.crm.envs.production.live]\nkind = \"file\"\npath = {:?}\n",
        live.display().to_string()
    );
    let server = Server::start(dir.path(), &config(&store, "", &apps));
    Fixture {
        _dir: dir,
        store,
        server,
        http: client(),
        live,
    }
}

impl Fixture {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.server.url(path)).bearer_auth(RD)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.server.url(path)).bearer_auth(OP)
    }

    async fn restore(&self, body: Value) -> Reply {
        send(
            self.post(&format!("{ENV}/restore"))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// v1 = SMALL (backed up from live), v2 = MEDIUM, v3 = OTHER (uploaded); live
    /// still holds SMALL.
    async fn seed(&self) {
        let r = send(self.post(&format!("{ENV}/backup"))).await;
        assert_eq!(r.status, 201, "{r:?}");
        for name in [MEDIUM, OTHER] {
            let r = send(self.post(&format!("{ENV}/snapshots")).body(corpus(name))).await;
            assert_eq!(r.status, 201, "{r:?}");
        }
        assert_eq!(self.versions().await, [3, 2, 1]);
    }

    fn live_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.live).unwrap()
    }

    async fn versions(&self) -> Vec<u64> {
        self.store
            .vault()
            .await
            .all_versions(&env_ref())
            .await
            .unwrap()
    }

    fn store_root(&self) -> PathBuf {
        self.store.dir()
    }

    async fn restore_events(&self) -> Vec<Value> {
        let r = send(self.get(&format!("{ENV}/events"))).await;
        assert_eq!(r.status, 200, "{r:?}");
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "restore")
            .cloned()
            .collect()
    }

    /// `jetvault_restores_total` for crm/production with `result`.
    async fn restores(&self, result: &str) -> u64 {
        let r = send(self.get("/metrics")).await;
        let text = String::from_utf8(r.body.to_vec()).unwrap();
        let prefix = format!(
            "jetvault_restores_total{{app=\"crm\",env=\"production\",result=\"{result}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |n| n.trim().parse().unwrap())
    }
}

#[tokio::test]
async fn a_dry_run_returns_the_diff_and_changes_nothing() {
    scenario_dry_run(&start()).await;
}

#[tokio::test]
async fn a_dry_run_returns_the_diff_and_changes_nothing_localstack() {
    if let Some((_bucket, f)) = start_on_localstack("restore-dry-run").await {
        scenario_dry_run(&f).await;
    }
}

async fn scenario_dry_run(f: &Fixture) {
    f.seed().await;
    let before = f.live_bytes();

    let r = f
        .restore(json!({"source": {"version": 2}, "dry_run": true}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let plan = r.json();
    assert_eq!(plan["snapshot"]["version"], 2);
    assert_eq!(plan["snapshot"]["sha256"], sha256(&corpus(MEDIUM)));
    assert_eq!(plan["live"]["state"], "present");
    assert_eq!(plan["live"]["sha256"], sha256(&corpus(SMALL)));
    assert_eq!(plan["already_live"], false);
    assert!(plan["target"].as_str().unwrap().contains("live.json"));
    let expected = Diff::between(&corpus(SMALL), &corpus(MEDIUM), "live", "snapshot").unwrap();
    assert!(!expected.changes().is_empty());
    assert_eq!(
        plan["changes"],
        serde_json::to_value(expected.changes()).unwrap(),
        "the changes from live to v2"
    );

    // Nothing changed: live, the snapshots, the audit log, the counters.
    assert_eq!(f.live_bytes(), before);
    assert_eq!(f.versions().await, [3, 2, 1]);
    assert!(f.restore_events().await.is_empty());
    assert_eq!(f.restores("restored").await, 0);

    // A dry run of what live already holds says so.
    let r = f
        .restore(json!({"source": {"version": 1}, "dry_run": true}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["already_live"], true);
    assert_eq!(r.json()["changes"], json!([]));
}

#[tokio::test]
async fn a_restore_writes_live_saves_what_was_there_and_says_how_to_undo() {
    scenario_restore(&start()).await;
}

#[tokio::test]
async fn a_restore_writes_live_saves_what_was_there_and_says_how_to_undo_localstack() {
    if let Some((_bucket, f)) = start_on_localstack("restore-route").await {
        scenario_restore(&f).await;
    }
}

async fn scenario_restore(f: &Fixture) {
    f.seed().await;
    // Live has drifted since the last snapshot.
    write_atomically(&f.live, &corpus(LARGE));

    let r = f
        .restore(json!({"source": {"version": 2}, "message": "the import broke the app"}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(report["restored"]["version"], 2);
    assert_eq!(report["pushed"], true);
    assert_eq!(report["verified"], "sha256");
    assert_eq!(report["pre_restore"]["kind"], "saved");
    assert_eq!(report["pre_restore"]["snapshot"]["version"], 4);
    assert_eq!(report["pre_restore"]["snapshot"]["trigger"], "pre-restore");
    assert_eq!(report["undo"], json!([{"action": "restore", "version": 4}]));
    assert_eq!(report["published"], Value::Null);

    assert_eq!(report["recorded"]["kind"], "saved");
    assert_eq!(report["recorded"]["snapshot"]["version"], 5);
    assert_eq!(report["recorded"]["snapshot"]["trigger"], "restore");
    assert_eq!(report["recorded"]["snapshot"]["restored_from"], 2);

    assert_eq!(f.live_bytes(), corpus(MEDIUM).to_vec());
    assert_eq!(f.versions().await, [5, 4, 3, 2, 1]);
    let (meta, raw) = f.store.vault().await.get(&env_ref(), 4).await.unwrap();
    assert_eq!(
        raw,
        corpus(LARGE),
        "the pre-restore snapshot holds what was live"
    );
    assert_eq!(meta.trigger, Trigger::PreRestore);
    assert_eq!(meta.author.as_deref(), Some("token:ci"));

    let events = f.restore_events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["version"], 2);
    assert_eq!(events[0]["actor"]["who"], "token:ci");
    assert_eq!(events[0]["actor"]["via"], "api");
    assert_eq!(events[0]["details"]["outcome"], "restored");
    assert_eq!(events[0]["details"]["message"], "the import broke the app");
    assert_eq!(events[0]["details"]["recorded"]["snapshot"]["version"], 5);
    assert_eq!(f.restores("restored").await, 1);

    // `latest` is what is live now (v5): nothing to push, nothing written.
    let r = f.restore(json!({"source": "latest"})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["restored"]["version"], 5);
    assert_eq!(r.json()["pushed"], false);
    assert_eq!(r.json()["recorded"]["kind"], "latest");
    assert_eq!(f.versions().await, [5, 4, 3, 2, 1]);

    // The pre-restore snapshot (v4) with publish: the release moves and is served at
    // once.
    let r = f
        .restore(json!({"source": {"version": 4}, "publish": true}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(report["restored"]["version"], 4);
    assert_eq!(report["published"]["version"], 4);
    assert_eq!(report["published"]["changed"], true);
    assert_eq!(report["publish_error"], Value::Null);
    assert_eq!(f.live_bytes(), corpus(LARGE).to_vec());
    let label = report["published"]["label"].as_str().unwrap().to_string();
    let pointer = send(f.get(&format!("{ENV}/release"))).await;
    assert_eq!(pointer.status, 200, "{pointer:?}");
    assert_eq!(pointer.json()["version"], 4);
    assert_eq!(pointer.json()["kind"], "restore");
    let config = send(f.get(&format!("{ENV}/release/config"))).await;
    assert_eq!(config.body, corpus(LARGE));

    // By release label, when live already holds it: nothing pushed, nothing to undo.
    let r = f.restore(json!({"source": {"release": label}})).await;
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(report["restored"]["version"], 4);
    assert_eq!(report["pushed"], false);
    assert_eq!(report["verified"], "not_pushed");
    assert_eq!(report["undo"], json!([]));
    assert_eq!(f.restores("already_live").await, 2);
    assert_eq!(f.restores("restored").await, 2);
}

#[tokio::test]
async fn a_corrupt_snapshot_is_refused_and_live_is_unchanged() {
    let f = start();
    f.seed().await;
    write_atomically(&f.live, &corpus(LARGE));
    let before = f.live_bytes();

    // One flipped byte in the stored (zstd) object of v2.
    let path = f
        .store_root()
        .join(jetvault_core::layout::snapshot_key(&env_ref(), 2));
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    for body in [
        json!({"source": {"version": 2}, "dry_run": true}),
        json!({"source": {"version": 2}, "allow_missing_live": true, "publish": true}),
    ] {
        let r = f.restore(body).await;
        assert_eq!(r.status, 500, "{r:?}");
        assert_eq!(r.code(), "corrupt");
        let message = r.json()["error"]["message"].as_str().unwrap().to_string();
        assert!(message.contains("v2"), "{message}");
        assert!(message.contains("nothing was pushed"), "{message}");
    }
    assert_eq!(f.live_bytes(), before, "live is unchanged");
    assert_eq!(f.versions().await, [3, 2, 1], "no pre-restore snapshot");
    let pointer = send(f.get(&format!("{ENV}/release"))).await;
    assert_eq!(pointer.status, 404, "nothing was published");
    assert_eq!(f.restores("failed").await, 1);
    assert_eq!(f.restores("restored").await, 0);
}

#[tokio::test]
async fn auth_bad_requests_and_not_found_name_the_nearest() {
    let f = start();
    f.seed().await;
    let before = f.live_bytes();
    let body = json!({"source": {"version": 2}}).to_string();

    // A read token may not restore; no token is not even identified.
    let r = send(
        f.http
            .post(f.server.url(&format!("{ENV}/restore")))
            .bearer_auth(RD)
            .body(body.clone()),
    )
    .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.code(), "forbidden");
    let r = send(
        f.http
            .post(f.server.url(&format!("{ENV}/restore")))
            .body(body),
    )
    .await;
    assert_eq!(r.status, 401, "{r:?}");

    // Unknown version: beyond the latest, and in a gap (v2 deleted).
    let r = f.restore(json!({"source": {"version": 7}})).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.code(), "not_found");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("the latest is v3"), "{message}");
    std::fs::remove_file(
        f.store_root()
            .join(jetvault_core::layout::snapshot_key(&env_ref(), 2)),
    )
    .unwrap();
    let r = f.restore(json!({"source": {"version": 2}})).await;
    assert_eq!(r.status, 404, "{r:?}");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("the nearest are v1 and v3"), "{message}");

    // Unknown label: the releases that exist are named.
    let r = send(
        f.post(&format!("{ENV}/release"))
            .body(json!({"version": 3, "label": "1.4.0"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = f.restore(json!({"source": {"release": "1.5.0"}})).await;
    assert_eq!(r.status, 404, "{r:?}");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("1.4.0"), "{message}");

    // A time before the first snapshot: the oldest is named.
    let r = f
        .restore(json!({"source": {"at": "2001-01-01T00:00:00Z"}}))
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        message.contains("the nearest is the oldest, v1"),
        "{message}"
    );

    // Malformed bodies.
    for bad in [
        json!({}),
        json!({"source": {"version": "two"}}),
        json!({"source": "yesterday"}),
        json!({"source": {"version": 2}, "force": true}),
        json!({"source": {"at": "last tuesday"}}),
    ] {
        let r = f.restore(bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {r:?}");
        assert_eq!(r.code(), "invalid_input");
    }
    let r = send(f.post(&format!("{ENV}/restore"))).await;
    assert_eq!(r.status, 400, "empty body: {r:?}");

    // An environment without a live target in the server's config.
    let r = send(
        f.post("/v1/apps/crm/envs/staging/restore")
            .body(json!({"source": "latest"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("is not in the config"), "{message}");

    assert_eq!(f.live_bytes(), before, "nothing above touched live");
    assert_eq!(f.versions().await, [3, 1]);
    assert_eq!(f.restores("rejected").await, 4);
    assert_eq!(f.restores("restored").await, 0);
}

#[tokio::test]
async fn a_bad_at_is_a_bad_field_not_bad_json() {
    let f = start();
    f.seed().await;
    let r = f.restore(json!({"source": {"at": "yesterday"}})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("invalid time \"yesterday\""), "{message}");
    assert!(!message.contains("not valid JSON"), "{message}");
    let r = f.restore(json!({"source": "+1"})).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(f.live_bytes(), corpus(SMALL).to_vec(), "nothing was pushed");
}

#[tokio::test]
async fn a_missing_live_configuration_needs_allow_missing_live() {
    let f = start();
    f.seed().await;
    std::fs::remove_file(&f.live).unwrap();

    let r = f
        .restore(json!({"source": {"version": 3}, "dry_run": true}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["live"]["state"], "missing");
    assert_eq!(r.json()["changes"], Value::Null);

    let r = f.restore(json!({"source": {"version": 3}})).await;
    assert_eq!(r.status, 412, "{r:?}");
    assert_eq!(r.code(), "precondition_failed");
    let message = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("missing"), "{message}");
    assert!(!f.live.exists(), "nothing was pushed");

    let r = f
        .restore(json!({"source": {"version": 3}, "allow_missing_live": true}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["pre_restore"]["kind"], "impossible");
    assert_eq!(r.json()["undo"], json!([]));
    assert_eq!(f.live_bytes(), corpus(OTHER).to_vec());
    assert_eq!(f.versions().await, [3, 2, 1]);
}

#[tokio::test]
async fn the_openapi_document_describes_the_route() {
    let f = start();
    let r = send(f.http.get(f.server.url("/openapi.json"))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let doc = r.json();
    let op = &doc["paths"]["/v1/apps/{app}/envs/{env}/restore"]["post"];
    assert!(op.is_object(), "no restore route in {doc}");
    assert_eq!(op["tags"], json!(["restore"]));
    for status in ["200", "400", "404", "412", "500", "503"] {
        assert!(op["responses"][status].is_object(), "no {status} in {op}");
    }
    let schemas = &doc["components"]["schemas"];
    for name in [
        "RestoreBody",
        "RestoreSource",
        "RestoreResponse",
        "RestorePlan",
        "RestoreReport",
        "PreRestore",
        "LiveState",
    ] {
        assert!(schemas[name].is_object(), "no schema {name}");
    }
    // The plan's raw bytes and rendered diff are not part of the API.
    let plan = &schemas["RestorePlan"]["properties"];
    assert!(plan["changes"].is_object(), "{plan}");
    assert!(
        plan.get("raw").is_none() && plan.get("diff").is_none(),
        "{plan}"
    );
}
