//! The console's "Restore runs" pages in a real headless Chromium, on a run made by
//! `jetvault restore-all`: the list (newest first, counts by status), one run's detail
//! (per-environment status, reason, version, undo point), a resume from the page that
//! the page follows by itself, and an undo behind its plan and the typed run id. A read
//! token sees the actions disabled and the API refuses them. axe-core on each page;
//! screenshots at both sizes. `GET /v1/restore-all` is checked through the API too.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;

use crate::console::{edited, no_serious_violations, sign_in};
use crate::harness::browser::{Browser, DESKTOP, PHONE};
use crate::harness::serve::{OP, RD, Server, client, config, send};
use crate::harness::{StoreSpec, sha256};

/// The damage done to crm/production after the point the run goes back to.
const DAMAGE: &[u8] = b"{\"damaged\": true}";

/// Four environments and one restore-all run, `--at` a time between their good
/// snapshots and the damage:
/// - crm/production: damaged live → restored;
/// - crm/staging: live as it was → unchanged;
/// - shop/production: its live file's folder is gone → failed (retried by a resume);
/// - legacy/production: only in the store, no live target → skipped.
struct Runs {
    dir: tempfile::TempDir,
    server: Server,
    /// The run's id.
    run: String,
}

impl Runs {
    fn live(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn jv(server: &Server, args: &[&str]) -> std::process::Output {
    server.cli().args(args).output().unwrap()
}

fn ok(server: &Server, args: &[&str]) {
    let out = jv(server, args);
    assert!(
        out.status.success(),
        "jetvault {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn runs_world() -> Runs {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let p = |name: &str| dir.path().join(name).display().to_string();
    let apps = format!(
        "[apps.crm.envs.production]\nlive = {{ kind = \"file\", path = {:?} }}\n\
         [apps.crm.envs.staging]\nlive = {{ kind = \"file\", path = {:?} }}\n\
         [apps.shop.envs.production]\nlive = {{ kind = \"file\", path = {:?} }}\n",
        p("crm-production.json"),
        p("crm-staging.json"),
        p("gone/shop-production.json"),
    );
    let server = Server::start(dir.path(), &config(&store, "", &apps));
    let good = dir.path().join("good.json");
    std::fs::write(&good, edited(1)).unwrap();
    std::fs::write(dir.path().join("crm-production.json"), edited(1)).unwrap();
    std::fs::write(dir.path().join("crm-staging.json"), edited(2)).unwrap();
    ok(&server, &["backup", "crm", "production"]);
    ok(&server, &["backup", "crm", "staging"]);
    let from = good.to_str().unwrap();
    ok(&server, &["backup", "shop", "production", "--from", from]);
    ok(&server, &["backup", "legacy", "production", "--from", from]);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    std::fs::write(dir.path().join("crm-production.json"), DAMAGE).unwrap();
    ok(
        &server,
        &["backup", "crm", "production", "-m", "the damage"],
    );

    let out = jv(&server, &["restore-all", "--all", "--at", &at, "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(8),
        "one environment fails: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sha256(&std::fs::read(dir.path().join("crm-production.json")).unwrap()),
        sha256(&edited(1))
    );

    // The API lists it: newest first, counted by status, not finished.
    let page = runs_page(&server, RD).await;
    let runs = page["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{page}");
    let run = &runs[0];
    assert_eq!(
        run["counts"],
        serde_json::json!({"envs": 4, "restored": 1, "unchanged": 1, "skipped": 1,
            "failed": 1, "pending": 0})
    );
    assert_eq!(run["finished"], Value::Bool(false));
    assert_eq!(run["kind"], "restore");
    assert_eq!(page["next_before"], Value::Null);
    Runs {
        run: run["id"].as_str().unwrap().to_string(),
        dir,
        server,
    }
}

async fn runs_page(server: &Server, token: &str) -> Value {
    let r = send(
        client()
            .get(server.url("/v1/restore-all"))
            .bearer_auth(token),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

#[tokio::test]
async fn runs_resume_and_undo_in_the_console() {
    let w = runs_world().await;
    let Some(b) = Browser::open(DESKTOP).await else {
        return;
    };
    sign_in(&b, &w.server, OP).await;
    b.wait_text("#envs", "crm/production").await;

    // The list, from the header's link.
    b.find("#nav-runs").await.click().await.unwrap();
    let row = b
        .wait_text(&format!("#runs tr[data-run='{}']", w.run), "failed")
        .await;
    assert!(
        row.contains("1 restored") && row.contains("1 skipped") && row.contains("1 unchanged"),
        "{row}"
    );
    no_serious_violations(&b, "restore runs").await;
    b.screenshot("runs-desktop").await;

    // One run: every environment with its status, version, undo point and reason.
    b.client
        .find(Locator::LinkText(&w.run))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_text("#run-envs", "legacy/production").await;
    let status = send(
        client()
            .get(w.server.url(&format!("/v1/restore-all/{}", w.run)))
            .bearer_auth(RD),
    )
    .await
    .json();
    let crm = &status["run"]["envs"]["crm/production"];
    let pre = crm["pre_restore"].as_u64().expect("an undo point");
    let restored = b.text("#run-envs tr[data-env='crm/production']").await;
    assert!(
        restored.contains("restored")
            && restored.contains("v1")
            && restored.contains(&format!("v{pre}")),
        "{restored}"
    );
    let skipped = b.text("#run-envs tr[data-env='legacy/production']").await;
    assert!(
        skipped.contains("skipped") && skipped.contains("no_live_target"),
        "{skipped}"
    );
    let failed = b.text("#run-envs tr[data-env='shop/production']").await;
    assert!(
        failed.contains("failed") && failed.contains("shop-production.json"),
        "the reason names the file: {failed}"
    );
    // The status filter.
    b.find("#run-filter")
        .await
        .select_by_value("failed")
        .await
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let shown = b
            .js("return [...document.querySelectorAll('#run-envs tbody tr')].map(r => r.dataset.env)")
            .await;
        if shown == serde_json::json!(["shop/production"]) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "filtered: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.find("#run-filter")
        .await
        .select_by_value("")
        .await
        .unwrap();
    no_serious_violations(&b, "restore run").await;
    b.screenshot("run-desktop").await;

    // Resume from the page once the folder is back; the page follows the run by itself.
    std::fs::create_dir(w.live("gone")).unwrap();
    b.client
        .find(Locator::XPath("//button[text()='Resume this run']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_text("#run-head", "finished").await;
    b.wait_text("#run-envs tr[data-env='shop/production']", "restored")
        .await;
    assert_eq!(
        sha256(&std::fs::read(w.live("gone/shop-production.json")).unwrap()),
        sha256(&edited(1))
    );

    // Undo: the plan, then the typed run id, then the new run, followed to its end.
    b.client
        .find(Locator::XPath("//button[text()='Undo this run…']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let plan = b.wait_text("#undo-plan", "to put back").await;
    assert!(plan.starts_with("1 to put back"), "{plan}");
    let go = b.find("#undo-submit").await;
    assert!(!go.is_enabled().await.unwrap(), "undo waits for the run id");
    b.find("#undo-confirm")
        .await
        .send_keys(&w.run[..10])
        .await
        .unwrap();
    assert!(
        !go.is_enabled().await.unwrap(),
        "a part of the id is not enough"
    );
    b.find("#undo-confirm")
        .await
        .send_keys(&w.run[10..])
        .await
        .unwrap();
    no_serious_violations(&b, "undo dialog").await;
    b.screenshot("run-undo-desktop").await;
    go.click().await.unwrap();
    // The page moves to the new run, which names the one it undoes, and follows it.
    b.wait_text("#run-head", "undoes").await;
    let head = b.wait_text("#run-head", "finished").await;
    assert!(head.contains("undo") && head.contains(&w.run), "{head}");
    assert_eq!(
        std::fs::read(w.live("crm-production.json")).unwrap(),
        DAMAGE,
        "undo put back what was live before the run"
    );

    // The list: the undo first, the run itself finished now.
    let page = runs_page(&w.server, OP).await;
    let runs = page["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["kind"], "undo");
    assert_eq!(runs[0]["undoes"], Value::String(w.run.clone()));
    assert_eq!(runs[1]["id"], Value::String(w.run.clone()));
    assert_eq!(runs[1]["finished"], Value::Bool(true));
    // Paged: one a page, `next_before` and the Link header name the older one.
    let r = send(
        client()
            .get(w.server.url("/v1/restore-all?limit=1"))
            .bearer_auth(RD),
    )
    .await;
    let link = r.headers["link"].to_str().unwrap().to_string();
    assert!(
        link.contains(&format!("before={}", runs[0]["id"].as_str().unwrap())),
        "{link}"
    );
    let older = send(
        client()
            .get(w.server.url(&format!(
                "/v1/restore-all?limit=1&before={}",
                runs[0]["id"].as_str().unwrap()
            )))
            .bearer_auth(RD),
    )
    .await
    .json();
    assert_eq!(older["runs"][0]["id"], Value::String(w.run.clone()));
    assert_eq!(older["next_before"], Value::Null);
    b.close().await;
}

#[tokio::test]
async fn a_read_token_sees_runs_but_cannot_undo_and_the_phone_size_works() {
    let w = runs_world().await;
    // No token: refused.
    let r = send(client().get(w.server.url("/v1/restore-all"))).await;
    assert_eq!(r.status, 401);
    let Some(b) = Browser::open(PHONE).await else {
        return;
    };
    sign_in(&b, &w.server, RD).await;
    b.goto(&w.server.url("/#/runs")).await;
    b.wait_text("#runs", &w.run).await;
    let fits = "return document.documentElement.scrollWidth <= window.innerWidth + 1";
    assert_eq!(
        b.js(fits).await,
        Value::Bool(true),
        "the list scrolls sideways"
    );
    no_serious_violations(&b, "restore runs (phone)").await;
    b.screenshot("runs-phone").await;

    b.goto(&w.server.url(&format!("/#/runs/{}", w.run))).await;
    b.wait_text("#run-envs", "crm/production").await;
    assert_eq!(
        b.js(fits).await,
        Value::Bool(true),
        "the run scrolls sideways"
    );
    let enabled = b
        .js(
            "return [...document.querySelectorAll('#main button')].filter(x => \
             ['Undo this run…', 'Resume this run'].includes(x.textContent) && !x.disabled).length",
        )
        .await;
    assert_eq!(enabled, Value::from(0), "no action with a read token");
    no_serious_violations(&b, "restore run (phone)").await;
    b.screenshot("run-phone").await;
    b.close().await;

    // And the API refuses them anyway.
    for body in [
        serde_json::json!({"undo": w.run}),
        serde_json::json!({"resume": w.run}),
    ] {
        let r = send(
            client()
                .post(w.server.url("/v1/restore-all"))
                .bearer_auth(RD)
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await;
        assert_eq!(r.status, 403, "{body}");
    }
}
