//! The done-when check on the quickstart: `serve` with
//! `examples/quickstart.toml`'s settings (no tokens, loopback) answers `GET /` with the
//! console's page, and the console's history page of `crm/production` lists exactly
//! what `jetvault list crm production` lists.

use std::path::Path;

use serde_json::Value;

use crate::harness::browser::{Browser, DESKTOP};
use crate::harness::serve::Server;

const QUICKSTART: &str = include_str!("../../examples/quickstart.toml");

/// The quickstart's config in `dir`, with its live files beside it (its paths are
/// relative to the config file) and its store in `dir` rather than the working directory.
fn quickstart(dir: &Path) -> String {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/live");
    std::fs::create_dir_all(dir.join("live")).unwrap();
    for entry in std::fs::read_dir(&examples).unwrap().flatten() {
        std::fs::copy(entry.path(), dir.join("live").join(entry.file_name())).unwrap();
    }
    assert!(
        QUICKSTART.contains("[apps.crm.envs.production]") && !QUICKSTART.contains("\nstore ="),
        "the quickstart changed: this test sets the store itself"
    );
    format!(
        "store = \"file://{}\"\n{QUICKSTART}",
        dir.join("store").display()
    )
}

fn list(server: &Server) -> Vec<Value> {
    let out = server
        .cli()
        .args(["--json", "list", "crm", "production"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["snapshots"].as_array().or(v.as_array()).unwrap();
    rows.iter().map(|s| s["version"].clone()).collect()
}

#[tokio::test]
async fn the_quickstart_serves_the_console_and_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &quickstart(dir.path()));
    // Three versions of crm/production, backed up from its live file.
    let live = dir.path().join("live/crm-production.json");
    for n in 1..=3 {
        let mut flow: Value = serde_json::from_slice(&std::fs::read(&live).unwrap()).unwrap();
        flow["quickstart_test_edit"] = Value::from(n);
        std::fs::write(&live, serde_json::to_vec_pretty(&flow).unwrap()).unwrap();
        let out = server
            .cli()
            .args(["backup", "crm", "production", "-m", &format!("edit {n}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // `curl -s 127.0.0.1:8080/`: the console's page, without a token.
    let res = reqwest::get(server.url("/")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(
        html.contains("<title>jetvault</title>") && html.contains("/console/app.js"),
        "{html}"
    );

    let Some(b) = Browser::open(DESKTOP).await else {
        return;
    };
    // A scheduled backup (every 5 minutes in the quickstart) may land meanwhile: compare
    // only when the list is the same before and after the page was read.
    let mut tries = 0;
    loop {
        let before = list(&server);
        assert!(before.len() >= 3, "{before:?}");
        b.goto(&server.url("/#/e/crm/production")).await;
        b.wait_text("#history", "v1").await;
        assert_eq!(b.text("#who").await, "role: operate", "no sign-in needed");
        let shown = b
            .js("return [...document.querySelectorAll('#history tbody tr')].map(r => Number(r.dataset.version))")
            .await;
        if before == list(&server) {
            assert_eq!(shown, Value::Array(before));
            break;
        }
        tries += 1;
        assert!(tries < 3, "the history kept changing");
    }
    b.close().await;
}
