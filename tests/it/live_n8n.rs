//! A live target that answers like n8n's public API: only an `X-N8N-API-KEY` header
//! opens it; `GET /api/v1/workflows/ID` gives the workflow; `PUT` refuses additional
//! properties with a 400; a deleted workflow answers 404. The key comes from a file
//! (`secret_headers`), is read at each request (rotation needs no restart), and never
//! appears in any output; each answer of the platform has its exit code and HTTP status.
//! `POST /api/v1/workflows` creates a workflow with a new id, refusing extra fields as
//! PUT does: restore creates a deleted workflow anew there (`[...live.create]`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

use jetvault_core::config::Config;
use jetvault_core::error::ErrorKind;
use jetvault_core::{BackupRequest, EnvRef, Trigger};

use crate::harness::StoreSpec;
use crate::harness::cli::Jv;
use crate::harness::serve::{self as srv, Server};

pub(crate) const KEY_ONE: &str = "N8nKey-planted-one-6b1f";
pub(crate) const KEY_TWO: &str = "N8nKey-planted-two-0c9e";
/// What n8n's PUT takes; GET gives these and read-only fields besides.
const WRITABLE: [&str; 5] = ["name", "nodes", "connections", "settings", "staticData"];

#[derive(Clone)]
pub(crate) struct N8n {
    pub(crate) inner: Arc<Mutex<Inner>>,
}

pub(crate) struct Inner {
    /// The one key accepted.
    pub(crate) key: String,
    pub(crate) workflow: Value,
    pub(crate) deleted: bool,
    /// PUT answers 409 (someone else saved meanwhile).
    conflict: bool,
    saves: u32,
    /// Workflows created by POST, by their new id.
    pub(crate) created: BTreeMap<String, Value>,
}

impl Inner {
    fn find(&mut self, id: &str) -> Option<&mut Value> {
        if id == "wf1" && !self.deleted {
            Some(&mut self.workflow)
        } else {
            self.created.get_mut(id)
        }
    }
}

impl N8n {
    pub(crate) fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                key: KEY_ONE.into(),
                workflow: json!({
                    "id": "wf1",
                    "name": "Webhook",
                    "active": false,
                    "nodes": [{"id": "n1", "name": "Webhook", "type": "n8n-nodes-base.webhook"}],
                    "connections": {},
                    "settings": {"executionOrder": "v1"},
                    "staticData": null,
                    "createdAt": "2026-01-01T00:00:00.000Z",
                    "updatedAt": "2026-01-01T00:00:00.000Z",
                }),
                deleted: false,
                conflict: false,
                saves: 0,
                created: BTreeMap::new(),
            })),
        }
    }

    pub(crate) fn set(&self, f: impl FnOnce(&mut Inner)) {
        f(&mut self.inner.lock().unwrap());
    }

    pub(crate) async fn serve(&self) -> String {
        let app = Router::new()
            .route("/api/v1/workflows/{id}", get(get_wf).put(put_wf))
            .route("/api/v1/workflows", post(create_wf))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }
}

fn answer(status: StatusCode, body: Value) -> (StatusCode, String) {
    (status, body.to_string())
}

/// The refusal for a request without the current key.
fn unauthorized(s: &Inner, headers: &HeaderMap) -> Option<(StatusCode, String)> {
    let key = headers.get("x-n8n-api-key").and_then(|v| v.to_str().ok());
    (key != Some(s.key.as_str())).then(|| {
        answer(
            StatusCode::UNAUTHORIZED,
            json!({"message": format!("'X-N8N-API-KEY' header required; got {key:?}")}),
        )
    })
}

/// The refusal for a request without the current key or for a workflow that is not there.
fn refusal(s: &mut Inner, headers: &HeaderMap, id: &str) -> Option<(StatusCode, String)> {
    if let Some(no) = unauthorized(s, headers) {
        return Some(no);
    }
    if s.find(id).is_none() {
        return Some(answer(
            StatusCode::NOT_FOUND,
            json!({"message": "Not Found"}),
        ));
    }
    None
}

async fn get_wf(
    State(n): State<N8n>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let mut s = n.inner.lock().unwrap();
    if let Some(no) = refusal(&mut s, &headers, &id) {
        return no;
    }
    answer(StatusCode::OK, s.find(&id).unwrap().clone())
}

/// The body's fields if it is an object with only what n8n's PUT and POST take.
fn writable(body: &[u8]) -> Result<serde_json::Map<String, Value>, (StatusCode, String)> {
    let Ok(Value::Object(new)) = serde_json::from_slice::<Value>(body) else {
        return Err(answer(
            StatusCode::BAD_REQUEST,
            json!({"message": "request/body must be object"}),
        ));
    };
    if new.keys().any(|k| !WRITABLE.contains(&k.as_str())) {
        return Err(answer(
            StatusCode::BAD_REQUEST,
            json!({"message": "request/body must NOT have additional properties"}),
        ));
    }
    Ok(new)
}

