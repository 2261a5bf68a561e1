//! The HTTP API of the real binary (`jetvault serve`), driven with reqwest against a
//! local directory store: every route, each bad input and conflict, 304s, zstd
//! passthrough, auth, the pointer cache seeing a release made by the CLI, and the
//! operations routes.
//!
//! On LocalStack (the harness): two replicas on one bucket serving each other's
//! releases and the CLI's, and what an idle service costs in S3 requests, counted by a
//! proxy between the service and LocalStack.

use std::time::{Duration, Instant};

use crate::harness::proxy::{self, Exchange, Proxy};
use crate::harness::serve;
use crate::harness::serve::{
    LARGE, MEDIUM, OP, OTHER, RD, SMALL, Server, client, config, eventually, send,
};
use crate::harness::{Backend, TestBucket};
use crate::harness::{StoreSpec, corpus};
use jetvault_core::EnvRef;
use serde_json::{Value, json};

const ENV: &str = "/v1/apps/crm/envs/production";

struct Fixture {
    _dir: tempfile::TempDir,
    store: StoreSpec,
    server: Server,
    http: reqwest::Client,
}

/// A server on a fresh local store, with `crm/production` configured (live file
/// `live.json` in the temp dir, holding `SMALL`).
fn start(server_extra: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    start_on(dir, store, server_extra)
}

fn start_on(dir: tempfile::TempDir, store: StoreSpec, server_extra: &str) -> Fixture {
    let live = dir.path().join("live.json");
    std::fs::write(&live, corpus(SMALL)).unwrap();
    let apps = format!(
        "[apps.crm.envs.production.live]\nkind = \"file\"\npath = {:?}\n",
        live.display().to_string()
    );
    let server = Server::start(dir.path(), &config(&store, server_extra, &apps));
    Fixture {
        _dir: dir,
        store,
        server,
        http: client(),
    }
}

impl Fixture {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.server.url(path)).bearer_auth(RD)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(self.server.url(path)).bearer_auth(OP)
    }

    async fn upload(&self, env: &str, name: &str) -> Value {
        let r = send(self.post(&format!("{env}/snapshots")).body(corpus(name))).await;
        assert!(r.status == 201 || r.status == 200, "{r:?}");
        r.json()
    }

    async fn release(&self, body: Value) -> serve::Reply {
        send(self.post(&format!("{ENV}/release")).body(body.to_string())).await
    }
}

fn env_ref() -> EnvRef {
    EnvRef::parse("crm", "production").unwrap()
}

#[tokio::test]
async fn reads_writes_and_negotiation() {
    let f = start("");
    scenario_reads_writes_and_negotiation(&f).await;
}

