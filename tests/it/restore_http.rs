//! `jetvault restore` against an HTTP live target that fails during the push: a local
//! axum server that answers 500, writes part of the body and fails, hangs past the
//! timeout, or stores a reformatted document.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::harness::cli::Jv;
use crate::harness::{corpus, sha256};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

const A: &str = "nodered-http-endpoint-example.json";
const B: &str = "appsmith-import-app-all-access.json";
const C: &str = "grafana-k8s-views-nodes.json";

const OK: u8 = 0;
const FAIL_500: u8 = 1;
const PARTIAL: u8 = 2;
const HANG: u8 = 3;
const REFORMAT: u8 = 4;

#[derive(Clone, Default)]
struct Platform {
    config: Arc<Mutex<Vec<u8>>>,
    put_mode: Arc<AtomicU8>,
    /// This many next GETs answer 503, as a proxy does in front of a restarting
    /// platform.
    get_503: Arc<std::sync::atomic::AtomicUsize>,
    gets: Arc<std::sync::atomic::AtomicUsize>,
    puts: Arc<std::sync::atomic::AtomicUsize>,
}

impl Platform {
    fn set(&self, bytes: Vec<u8>) {
        *self.config.lock().unwrap() = bytes;
    }
    fn sha(&self) -> String {
        sha256(&self.config.lock().unwrap())
    }
    fn mode(&self, m: u8) {
        self.put_mode.store(m, Ordering::SeqCst);
    }
}

async fn export(State(p): State<Platform>) -> (StatusCode, Vec<u8>) {
    p.gets.fetch_add(1, Ordering::SeqCst);
    if p.get_503
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            b"upstream restarting".to_vec(),
        );
    }
    (StatusCode::OK, p.config.lock().unwrap().clone())
}

async fn import(State(p): State<Platform>, body: axum::body::Bytes) -> (StatusCode, String) {
    p.puts.fetch_add(1, Ordering::SeqCst);
    match p.put_mode.load(Ordering::SeqCst) {
        FAIL_500 => (StatusCode::INTERNAL_SERVER_ERROR, "import failed".into()),
        PARTIAL => {
            p.set(body[..body.len() / 2].to_vec());
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "import interrupted".into(),
            )
        }
        HANG => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            (StatusCode::OK, String::new())
        }
        REFORMAT => {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            p.set(serde_json::to_vec_pretty(&v).unwrap());
            (StatusCode::OK, String::new())
        }
        _ => {
            p.set(body.to_vec());
            (StatusCode::OK, String::new())
        }
    }
}