/// `POST /api/v1/workflows`: a new workflow with a new id, as n8n creates one.
async fn create_wf(
    State(n): State<N8n>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let mut s = n.inner.lock().unwrap();
    if let Some(no) = unauthorized(&s, &headers) {
        return no;
    }
    let new = match writable(&body) {
        Ok(new) => new,
        Err(no) => return no,
    };
    if let Some(k) = ["name", "nodes", "connections", "settings"]
        .into_iter()
        .find(|k| !new.contains_key(*k))
    {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"message": format!("request/body must have required property '{k}'")}),
        );
    }
    let id = format!("Nw{}x7Qa", s.created.len() + 1);
    let mut wf = json!({
        "id": id,
        "active": false,
        "createdAt": "2026-01-03T00:00:00.000Z",
        "updatedAt": "2026-01-03T00:00:00.000Z",
    });
    for (k, v) in new {
        wf[k] = v;
    }
    s.created.insert(id, wf.clone());
    answer(StatusCode::OK, wf)
}

async fn put_wf(
    State(n): State<N8n>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let mut s = n.inner.lock().unwrap();
    if let Some(no) = refusal(&mut s, &headers, &id) {
        return no;
    }
    if s.conflict {
        return answer(
            StatusCode::CONFLICT,
            json!({"message": "Workflow was changed by someone else; reload it"}),
        );
    }
    let new = match writable(&body) {
        Ok(new) => new,
        Err(no) => return no,
    };
    s.saves += 1;
    let saved = json!(format!("2026-01-02T00:00:{:02}.000Z", s.saves));
    let wf = s.find(&id).unwrap();
    for (k, v) in new {
        wf[k] = v;
    }
    wf["updatedAt"] = saved;
    answer(StatusCode::OK, wf.clone())
}

fn live_toml(app_env: &str, base: &str, key_file: &Path) -> String {
    format!(
        "[apps.{app_env}.live]\nkind = \"http\"\nurl = \"{base}/api/v1/workflows/wf1\"\n\
         headers = {{ \"X-Tenant\" = \"acme\" }}\n\
         [apps.{app_env}.live.secret_headers]\n\"X-N8N-API-KEY\" = {{ file = {key_file:?} }}\n"
    )
}