async fn scenario_reads_writes_and_negotiation(f: &Fixture) {
    // Backup from the live target, then an unchanged one.
    let r = send(f.post(&format!("{ENV}/backup"))).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["outcome"], "created");
    assert_eq!(r.json()["trigger"], "api");
    assert_eq!(
        r.header("location").as_deref(),
        Some("/v1/apps/crm/envs/production/snapshots/1")
    );
    let r = send(
        f.post(&format!("{ENV}/backup"))
            .body(json!({"message": "again"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["outcome"], "unchanged");

    // Upload two more versions.
    let v2 = f.upload(ENV, MEDIUM).await;
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["trigger"], "upload");
    let r = send(
        f.post(&format!("{ENV}/snapshots?message=big%20one"))
            .body(corpus(LARGE)),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["message"], "big one");

    // History, paged.
    let page = send(f.get(&format!("{ENV}/snapshots?limit=2")))
        .await
        .json();
    let versions: Vec<u64> = page["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2]);
    assert_eq!(page["next_before"], 2);
    let page = send(f.get(&format!("{ENV}/snapshots?limit=2&before=2")))
        .await
        .json();
    assert_eq!(page["snapshots"][0]["version"], 1);
    assert!(page["next_before"].is_null());

    // One snapshot: metadata and content, raw and zstd, 304.
    let meta = send(f.get(&format!("{ENV}/snapshots/2"))).await;
    assert_eq!(meta.status, 200);
    let sha = meta.json()["sha256"].as_str().unwrap().to_string();
    let raw = send(f.get(&format!("{ENV}/snapshots/2/config"))).await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body, corpus(MEDIUM));
    assert_eq!(raw.header("etag"), Some(format!("\"{sha}\"")));
    assert_eq!(raw.header("content-encoding"), None);
    let vault = f.store.vault().await;
    let (_, stored) = vault.get_stored(&env_ref(), 2).await.unwrap();
    let z = send(
        f.get(&format!("{ENV}/snapshots/v2/config"))
            .header("accept-encoding", "gzip, zstd"),
    )
    .await;
    assert_eq!(z.header("content-encoding").as_deref(), Some("zstd"));
    assert_eq!(
        z.body, stored,
        "zstd passthrough must send the stored object"
    );
    let nm = send(
        f.get(&format!("{ENV}/snapshots/2/config"))
            .header("if-none-match", format!("\"{sha}\"")),
    )
    .await;
    assert_eq!(nm.status, 304);
    assert!(nm.body.is_empty());
    let latest = send(f.get(&format!("{ENV}/snapshots/latest"))).await.json();
    assert_eq!(latest["version"], 3);

    // Diff: JSON Patch by default, changes on request.
    let d = send(f.get(&format!("{ENV}/diff?a=1&b=2"))).await;
    assert_eq!(d.status, 200);
    assert_eq!(
        d.header("content-type").as_deref(),
        Some("application/json-patch+json")
    );
    let mut doc: Value = serde_json::from_slice(&corpus(SMALL)).unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&d.body).unwrap();
    json_patch::patch(&mut doc, &patch).unwrap();
    assert_eq!(
        doc,
        serde_json::from_slice::<Value>(&corpus(MEDIUM)).unwrap()
    );
    let c = send(f.get(&format!("{ENV}/diff?b=3&format=changes")))
        .await
        .json();
    assert_eq!((c["a"].as_u64(), c["b"].as_u64()), (Some(2), Some(3)));
    assert!(!c["changes"].as_array().unwrap().is_empty());

    // Release, pointer and released configuration with 304s and zstd.
    let r = f
        .release(json!({"version": 2, "label": "1.0.0", "notes": "first"}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let etag = r.header("etag").unwrap();
    let p = send(f.get(&format!("{ENV}/release"))).await;
    assert_eq!(p.status, 200);
    assert_eq!(p.header("etag").as_deref(), Some(etag.as_str()));
    assert_eq!(p.json()["label"], "1.0.0");
    assert_eq!(p.json()["version"], 2);
    let nm = send(
        f.get(&format!("{ENV}/release"))
            .header("if-none-match", &etag),
    )
    .await;
    assert_eq!(nm.status, 304);
    let cfg = send(f.get(&format!("{ENV}/release/config"))).await;
    assert_eq!(cfg.status, 200);
    assert_eq!(cfg.body, corpus(MEDIUM));
    assert_eq!(cfg.header("etag"), Some(format!("\"{sha}\"")));
    assert_eq!(cfg.header("vary").as_deref(), Some("Accept-Encoding"));
    assert_eq!(
        cfg.header("content-type").as_deref(),
        Some("application/json")
    );
    let z = send(
        f.get(&format!("{ENV}/release/config"))
            .header("accept-encoding", "zstd"),
    )
    .await;
    assert_eq!(z.header("content-encoding").as_deref(), Some("zstd"));
    assert_eq!(z.body, stored);
    assert_eq!(zstd::decode_all(&z.body[..]).unwrap(), corpus(MEDIUM));
    for enc in ["identity", "zstd"] {
        let nm = send(
            f.get(&format!("{ENV}/release/config"))
                .header("accept-encoding", enc)
                .header("if-none-match", format!("\"{sha}\"")),
        )
        .await;
        assert_eq!(nm.status, 304, "{enc}");
    }

    // Release another, roll back, history.
    let r = f.release(json!({"version": "latest"})).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["version"], 3);
    let r = send(f.post(&format!("{ENV}/rollback"))).await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["kind"], "rollback");
    assert_eq!(r.json()["version"], 2);
    let p = send(f.get(&format!("{ENV}/release"))).await.json();
    assert_eq!(
        p["version"], 2,
        "the rollback is served at once by this replica"
    );
    let h = send(f.get(&format!("{ENV}/releases"))).await.json();
    let kinds: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rollback", "release", "release"]);

    // Promote into staging, released.
    let r = send(f.post("/v1/apps/crm/promote").body(
        json!({"from": "production", "to": "staging", "release": true, "label": "s1"}).to_string(),
    ))
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let s = send(f.get("/v1/apps/crm/envs/staging/release"))
        .await
        .json();
    assert_eq!(s["label"], "s1");
    let cfg = send(f.get("/v1/apps/crm/envs/staging/release/config")).await;
    assert_eq!(cfg.body, corpus(MEDIUM));

    // Events, newest first.
    let ev = send(f.get(&format!("{ENV}/events?limit=100"))).await.json();
    let actions: Vec<&str> = ev
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"backup") && actions.contains(&"rollback"),
        "{actions:?}"
    );
    assert_eq!(ev[0]["actor"]["via"], "api");
    assert_eq!(ev[0]["actor"]["who"], "token:ci");
}

