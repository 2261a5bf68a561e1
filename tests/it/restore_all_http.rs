//! `POST /v1/restore-all` and `GET /v1/restore-all/{run}` through the real `serve`
//! binary on a local directory store with file live targets: the dry-run plan, a run
//! started in the background and followed to its end, its run events, the undo, and
//! the refusals.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::harness::StoreSpec;
use crate::harness::serve::{OP, RD, Server, client, config, eventually, send};
use serde_json::{Value, json};

const N: usize = 6;

fn good(i: usize) -> Vec<u8> {
    format!("{{\"app\":\"a{i:03}\",\"flows\":[{{\"id\":\"f1\"}},{{\"id\":\"f2\"}}]}}").into_bytes()
}

fn bad(i: usize) -> Vec<u8> {
    format!("{{\"app\":\"a{i:03}\",\"flows\":[]}}").into_bytes()
}

fn live(dir: &Path, i: usize) -> PathBuf {
    dir.join(format!("live/a{i:03}.json"))
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Follows a run until it is finished; its status.
async fn finished(s: &Server, location: &str) -> Value {
    let http = client();
    eventually("the run to finish", Duration::from_secs(60), || {
        let req = http.get(s.url(location)).bearer_auth(RD);
        async move {
            let r = send(req).await;
            assert_eq!(r.status, 200, "{r:?}");
            let v = r.json();
            (v["finished"] == true && v["running"] == false).then_some(v)
        }
    })
    .await
}

#[tokio::test]
async fn a_run_started_over_http_restores_reports_and_undoes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("live")).unwrap();
    let mut apps = String::new();
    for i in 0..N {
        std::fs::write(live(dir.path(), i), good(i)).unwrap();
        apps.push_str(&format!(
            "[apps.a{i:03}.envs.prod]\nlive = {{ kind = \"file\", path = {:?} }}\n",
            live(dir.path(), i)
        ));
    }
    let store = StoreSpec::local(&dir.path().join("store"));
    let s = Server::start(dir.path(), &config(&store, "", &apps));
    ok(&s.cli().args(["backup-all"]).output().unwrap());
    std::thread::sleep(Duration::from_millis(20));
    let before = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(Duration::from_millis(20));
    // Four of the six are damaged, and backed up damaged.
    for i in 0..4 {
        std::fs::write(live(dir.path(), i), bad(i)).unwrap();
    }
    ok(&s.cli().args(["backup-all"]).output().unwrap());
    let http = client();
    let post = |body: Value, token: &'static str| {
        http.post(s.url("/v1/restore-all"))
            .bearer_auth(token)
            .body(body.to_string())
    };

    // The read role can't start one; a body without a point or a selection is refused.
    let r = send(post(json!({"all": true, "at": before}), RD)).await;
    assert_eq!(r.status, 403, "{r:?}");
    let r = send(post(json!({"all": true}), OP)).await;
    assert_eq!((r.status, r.code()), (400, "invalid_input".into()), "{r:?}");
    let r = send(post(json!({"at": before}), OP)).await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = send(post(
        json!({"all": true, "at": before, "concurrency": 0}),
        OP,
    ))
    .await;
    assert_eq!(r.status, 400, "{r:?}");

    // The dry run: the plan, nothing changed.
    let r = send(post(
        json!({"all": true, "at": before, "dry_run": true}),
        OP,
    ))
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let plan = r.json();
    assert_eq!(
        (plan["restore"].as_u64(), plan["unchanged"].as_u64()),
        (Some(4), Some(2)),
        "{plan:#}"
    );
    assert_eq!(plan["envs"][0]["env"], "a000/prod");
    assert_eq!(plan["envs"][0]["decision"], "restore");
    assert_eq!(plan["envs"][0]["version"], 1);
    assert_eq!(std::fs::read(live(dir.path(), 0)).unwrap(), bad(0));

    // The run: 202 with its id and Location, followed to its end.
    let r = send(post(
        json!({"all": true, "at": before, "message": "INC-7"}),
        OP,
    ))
    .await;
    assert_eq!(r.status, 202, "{r:?}");
    let started = r.json();
    let id = started["run"].as_str().unwrap().to_string();
    let location = r.header("location").unwrap();
    assert_eq!(location, format!("/v1/restore-all/{id}"));
    assert_eq!(started["status_url"], location.as_str());
    assert_eq!(started["resumed"], false);
    let status = finished(&s, &location).await;
    assert_eq!(
        (
            status["restored"].as_u64(),
            status["unchanged"].as_u64(),
            status["failed"].as_u64(),
            status["pending"].as_u64()
        ),
        (Some(4), Some(2), Some(0), Some(0)),
        "{status:#}"
    );
    assert_eq!(status["run"]["envs"]["a000/prod"]["status"], "restored");
    assert_eq!(status["run"]["envs"]["a000/prod"]["pre_restore"], 2);
    for i in 0..N {
        assert_eq!(
            std::fs::read(live(dir.path(), i)).unwrap(),
            good(i),
            "a{i:03}"
        );
    }
    // The run-level events: its start and its end, with the counts.
    let events = status["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:#?}");
    assert_eq!(events[0]["phase"], "start");
    // A confirmed run reads live only in each restore: all six were to do; two
    // turned out unchanged.
    assert_eq!(events[0]["todo"], 6);
    assert_eq!(events[1]["unchanged"], 2);
    assert_eq!(events[1]["phase"], "end");
    assert_eq!(events[1]["restored"], 4);
    assert_eq!(events[1]["actor"]["who"], "token:ci");
    // Each environment's own restore event names the run.
    let ev = send(
        http.get(s.url("/v1/apps/a000/envs/prod/events"))
            .bearer_auth(RD),
    )
    .await
    .json();
    let restore = ev
        .as_array()
        .and_then(|a| a.iter().find(|e| e["action"] == "restore"))
        .unwrap_or_else(|| panic!("no restore event: {ev:#}"));
    assert!(
        restore["details"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("INC-7 (restore-all run {id})")),
        "{restore:#}"
    );

    // The same request again starts a new run (the last one is finished): all unchanged.
    let r = send(post(json!({"all": true, "at": before}), OP)).await;
    assert_eq!(r.status, 202, "{r:?}");
    let again = finished(&s, &r.header("location").unwrap()).await;
    assert_eq!(again["unchanged"], 6, "{again:#}");
    assert_ne!(again["run"]["id"], id.as_str());

    // Undo: the four damaged ones hold their damaged version again.
    let r = send(post(json!({"undo": id}), OP)).await;
    assert_eq!(r.status, 202, "{r:?}");
    let undo = finished(&s, &r.header("location").unwrap()).await;
    assert_eq!(undo["restored"], 4, "{undo:#}");
    assert_eq!(undo["run"]["kind"], "undo");
    for i in 0..N {
        let want = if i < 4 { bad(i) } else { good(i) };
        assert_eq!(std::fs::read(live(dir.path(), i)).unwrap(), want, "a{i:03}");
    }

    // Unknown and malformed run ids.
    let r = send(
        http.get(s.url("/v1/restore-all/20990101T000000Z-abcdef"))
            .bearer_auth(RD),
    )
    .await;
    assert_eq!((r.status, r.code()), (404, "not_found".into()), "{r:?}");
    let r = send(
        http.get(s.url("/v1/restore-all/no_such_run"))
            .bearer_auth(RD),
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
    let r = send(post(json!({"resume": "20990101T000000Z-abcdef"}), OP)).await;
    assert_eq!(r.status, 404, "{r:?}");
}

