//! `jetvault restore-all` through the real binary, with file live targets (and, on
//! LocalStack, HTTP ones too): a platform damaged at one moment goes back to the moment
//! before, byte for byte; a run killed halfway is resumed, by rerunning the same
//! command, without restoring any environment twice; undo puts the damage back; one
//! environment's failure stops no other. On a local directory store and on LocalStack.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as AxPath, State};
use axum::http::StatusCode;
use axum::routing::get;

use crate::harness::cli::Jv;
use crate::harness::{Backend, TestBucket};

fn good(i: usize) -> Vec<u8> {
    format!(
        "{{\n  \"app\": \"a{i:03}\",\n  \"flows\": [{{\"id\": \"f1\", \"url\": \"/orders\"}}, \
         {{\"id\": \"f2\", \"url\": \"/customers\"}}],\n  \"rev\": {i}\n}}\n"
    )
    .into_bytes()
}

fn bad(i: usize) -> Vec<u8> {
    format!("{{\"app\":\"a{i:03}\",\"flows\":[],\"migrated\":true}}").into_bytes()
}

/// A platform's HTTP API in this process: `GET`/`PUT /cfg/{app}` read and replace an
/// app's configuration (404 when it has none).
#[derive(Clone, Default)]
struct HttpLive {
    configs: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

impl HttpLive {
    /// Starts the server on a loopback port; its base URL.
    fn start(&self) -> String {
        async fn export(
            State(h): State<HttpLive>,
            AxPath(app): AxPath<String>,
        ) -> (StatusCode, Vec<u8>) {
            match h.configs.lock().unwrap().get(&app) {
                Some(body) => (StatusCode::OK, body.clone()),
                None => (StatusCode::NOT_FOUND, b"no such app".to_vec()),
            }
        }
        async fn import(
            State(h): State<HttpLive>,
            AxPath(app): AxPath<String>,
            body: axum::body::Bytes,
        ) -> StatusCode {
            h.configs.lock().unwrap().insert(app, body.to_vec());
            StatusCode::NO_CONTENT
        }
        let app = Router::new()
            .route("/cfg/{app}", get(export).put(import))
            .with_state(self.clone());
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
        format!("http://{}", rx.recv().unwrap())
    }
}

/// The platform: `n` environments `a000/prod` ... with file live targets (with `http`,
/// every odd one an HTTP live target instead), all backed up holding `good`; then the
/// time `before`; then `damaged` of them overwritten with `bad` and backed up again
/// (the scheduled backup after the damage).
struct Platform {
    jv: Jv,
    n: usize,
    damaged: Vec<usize>,
    before: String,
    http: Option<HttpLive>,
}

impl Platform {
    fn new(jv: Jv, n: usize, damaged: impl Fn(usize) -> bool) -> Self {
        Self::with_http(jv, n, damaged, false)
    }

    fn with_http(jv: Jv, n: usize, damaged: impl Fn(usize) -> bool, http: bool) -> Self {
        std::fs::create_dir_all(jv.path("live")).unwrap();
        let http = http.then(HttpLive::default);
        let base = http.as_ref().map(HttpLive::start);
        let mut config = String::new();
        for i in 0..n {
            match &base {
                Some(base) if i % 2 == 1 => config.push_str(&format!(
                    "[apps.a{i:03}.envs.prod]\nlive = {{ kind = \"http\", url = \"{base}/cfg/a{i:03}\" }}\n"
                )),
                _ => config.push_str(&Jv::file_env(
                    &format!("a{i:03}"),
                    "prod",
                    &live(&jv, i),
                    "",
                )),
            }
            match &http {
                Some(h) if i % 2 == 1 => {
                    h.configs
                        .lock()
                        .unwrap()
                        .insert(format!("a{i:03}"), good(i));
                }
                _ => std::fs::write(live(&jv, i), good(i)).unwrap(),
            }
        }
        jv.write_config(&config);
        jv.ok(&["backup-all", "--concurrency", "16"]);
        // Snapshot times are in milliseconds: make `before` fall strictly between.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let before = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let damaged: Vec<usize> = (0..n).filter(|&i| damaged(i)).collect();
        let mut p = Self {
            jv,
            n,
            damaged,
            before,
            http,
        };
        for &i in &p.damaged.clone() {
            p.set_live(i, bad(i));
        }
        p.jv.ok(&["backup-all", "--concurrency", "16"]);
        p
    }

    fn is_http(&self, i: usize) -> bool {
        self.http.is_some() && i % 2 == 1
    }