#[tokio::test]
async fn malformed_json_body_is_400() {
    let f = start("");
    f.upload(ENV, SMALL).await;
    for (path, body) in [
        (format!("{ENV}/release"), "{\"version\": "),
        (format!("{ENV}/release"), "{\"version\": 1, \"colour\": 1}"),
        (format!("{ENV}/release"), ""),
        (format!("{ENV}/backup"), "{force: true}"),
        (format!("{ENV}/rollback"), "[1"),
        ("/v1/apps/crm/promote".to_string(), "{\"from\": 1}"),
    ] {
        let r = send(f.post(&path).body(body)).await;
        assert_eq!(r.status, 400, "{path} {body}: {r:?}");
        assert_eq!(r.code(), "invalid_input");
        assert!(r.json()["error"]["message"].as_str().unwrap().len() > 10);
    }
    let r = send(f.get(&format!("{ENV}/snapshots?limit=lots"))).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(
        send(f.get(&format!("{ENV}/release"))).await.status == 404,
        "nothing was released"
    );
}

#[tokio::test]
async fn unknown_app_or_env_is_404() {
    let f = start("");
    for path in [
        "/v1/apps/nope/envs/production/release",
        "/v1/apps/crm/envs/nope/release",
        "/v1/apps/crm/envs/nope/release/config",
        "/v1/apps/crm/envs/nope/snapshots",
        "/v1/apps/crm/envs/nope/snapshots/1",
        "/v1/apps/crm/envs/nope/snapshots/latest/config",
        "/v1/apps/crm/envs/nope/releases",
        "/v1/apps/crm/envs/nope/events",
        "/v1/apps/crm/envs/nope/diff",
    ] {
        let r = send(f.get(path)).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert_eq!(r.code(), "not_found");
    }
    let r = send(f.post("/v1/apps/crm/envs/nope/backup")).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not in the config")
    );
    let r = send(f.post("/v1/apps/crm/envs/nope/rollback")).await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = send(f.http.get(f.server.url("/v2/whatever")).bearer_auth(RD)).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");
}