/// Starts the platform on a free loopback port in a thread of its own.
fn start_platform() -> (Platform, String) {
    let platform = Platform::default();
    let app = Router::new()
        .route("/config", get(export).put(import))
        .with_state(platform.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    (platform, format!("http://{addr}/config"))
}

#[test]
fn push_failures_over_http_leave_live_named_and_undoable() {
    let (platform, url) = start_platform();
    let jv = Jv::new();
    jv.write_config(&format!(
        "[apps.crm.envs.production]\nlive = {{ kind = \"http\", url = {url:?}, timeout = \"2s\" }}\n"
    ));
    for name in [A, B] {
        platform.set(corpus(name));
        jv.ok(&["backup", "crm", "production"]);
    }
    platform.set(corpus(C));

    // 500: nothing changed on the platform; the pre-restore snapshot exists.
    platform.mode(FAIL_500);
    let r = jv.fails(&["restore", "crm", "production", "1", "--yes"], 5);
    assert!(r.stderr.contains("500"), "{}", r.stderr);
    assert!(r.stderr.contains("live is unchanged"), "{}", r.stderr);
    assert_eq!(platform.sha(), sha256(&corpus(C)));
    let list = jv.ok(&["--json", "list", "crm", "production"]).json();
    assert_eq!(list[0]["version"], 3);
    assert_eq!(list[0]["trigger"], "pre-restore");
    assert_eq!(list[0]["sha256"], sha256(&corpus(C)));

    // Part of the body applied, then a 500: the state is named with the undo command,
    // which works once the platform is healthy again.
    platform.mode(PARTIAL);
    let r = jv.fails(&["restore", "crm", "production", "1", "--yes"], 5);
    assert!(r.stderr.contains("partially written"), "{}", r.stderr);
    let undo = r
        .stderr
        .split('`')
        .find(|s| s.starts_with("jetvault ") && s.contains(" restore "))
        .unwrap_or_else(|| panic!("no undo command in: {}", r.stderr))
        .to_string();
    assert!(undo.ends_with("restore crm production 3 --yes"), "{undo}");
    // The half-written live can't be saved first: the undo needs the override.
    assert!(
        r.stderr.contains("--overwrite-unreadable-live"),
        "{}",
        r.stderr
    );
    assert_ne!(platform.sha(), sha256(&corpus(C)));
    platform.mode(OK);
    let mut args: Vec<&str> = undo.split(' ').skip(1).collect();
    jv.fails(&args, 4);
    assert_ne!(platform.sha(), sha256(&corpus(C)));
    args.push("--overwrite-unreadable-live");
    jv.ok(&args);
    assert_eq!(platform.sha(), sha256(&corpus(C)));

    // A push that hangs past the timeout: named, live unchanged.
    platform.mode(HANG);
    let r = jv.fails(&["restore", "crm", "production", "2", "--yes"], 5);
    assert!(r.stderr.contains("timed out"), "{}", r.stderr);
    assert!(r.stderr.contains("live is unchanged"), "{}", r.stderr);
    assert_eq!(platform.sha(), sha256(&corpus(C)));

    // A platform that stores the same document reformatted: accepted as equal JSON.
    platform.mode(REFORMAT);
    let r = jv.ok(&["--json", "restore", "crm", "production", "2", "--yes"]);
    assert_eq!(r.json()["verified"], "equivalent_json");
    let stored: serde_json::Value =
        serde_json::from_slice(&platform.config.lock().unwrap()).unwrap();
    let want: serde_json::Value = serde_json::from_slice(&corpus(B)).unwrap();
    assert_eq!(stored, want);

    let events = jv.ok(&["--json", "events", "crm", "production"]).json();
    let restores: Vec<&serde_json::Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "restore")
        .collect();
    let outcomes: Vec<&str> = restores
        .iter()
        .map(|e| e["details"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "failed").count(),
        3,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "restored").count(),
        2,
        "{outcomes:?}"
    );
}

/// The data loss: a proxy answering 503 while the platform restarts. The
/// restore reads live three times, then refuses, even with `--yes`; nothing is pushed
/// and live keeps its unsaved configuration. Only the explicit override goes on, and
/// the audit event records it.
#[test]
fn a_live_target_answering_503_is_never_overwritten_without_the_override() {
    let (platform, url) = start_platform();
    let jv = Jv::new();
    jv.write_config(&format!(
        "[apps.crm.envs.production]\nlive = {{ kind = \"http\", url = {url:?}, timeout = \"2s\" }}\n"
    ));
    for name in [A, B] {
        platform.set(corpus(name));
        jv.ok(&["backup", "crm", "production"]);
    }
    // Unsaved work on the platform, then it restarts behind its proxy.
    platform.set(corpus(C));
    platform.get_503.store(usize::MAX, Ordering::SeqCst);
    let gets = platform.gets.load(Ordering::SeqCst);

    let r = jv.fails(&["restore", "crm", "production", "1", "--yes"], 5);
    assert!(r.stderr.contains("503"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was pushed"), "{}", r.stderr);
    assert!(
        r.stderr.contains("--overwrite-unreadable-live"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("nothing to undo"), "{}", r.stderr);
    assert_eq!(platform.puts.load(Ordering::SeqCst), 0, "nothing pushed");
    assert_eq!(platform.sha(), sha256(&corpus(C)), "live unchanged");
    // The plan's read, then the restore's three reads.
    assert_eq!(platform.gets.load(Ordering::SeqCst) - gets, 4);
    let list = jv.ok(&["--json", "list", "crm", "production"]).json();
    assert_eq!(list.as_array().unwrap().len(), 2, "no snapshot taken");

    // The explicit override pushes, and says so in the audit event. (The platform
    // answers again after the plan's read and the restore's three.)
    platform.get_503.store(4, Ordering::SeqCst);
    let r = jv.ok(&[
        "--json",
        "restore",
        "crm",
        "production",
        "1",
        "--yes",
        "--overwrite-unreadable-live",
    ]);
    let report = r.json();
    assert_eq!(report["pre_restore"]["kind"], "impossible");
    assert_eq!(report["pre_restore"]["overridden_unreadable"], true);
    assert_eq!(platform.puts.load(Ordering::SeqCst), 1);
    let events = jv.ok(&["--json", "events", "crm", "production"]).json();
    let restore = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "restore")
        .unwrap();
    assert_eq!(restore["details"]["override_unreadable_live"], true);
}