/// A run another process is running (it holds the run's lease in the store) is refused
/// over HTTP with 409, naming the run and when the lease expires; once released, the
/// same request resumes it.
#[tokio::test]
async fn a_run_held_by_another_process_is_refused_with_409() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("live")).unwrap();
    std::fs::write(live(dir.path(), 0), good(0)).unwrap();
    let apps = format!(
        "[apps.a000.envs.prod]\nlive = {{ kind = \"file\", path = {:?} }}\n",
        live(dir.path(), 0)
    );
    let store_dir = dir.path().join("store");
    let s = Server::start(
        dir.path(),
        &config(&StoreSpec::local(&store_dir), "", &apps),
    );
    ok(&s.cli().args(["backup-all"]).output().unwrap());
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let out = s
        .cli()
        .args(["--json", "restore-all", "--all", "--at", &at, "--yes"])
        .output()
        .unwrap();
    ok(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = report["run"]["id"].as_str().unwrap().to_string();

    // Another process (another replica, a shell) takes the run.
    let store = std::sync::Arc::new(jetvault_core::store::LocalStore::open(&store_dir).unwrap());
    let vault = jetvault_core::Vault::new(store, jetvault_core::VaultOptions::default());
    let held = vault
        .lease_run(&id, jetvault_core::restore_all::DEFAULT_LEASE)
        .await
        .unwrap();
    let expires = held.lease().expires_at().to_rfc3339();
    let http = client();
    let resume = || {
        http.post(s.url("/v1/restore-all"))
            .bearer_auth(OP)
            .body(json!({"resume": id}).to_string())
    };
    let r = send(resume()).await;
    assert_eq!(
        (r.status, r.code()),
        (409, "already_exists".into()),
        "{r:?}"
    );
    let text = r.json().to_string();
    assert!(
        text.contains(&format!("run {id} is in progress elsewhere")),
        "{text}"
    );
    assert!(
        text.contains(&format!("lease expires at {expires}")),
        "{text}"
    );

    // Released (that process finished): the same request resumes it.
    held.release().await;
    let r = send(resume()).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.json()["resumed"], true);
    let status = finished(&s, &r.header("location").unwrap()).await;
    assert_eq!(status["unchanged"], 1, "{status:#}");
}