#[tokio::test]
async fn invalid_id_is_400() {
    let f = start("");
    for path in [
        "/v1/apps/CRM/envs/production/release",
        "/v1/apps/crm/envs/a..b/release",
        "/v1/apps/crm/envs/-x/snapshots",
        "/v1/apps/crm/envs/production/snapshots/abc",
        "/v1/apps/crm/envs/production/snapshots/0/config",
        "/v1/apps/crm/envs/production/diff?a=x",
        "/v1/apps/cr%20m/envs/production/release",
    ] {
        let r = send(f.get(path)).await;
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert_eq!(r.code(), "invalid_input");
    }
    let r = send(
        f.post("/v1/apps/Crm/envs/production/snapshots")
            .body(corpus(SMALL)),
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = send(
        f.post("/v1/apps/crm/promote")
            .body(json!({"from": "production", "to": "../etc"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = f.release(json!({"version": 1, "label": "a/b"})).await;
    assert_eq!(r.status, 400, "{r:?}");
    let vault = f.store.vault().await;
    assert!(vault.latest(&env_ref()).await.unwrap().is_none());
}

#[tokio::test]
async fn body_over_limit_is_413_and_writes_nothing() {
    let f = start("max_body_size = \"4KiB\"");
    assert!(corpus(MEDIUM).len() > 4096);
    let r = send(f.post(&format!("{ENV}/snapshots")).body(corpus(MEDIUM))).await;
    assert_eq!(r.status, 413, "{r:?}");
    assert_eq!(r.code(), "too_large");
    let vault = f.store.vault().await;
    assert!(vault.latest(&env_ref()).await.unwrap().is_none());
    // Under the limit it works.
    let small = br#"{"pages": [{"name": "Home"}]}"#;
    let r = send(f.post(&format!("{ENV}/snapshots")).body(&small[..])).await;
    assert_eq!(r.status, 201, "{r:?}");
}

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let f = start("");
    for req in [
        f.http.get(f.server.url(&format!("{ENV}/release"))),
        f.http
            .get(f.server.url(&format!("{ENV}/release")))
            .bearer_auth("nope"),
        f.http.get(f.server.url("/metrics")),
        f.http.post(f.server.url(&format!("{ENV}/backup"))),
        f.http
            .post(f.server.url(&format!("{ENV}/backup")))
            .header("authorization", format!("Basic {OP}")),
    ] {
        let r = send(req).await;
        assert_eq!(r.status, 401, "{r:?}");
        assert_eq!(r.code(), "unauthorized");
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
    assert!(
        !f.server.stderr().contains(OP) && !f.server.stderr().contains(RD),
        "tokens must never be logged"
    );
}

#[tokio::test]
async fn read_token_on_operate_route_is_403() {
    let f = start("");
    f.upload(ENV, SMALL).await;
    for req in [
        f.http.post(f.server.url(&format!("{ENV}/backup"))),
        f.http
            .post(f.server.url(&format!("{ENV}/snapshots")))
            .body(corpus(SMALL)),
        f.http
            .post(f.server.url(&format!("{ENV}/release")))
            .body(json!({"version": 1}).to_string()),
        f.http.post(f.server.url(&format!("{ENV}/rollback"))),
        f.http
            .post(f.server.url("/v1/apps/crm/promote"))
            .body(json!({"from": "production", "to": "staging"}).to_string()),
    ] {
        let r = send(req.bearer_auth(RD)).await;
        assert_eq!(r.status, 403, "{r:?}");
        assert_eq!(r.code(), "forbidden");
    }
    // The read token reads.
    assert_eq!(send(f.get(&format!("{ENV}/snapshots"))).await.status, 200);
}

#[tokio::test]
async fn public_reads_need_no_token_but_writes_do() {
    let f = start("public_reads = true");
    f.upload(ENV, SMALL).await;
    let r = send(f.http.get(f.server.url(&format!("{ENV}/snapshots")))).await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = send(f.http.post(f.server.url(&format!("{ENV}/backup")))).await;
    assert_eq!(r.status, 401, "{r:?}");
}

#[tokio::test]
async fn reused_label_is_409() {
    let f = start("");
    f.upload(ENV, SMALL).await;
    f.upload(ENV, MEDIUM).await;
    assert_eq!(
        f.release(json!({"version": 1, "label": "1.0.0"}))
            .await
            .status,
        201
    );
    assert_eq!(
        f.release(json!({"version": 2, "label": "1.1.0"}))
            .await
            .status,
        201
    );
    for label in ["1.0.0", "1.1.0"] {
        let r = f.release(json!({"version": 2, "label": label})).await;
        assert_eq!(r.status, 409, "{label}: {r:?}");
        assert_eq!(r.code(), "already_exists");
    }
    let p = send(f.get(&format!("{ENV}/release"))).await.json();
    assert_eq!(p["label"], "1.1.0", "a refused release changes nothing");
}

#[tokio::test]
async fn stale_if_match_is_412() {
    let f = start("");
    f.upload(ENV, SMALL).await;
    f.upload(ENV, MEDIUM).await;
    let first = f.release(json!({"version": 1})).await;
    let etag1 = first.header("etag").unwrap();
    let second = send(
        f.post(&format!("{ENV}/release"))
            .header("if-match", &etag1)
            .body(json!({"version": 2}).to_string()),
    )
    .await;
    assert_eq!(second.status, 201, "{second:?}");
    for (path, body) in [
        ("release", json!({"version": 1}).to_string()),
        ("rollback", String::new()),
    ] {
        let r = send(
            f.post(&format!("{ENV}/{path}"))
                .header("if-match", &etag1)
                .body(body),
        )
        .await;
        assert_eq!(r.status, 412, "{path}: {r:?}");
        assert_eq!(r.code(), "precondition_failed");
    }
    let p = send(f.get(&format!("{ENV}/release"))).await;
    assert_eq!(p.header("etag"), second.header("etag"));
    assert_eq!(p.json()["version"], 2);
}

#[tokio::test]
async fn ten_concurrent_releases_with_one_if_match_one_wins() {
    let f = start("");
    f.upload(ENV, SMALL).await;
    f.upload(ENV, MEDIUM).await;
    let etag = f
        .release(json!({"version": 1}))
        .await
        .header("etag")
        .unwrap();
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let req = f
                .post(&format!("{ENV}/release"))
                .header("if-match", &etag)
                .body(json!({"version": 2, "label": format!("race-{i}")}).to_string());
            tokio::spawn(send(req))
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().status);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 412, 412, 412, 412, 412, 412, 412, 412, 412]);
    let h = send(f.get(&format!("{ENV}/releases"))).await.json();
    let seqs: Vec<u64> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [2, 1]);
}

#[tokio::test]
async fn uploaded_non_json_is_400_and_writes_nothing() {
    let f = start("");
    for body in [&b"not json"[..], b"{\"a\": 1", b"", b"\xff\xfe"] {
        let r = send(f.post(&format!("{ENV}/snapshots")).body(body.to_vec())).await;
        assert_eq!(r.status, 400, "{body:?}: {r:?}");
        assert_eq!(r.code(), "invalid_input");
    }
    let vault = f.store.vault().await;
    assert!(vault.latest(&env_ref()).await.unwrap().is_none());
    assert!(vault.events(&env_ref(), 10).await.unwrap().is_empty());
    let r = send(f.get(&format!("{ENV}/snapshots"))).await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn release_made_by_the_cli_is_served_within_the_ttl() {
    let f = start("");
    scenario_release_by_another_writer(&f).await;
}

async fn scenario_release_by_another_writer(f: &Fixture) {
    f.upload(ENV, SMALL).await;
    f.upload(ENV, OTHER).await;
    assert_eq!(f.release(json!({"version": 1})).await.status, 201);
    // Read (and cache) the pointer and configuration.
    let p = send(f.get(&format!("{ENV}/release"))).await;
    assert_eq!(p.json()["version"], 1);
    assert_eq!(
        send(f.get(&format!("{ENV}/release/config"))).await.body,
        corpus(SMALL)
    );

    let out = f
        .server
        .cli()
        .args(["release", "crm", "production", "2", "--label", "from-cli"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let label = eventually(
        "the CLI's release to be served",
        Duration::from_secs(15),
        || async {
            let p = send(f.get(&format!("{ENV}/release"))).await.json();
            (p["version"] == 2).then(|| p["label"].clone())
        },
    )
    .await;
    assert_eq!(label, "from-cli");
    let cfg = send(f.get(&format!("{ENV}/release/config"))).await;
    assert_eq!(cfg.body, corpus(OTHER));
}

#[tokio::test]
async fn operations_routes() {
    let f = start("");
    let r = send(f.http.get(f.server.url("/healthz"))).await;
    assert_eq!((r.status, r.json()["status"].as_str()), (200, Some("ok")));
    let r = send(f.http.get(f.server.url("/readyz"))).await;
    assert_eq!(
        (r.status, r.json()["status"].as_str()),
        (200, Some("ready"))
    );

    f.upload(ENV, SMALL).await;
    assert_eq!(f.release(json!({"version": 1})).await.status, 201);
    for _ in 0..3 {
        assert_eq!(send(f.get(&format!("{ENV}/release"))).await.status, 200);
    }
    send(f.get("/v1/apps/crm/envs/nope/release")).await;
    let m = send(f.get("/metrics")).await;
    assert_eq!(m.status, 200);
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    for want in [
        "jetvault_http_requests_total{route=\"/v1/apps/{app}/envs/{env}/release\",method=\"GET\",status=\"200\"} 3",
        "jetvault_http_requests_total{route=\"/v1/apps/{app}/envs/{env}/release\",method=\"GET\",status=\"404\"} 1",
        "jetvault_http_requests_total{route=\"/v1/apps/{app}/envs/{env}/release\",method=\"POST\",status=\"201\"} 1",
        "jetvault_backups_total{app=\"crm\",env=\"production\",trigger=\"upload\",result=\"created\"} 1",
        "jetvault_backup_duration_seconds_count 1",
        "jetvault_backup_last_success_timestamp_seconds{app=\"crm\",env=\"production\"}",
        "jetvault_snapshot_size_bytes{app=\"crm\",env=\"production\",encoding=\"raw\"}",
        "jetvault_releases_total{app=\"crm\",env=\"production\",action=\"release\"} 1",
    ] {
        assert!(text.contains(want), "missing {want} in\n{text}");
    }

    let doc = send(f.http.get(f.server.url("/openapi.json"))).await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/apps/{app}/envs/{env}/release", "get"),
        ("/v1/apps/{app}/envs/{env}/release", "post"),
        ("/v1/apps/{app}/envs/{env}/release/config", "get"),
        ("/v1/apps/{app}/envs/{env}/releases", "get"),
        ("/v1/apps/{app}/envs/{env}/rollback", "post"),
        ("/v1/apps/{app}/promote", "post"),
        ("/v1/apps/{app}/envs/{env}/snapshots", "get"),
        ("/v1/apps/{app}/envs/{env}/snapshots", "post"),
        ("/v1/apps/{app}/envs/{env}/snapshots/{version}", "get"),
        (
            "/v1/apps/{app}/envs/{env}/snapshots/{version}/config",
            "get",
        ),
        ("/v1/apps/{app}/envs/{env}/diff", "get"),
        ("/v1/apps/{app}/envs/{env}/events", "get"),
        ("/v1/apps/{app}/envs/{env}/backup", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/openapi.json", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for s in [
        "Release",
        "SnapshotMeta",
        "ErrorBody",
        "BackupOutcome",
        "Event",
    ] {
        assert!(schemas.contains_key(s), "schema {s} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn no_tokens_is_refused_off_loopback_and_open_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let cfg = format!("{}[server]\npointer_ttl = \"1s\"\n", store.toml());
    let path = dir.path().join("open.toml");
    std::fs::write(&path, &cfg).unwrap();
    // Refused before binding: nothing listens on 0.0.0.0.
    let out = serve::with_config(&path)
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.tokens") && err.contains("loopback"),
        "{err}"
    );

    // On loopback everything is allowed, with a loud warning.
    let server = Server::start(dir.path(), &cfg);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = send(
            client()
                .post(server.url(&format!("{ENV}/snapshots")))
                .body(corpus(SMALL)),
        )
        .await;
        assert_eq!(r.status, 201, "{r:?}");
    });
    assert!(server.stderr().contains("NO TOKENS CONFIGURED"));
}

/// A fresh LocalStack bucket as a store (keys under `jetvault/`), reached at `endpoint`
/// (LocalStack's own, or a proxy in front of it).
fn localstack_store(bucket: &TestBucket, endpoint: &str) -> StoreSpec {
    bucket.spec_via("jetvault", endpoint)
}

/// Polls `f`'s release pointer until it has `label`; fails after 3 s (a replica must
/// serve a release made elsewhere within its 1 s `pointer_ttl`). Returns the reply and
/// how long it took.
async fn served(f: &Fixture, label: &str, since: Instant) -> (serve::Reply, Duration) {
    let reply = eventually(
        &format!("{} to serve release {label}", f.server.base),
        Duration::from_secs(3),
        || async {
            let r = send(f.get(&format!("{ENV}/release"))).await;
            assert_eq!(r.status, 200, "{r:?}");
            (r.json()["label"] == label).then_some(r)
        },
    )
    .await;
    (reply, since.elapsed())
}

/// Issue 3's "done when": two `serve` processes on one LocalStack bucket. A release
/// published through one replica is served by the other (pointer and configuration)
/// once the other's cached pointer is older than `pointer_ttl` (1 s), and so is a
/// release made with the CLI against the bucket, by both.
#[tokio::test]
async fn two_replicas_on_localstack_serve_each_others_releases() {
    let Some(bucket) = TestBucket::new(Backend::LocalStack, "replicas").await else {
        return;
    };
    let store = localstack_store(&bucket, &bucket.endpoint);
    let a = start_on(tempfile::tempdir().unwrap(), store.clone(), "");
    let b = start_on(tempfile::tempdir().unwrap(), store, "");

    assert_eq!(a.upload(ENV, SMALL).await["version"], 1);
    assert_eq!(a.upload(ENV, OTHER).await["version"], 2);
    let r1 = a.release(json!({"version": 1, "label": "1.0.0"})).await;
    assert_eq!(r1.status, 201, "{r1:?}");
    // B reads release 1 and caches it (and its configuration).
    let p = send(b.get(&format!("{ENV}/release"))).await;
    assert_eq!((p.status, p.json()["label"].clone()), (200, json!("1.0.0")));
    assert_eq!(p.header("etag"), r1.header("etag"));
    let c1 = send(b.get(&format!("{ENV}/release/config"))).await;
    assert_eq!(c1.body, corpus(SMALL));

    // Published through A, with the etag B served.
    let r2 = send(
        a.post(&format!("{ENV}/release"))
            .header("if-match", p.header("etag").unwrap())
            .body(json!({"version": 2, "label": "2.0.0"}).to_string()),
    )
    .await;
    assert_eq!(r2.status, 201, "{r2:?}");
    let (p, took) = served(&b, "2.0.0", Instant::now()).await;
    eprintln!("replica B served the release published through A after {took:?}");
    assert_eq!(p.json()["version"], 2);
    assert_eq!(p.header("etag"), r2.header("etag"));
    let c2 = send(b.get(&format!("{ENV}/release/config"))).await;
    assert_eq!(c2.status, 200, "{c2:?}");
    assert_eq!(c2.body, corpus(OTHER), "B serves the new configuration");
    assert_ne!(c2.header("etag"), c1.header("etag"));
    let from_a = send(a.get(&format!("{ENV}/release/config"))).await;
    assert_eq!(c2.header("etag"), from_a.header("etag"));

    // A release made with the CLI against the bucket: both replicas serve it.
    let out = b
        .server
        .cli()
        .args(["release", "crm", "production", "1", "--label", "3.0.0-cli"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let released = Instant::now();
    for (name, f) in [("A", &a), ("B", &b)] {
        let (p, took) = served(f, "3.0.0-cli", released).await;
        eprintln!("replica {name} served the CLI's release after {took:?}");
        assert_eq!(p.json()["version"], 1);
        assert_eq!(p.json()["released_by"], "cli@jetvault");
        let c = send(f.get(&format!("{ENV}/release/config"))).await;
        assert_eq!(c.body, corpus(SMALL), "replica {name}");
        assert_eq!(c.header("etag"), c1.header("etag"), "replica {name}");
    }
    let h = send(a.get(&format!("{ENV}/releases"))).await.json();
    let labels: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["3.0.0-cli", "2.0.0", "1.0.0"]);
}

/// DESIGN.md's "S3 requests cost money": an idle service makes no S3 requests (no
/// schedule here), and a served pointer is revalidated lazily, only when it is read and
/// older than `pointer_ttl`, with one conditional GET answered 304. Every request the
/// service makes goes through a proxy that logs it.
#[tokio::test]
async fn idle_service_on_localstack_costs_no_s3_requests() {
    let Some(bucket) = TestBucket::new(Backend::LocalStack, "idle").await else {
        return;
    };
    // The release is made directly (not through the proxy).
    let direct = localstack_store(&bucket, &bucket.endpoint);
    let vault = direct.vault().await;
    let env = env_ref();
    vault
        .backup(
            &env,
            jetvault_core::BackupRequest::new(corpus(MEDIUM), jetvault_core::Trigger::Manual),
        )
        .await
        .unwrap();
    let released = vault
        .release(
            &env,
            jetvault_core::ReleaseRequest::new(1, jetvault_core::events::Actor::default()),
        )
        .await
        .unwrap();

    let s3 = Proxy::start(&bucket.endpoint);
    // A ttl well above the time a handful of loopback reads take, and below the idle
    // wait, so that which reads are fresh does not depend on the machine's speed.
    let ttl = Duration::from_secs(2);
    let f = start_on(
        tempfile::tempdir().unwrap(),
        localstack_store(&bucket, &s3.endpoint),
        "pointer_ttl = \"2s\"",
    );
    let started = s3.count();
    assert!(
        started > 0,
        "the proxy saw none of the start-up's requests (is the service using it?)"
    );
    let pointer_key = format!(
        "/{}/jetvault/{}",
        bucket.name,
        jetvault_core::layout::release_pointer_key(&env)
    );
    let only = |made: &[Exchange], what: &str, check: &dyn Fn(&Exchange) -> bool| {
        assert!(
            made.len() == 1 && check(&made[0]),
            "{what}: expected exactly one such S3 request, the service made:\n{}",
            proxy::render(made)
        );
    };
    let none = |made: &[Exchange], what: &str| {
        assert!(
            made.is_empty(),
            "{what}: expected no S3 request, the service made:\n{}",
            proxy::render(made)
        );
    };

    // First read: one GET of the pointer.
    let n = s3.count();
    let first_read = Instant::now();
    let p = send(f.get(&format!("{ENV}/release"))).await;
    assert_eq!(p.status, 200, "{p:?}");
    assert_eq!(p.json()["seq"], released.release.seq);
    let etag = p.header("etag").unwrap();
    only(&s3.since(n), "the first read of the pointer", &|e| {
        e.method == "GET" && e.path() == pointer_key && e.if_none_match.is_none() && e.status == 200
    });
    // First read of the configuration: one GET of the snapshot.
    let n = s3.count();
    let c = send(f.get(&format!("{ENV}/release/config"))).await;
    assert_eq!(c.body, corpus(MEDIUM));
    let made = s3.since(n);
    only(&made, "the first read of the configuration", &|e| {
        e.method == "GET" && e.path().contains("/snapshots/") && e.status == 200
    });

    // Within the ttl: served from memory, whatever the route or the client's etag.
    let n = s3.count();
    for _ in 0..5 {
        assert_eq!(send(f.get(&format!("{ENV}/release"))).await.status, 200);
        assert_eq!(
            send(f.get(&format!("{ENV}/release/config"))).await.status,
            200
        );
        let r = send(
            f.get(&format!("{ENV}/release"))
                .header("if-none-match", &etag),
        )
        .await;
        assert_eq!(r.status, 304);
    }
    let fresh_reads = first_read.elapsed();
    assert!(
        fresh_reads < ttl,
        "the reads meant to be within the {ttl:?} ttl took {fresh_reads:?}; the machine is \
         too slow for this test's timing"
    );
    none(&s3.since(n), "reads within the pointer ttl");

    // Idle for 3 s (longer than the ttl): nothing at all.
    let n = s3.count();
    tokio::time::sleep(Duration::from_secs(3)).await;
    none(&s3.since(n), "an idle service, 3 s");

    // A stale read: one conditional GET of the pointer, answered 304; the configuration
    // is still the one in memory.
    let n = s3.count();
    let p = send(f.get(&format!("{ENV}/release"))).await;
    assert_eq!(p.status, 200, "{p:?}");
    assert_eq!(p.header("etag").as_deref(), Some(etag.as_str()));
    let c = send(f.get(&format!("{ENV}/release/config"))).await;
    assert_eq!(c.body, corpus(MEDIUM));
    only(&s3.since(n), "a read of a stale pointer", &|e| {
        e.method == "GET" && e.path() == pointer_key && e.if_none_match.is_some() && e.status == 304
    });
    eprintln!(
        "S3 requests: {started} at start-up, then {} for everything above:\n{}",
        s3.count() - started,
        proxy::render(&s3.since(started))
    );
}