    fn set_live(&mut self, i: usize, bytes: Vec<u8>) {
        match &self.http {
            Some(h) if self.is_http(i) => {
                h.configs.lock().unwrap().insert(format!("a{i:03}"), bytes);
            }
            _ => std::fs::write(live(&self.jv, i), bytes).unwrap(),
        }
    }

    fn live(&self, i: usize) -> Vec<u8> {
        match &self.http {
            Some(h) if self.is_http(i) => h.configs.lock().unwrap()[&format!("a{i:03}")].clone(),
            _ => std::fs::read(live(&self.jv, i)).unwrap(),
        }
    }

    /// Restore events of env `i` that pushed something.
    fn restores(&self, i: usize) -> usize {
        let env = format!("a{i:03}");
        let events = self.jv.json(&["events", &env, "prod", "--limit", "100"]);
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "restore" && e["details"]["outcome"] == "restored")
            .count()
    }

    fn assert_restored(&self) {
        for i in 0..self.n {
            assert_eq!(self.live(i), good(i), "a{i:03} holds what it held before");
        }
    }
}

fn live(jv: &Jv, i: usize) -> PathBuf {
    jv.path(&format!("live/a{i:03}.json"))
}

/// Runs `restore-all --at before --concurrency 1` and kills it once `after` environments
/// are reported done; returns the run id.
fn run_and_kill(p: &Platform, after: usize) -> String {
    let mut child =
        p.jv.command(&[
            "restore-all",
            "--all",
            "--at",
            &p.before,
            "--yes",
            "--concurrency",
            "1",
            "--lease",
            "10",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let id = first
        .strip_prefix("restore-all run ")
        .and_then(|r| r.split(':').next())
        .unwrap_or_else(|| panic!("no run id in {first:?}"))
        .to_string();
    let mut done = 0;
    for line in lines {
        if line.unwrap().starts_with('[') {
            done += 1;
            if done == after {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    id
}

/// The scenario on any store: plan, a run killed halfway, resume, undo.
fn platform_scenario(jv: Jv, n: usize, damaged: impl Fn(usize) -> bool, http: bool) {
    let p = Platform::with_http(jv, n, damaged, http);
    let (d, untouched) = (p.damaged.len(), n - p.damaged.len());

    // The plan: the damaged would go back to v1, the others are already equal.
    let plan =
        p.jv.json(&["restore-all", "--all", "--at", &p.before, "--dry-run"]);
    assert_eq!(plan["restore"], d, "{plan:#}");
    assert_eq!(plan["unchanged"], untouched);
    assert_eq!(plan["skip"], 0);
    for e in plan["envs"].as_array().unwrap() {
        assert!(
            e["decision"] == "restore" || e["decision"] == "unchanged",
            "{e}"
        );
        assert_eq!(e["version"], 1, "{e}");
    }
    // Without --yes and no terminal: refused, nothing changed.
    let r = p.jv.fails(&["restore-all", "--all", "--at", &p.before], 10);
    assert!(r.stderr.contains("pass --yes"), "{}", r.stderr);
    assert_eq!(p.live(p.damaged[0]), bad(p.damaged[0]));

    // Killed halfway, then resumed by rerunning the same command: it finds the
    // unfinished run of the same selection and point.
    let id = run_and_kill(&p, d / 2);
    // Its lease (10 s, renewed every third) still holds: another process refuses the
    // run, naming it and when the lease expires (exit 4, a conflict)...
    let rerun_args = ["--json", "restore-all", "--all", "--at", &p.before, "--yes"];
    let refused = p.jv.fails(&rerun_args, 4);
    assert!(
        refused
            .stderr
            .contains(&format!("run {id} is in progress elsewhere")),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("lease expires at"),
        "{}",
        refused.stderr
    );
    // ... until it expires: the dead process's run is then resumed.
    let started = std::time::Instant::now();
    let rerun = loop {
        let r = p.jv.run(&rerun_args);
        if r.code != 4 || started.elapsed() > std::time::Duration::from_secs(120) {
            break r;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    };
    assert_eq!(rerun.code, 0, "{}\n{}", rerun.stdout, rerun.stderr);
    assert!(
        rerun.stderr.contains(&format!("resuming run {id}")),
        "{}",
        rerun.stderr
    );
    let resumed = rerun.json();
    assert_eq!(resumed["run"]["id"], id.as_str(), "{resumed:#}");
    assert_eq!(resumed["failed"], 0, "{resumed:#}");
    assert_eq!(resumed["restored"], d, "{resumed:#}");
    assert_eq!(resumed["unchanged"], untouched, "{resumed:#}");
    p.assert_restored();
    for i in 0..n {
        let want = usize::from(p.damaged.contains(&i));
        assert_eq!(p.restores(i), want, "a{i:03} restored {want} time(s)");
    }
    // Untouched environments got no new snapshot.
    let untouched_env = (0..n).find(|i| !p.damaged.contains(i)).unwrap();
    let list =
        p.jv.json(&["list", &format!("a{untouched_env:03}"), "prod"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
    // Resuming a finished run does nothing.
    let again = p.jv.ok(&["restore-all", "--resume", &id, "--yes"]);
    assert!(again.stderr.contains("0 to do"), "{}", again.stderr);

    // Undo: every damaged environment holds its damaged version again.
    let undo = p.jv.json(&["restore-all", "--undo", &id, "--yes"]);
    assert_eq!(undo["restored"], d, "{undo:#}");
    assert_eq!(undo["failed"], 0);
    for i in 0..n {
        let want = if p.damaged.contains(&i) {
            bad(i)
        } else {
            good(i)
        };
        assert_eq!(p.live(i), want, "a{i:03} after undo");
    }
}

#[test]
fn twenty_envs_fifteen_damaged_local() {
    platform_scenario(Jv::new(), 20, |i| i % 4 != 0, false);
}

#[test]
fn two_hundred_envs_localstack() {
    let Some(bucket) = TestBucket::new_blocking(Backend::LocalStack, "restore-all") else {
        return;
    };
    // Half of them (the odd ones) have HTTP live targets, on one local server.
    platform_scenario(
        Jv::with_store(bucket.spec("jetvault")),
        200,
        |i| i % 4 != 0,
        true,
    );
}

/// One environment whose live can't be written fails; the others are restored; the
/// report names the failure, the exit code is 8, and a resume retries it alone.
#[test]
fn one_failure_stops_no_other() {
    let p = Platform::new(Jv::new(), 4, |_| true);
    // a002's live directory disappears: its push fails.
    let dir = p.jv.path("live2");
    std::fs::create_dir(&dir).unwrap();
    let moved = dir.join("a002.json");
    std::fs::rename(live(&p.jv, 2), &moved).unwrap();
    let mut config = String::new();
    for i in 0..4 {
        let path = if i == 2 {
            moved.clone()
        } else {
            live(&p.jv, i)
        };
        config.push_str(&Jv::file_env(&format!("a{i:03}"), "prod", &path, ""));
    }
    p.jv.write_config(&config);
    std::fs::remove_dir_all(&dir).unwrap();

    let r = p.jv.fails(
        &[
            "restore-all",
            "--app",
            "a000",
            "--app",
            "a001",
            "--app",
            "a002",
            "--app",
            "a003",
            "--at",
            &p.before,
            "--yes",
        ],
        8,
    );
    assert!(
        r.stdout
            .contains("3 restored, 0 unchanged, 0 skipped, 1 failed"),
        "{}",
        r.text()
    );
    assert!(r.stdout.contains("a002/prod: "), "{}", r.text());
    for i in [0, 1, 3] {
        assert_eq!(p.live(i), good(i));
    }
    let id = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .and_then(|l| l.split(':').next())
        .unwrap()
        .to_string();

    std::fs::create_dir(&dir).unwrap();
    let resumed = p.jv.json(&["restore-all", "--resume", &id, "--yes"]);
    assert_eq!(
        (resumed["restored"].as_u64(), resumed["failed"].as_u64()),
        (Some(4), Some(0))
    );
    assert_eq!(std::fs::read(&moved).unwrap(), good(2));
    for i in [0, 1, 3] {
        assert_eq!(p.restores(i), 1);
    }
}

/// `--env` selects by pattern; `--release` goes to each environment's current release
/// and skips those without one.
#[test]
fn select_by_pattern_and_by_release() {
    let p = Platform::new(Jv::new(), 3, |_| true);
    p.jv.ok(&["release", "a001", "prod", "1"]);
    // `[` is no glob character: nothing matches, which is an error.
    p.jv.fails(
        &[
            "restore-all",
            "--env",
            "a00[0-9]/prod",
            "--release",
            "--dry-run",
        ],
        3,
    );
    let plan =
        p.jv.json(&["restore-all", "--env", "a00?/pr*", "--release", "--dry-run"]);
    let envs = plan["envs"].as_array().unwrap();
    assert_eq!(envs.len(), 3);
    assert_eq!(envs[1]["decision"], "restore");
    assert_eq!(envs[1]["version"], 1);
    assert_eq!(envs[0]["decision"], "skip");
    assert_eq!(envs[0]["reason"], "no_release");
    let r =
        p.jv.ok(&["restore-all", "--app", "a001", "--release", "--yes"]);
    assert!(r.stdout.contains("1 restored"), "{}", r.text());
    assert_eq!(p.live(1), good(1));
    assert_eq!(p.live(0), bad(0));
}
