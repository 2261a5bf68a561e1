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

async fn export(State(p): State<Platform>) -> Vec<u8> {
    p.config.lock().unwrap().clone()
}

async fn import(State(p): State<Platform>, body: axum::body::Bytes) -> (StatusCode, String) {
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
    assert_ne!(platform.sha(), sha256(&corpus(C)));
    platform.mode(OK);
    let args: Vec<&str> = undo.split(' ').skip(1).collect();
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