/// Fails naming the key if `text` holds either.
pub(crate) fn assert_keyless(label: &str, text: &str) {
    for key in [KEY_ONE, KEY_TWO] {
        assert!(!text.contains(key), "{label} shows the API key:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_file_is_read_at_each_request() {
    let n8n = N8n::new();
    let base = n8n.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("n8n-key");
    std::fs::write(&key_file, format!("{KEY_ONE}\n")).unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let config = Config::parse(&live_toml("n8n.envs.production", &base, &key_file)).unwrap();
    let env = EnvRef::parse("n8n", "production").unwrap();
    let vault = store.vault().await;
    // One target for both backups, as a long-running process keeps it.
    let target = jetvault_core::live::open_configured(&config, &env)
        .await
        .unwrap();
    let backup = || {
        vault.backup_from_live(
            &env,
            target.as_ref(),
            BackupRequest::new(Vec::new(), Trigger::Schedule),
        )
    };
    backup().await.unwrap();

    // n8n's key is rotated; the file is not yet: refused, nothing read, key unnamed.
    n8n.set(|s| {
        s.key = KEY_TWO.into();
        s.workflow["name"] = json!("Webhook v2");
    });
    let e = backup().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let msg = e.report();
    assert!(
        msg.contains("401") && msg.contains("nothing was read"),
        "{msg}"
    );
    assert!(msg.contains("credentials"), "{msg}");
    assert_keyless("the refusal", &msg);
    assert!(
        msg.contains("<redacted>"),
        "the echoed key is scrubbed: {msg}"
    );

    // The file is rotated: the same target sends the new key.
    std::fs::write(&key_file, KEY_TWO).unwrap();
    let v2 = backup().await.unwrap();
    assert_keyless("the target's debug output", &format!("{target:?}"));
    assert_eq!(v2.snapshot().version, 2);
    assert_eq!(vault.list(&env, None, 10).await.unwrap().len(), 2);
}

/// Runs the binary off the runtime (the test server must keep answering).
pub(crate) async fn run(jv: &Jv, args: &[&str]) -> (i32, String) {
    let mut cmd = jv.command(args);
    let out: Output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_keyless(&format!("{args:?}"), &text);
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platforms_answers_have_their_own_exit_codes() {
    let n8n = N8n::new();
    let base = n8n.serve().await;
    let jv = Jv::new();
    let key_file = jv.path("n8n-key");
    std::fs::write(&key_file, KEY_ONE).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    jv.write_config(&live_toml("n8n.envs.production", &base, &key_file));

    let (code, out) = run(&jv, &["config", "check"]).await;
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&jv, &["backup", "n8n", "production"]).await;
    assert_eq!(code, 0, "{out}");
    n8n.set(|s| s.workflow["name"] = json!("Renamed"));
    let (code, out) = run(&jv, &["backup", "n8n", "production"]).await;
    assert_eq!(code, 0, "{out}");

    // Restore pushes v1 as GET gave it (id, createdAt, ...): n8n refuses it.
    let (code, out) = run(&jv, &["restore", "n8n", "production", "1", "--yes"]).await;
    assert_eq!(code, 11, "the live target refused the configuration: {out}");
    assert!(out.contains("refused the configuration"), "{out}");
    assert!(out.contains("400"), "{out}");
    assert!(
        out.contains("request/body must NOT have additional properties"),
        "quotes n8n's answer: {out}"
    );
    assert_eq!(n8n.inner.lock().unwrap().saves, 0);

    // A conflict: exit 4 with n8n's message.
    n8n.set(|s| s.conflict = true);
    let (code, out) = run(&jv, &["restore", "n8n", "production", "1", "--yes"]).await;
    assert_eq!(code, 4, "{out}");
    assert!(
        out.contains("409") && out.contains("changed by someone else"),
        "{out}"
    );
    n8n.set(|s| s.conflict = false);

    // The workflow is deleted: "live object missing", not "no such snapshot".
    n8n.set(|s| s.deleted = true);
    for args in [
        &["backup", "n8n", "production"][..],
        &["doctor"],
        &["restore", "n8n", "production", "1", "--yes"],
    ] {
        let (code, out) = run(&jv, args).await;
        assert_eq!(code, 12, "{args:?}: {out}");
        assert!(out.contains("404"), "{args:?}: {out}");
        if args[0] != "doctor" {
            assert!(out.contains("does not exist"), "{args:?}: {out}");
        }
        if args[0] == "restore" {
            assert!(
                out.contains("the object is gone from the platform")
                    && out.contains("add an [apps.n8n.envs.production.live.create] table")
                    && out.contains("\"Restoring a deleted object\""),
                "names the config that recreates it: {out}"
            );
        }
    }
    // No such snapshot is still exit 3.
    n8n.set(|s| s.deleted = false);
    let (code, out) = run(&jv, &["restore", "n8n", "production", "9", "--yes"]).await;
    assert_eq!(code, 3, "{out}");

    // A missing key file: config check names it (a warning); backup fails naming it.
    std::fs::remove_file(&key_file).unwrap();
    let (code, out) = run(&jv, &["config", "check"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("X-N8N-API-KEY") && out.contains(key_file.to_str().unwrap()),
        "{out}"
    );
    let (code, out) = run(&jv, &["backup", "n8n", "production"]).await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains(key_file.to_str().unwrap()), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_answers_502_with_stable_codes() {
    let n8n = N8n::new();
    let base = n8n.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("n8n-key");
    std::fs::write(&key_file, KEY_ONE).unwrap();
    std::fs::set_permissions(
        &key_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let text = srv::config(
        &store,
        "",
        &live_toml("n8n.envs.production", &base, &key_file),
    );
    let path = dir.path().to_path_buf();
    let server = tokio::task::spawn_blocking(move || Server::start(&path, &text))
        .await
        .unwrap();
    let client = srv::client();
    let u = server.url("/v1/apps/n8n/envs/production");
    let post = |route: &str, body: Value| {
        srv::send(
            client
                .post(format!("{u}/{route}"))
                .bearer_auth(srv::OP)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
    };
    let r = post("backup", json!({})).await;
    assert_eq!(r.status, 201, "{:?}", r.json());
    n8n.set(|s| s.workflow["name"] = json!("Renamed"));
    assert_eq!(post("backup", json!({})).await.status, 201);

    let r = post(
        "restore",
        json!({"source": {"version": 1}, "allow_missing_live": true}),
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (502, "live_refused"),
        "{:?}",
        r.json()
    );
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must NOT have additional properties")
    );
    n8n.set(|s| s.conflict = true);
    let r = post("restore", json!({"source": {"version": 1}})).await;
    assert_eq!((r.status, r.code().as_str()), (409, "live_conflict"));
    n8n.set(|s| s.deleted = true);
    let r = post("backup", json!({})).await;
    assert_eq!((r.status, r.code().as_str()), (502, "live_missing"));
    let all = format!("{}{}", String::from_utf8_lossy(&r.body), server.stderr());
    assert_keyless("serve", &all);
}
