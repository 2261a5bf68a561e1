//! The web console in a real headless Chromium (chromedriver from `scripts/test`): sign
//! in, the overview, a history page, a diff, release (and a conflicting one), rollback,
//! restore with its typed confirmation, a read-only token, a keyboard-only restore; axe-core
//! on every page; screenshots at both sizes.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;

use crate::harness::browser::{Browser, DESKTOP, PHONE};
use crate::harness::serve::{OP, RD, Server, config};
use crate::harness::{NODERED, StoreSpec, corpus, sha256};

const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

/// A served store with `crm/production` (a file live target): three snapshots of the
/// Node-RED corpus flow, each edited, and v2 released.
pub struct World {
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub live: PathBuf,
    pub versions: Vec<Value>,
}

pub fn edited(n: usize) -> Vec<u8> {
    let mut flow: Value = serde_json::from_slice(&corpus(NODERED)).unwrap();
    flow[0]["name"] = Value::String(format!("edit {n}"));
    serde_json::to_vec_pretty(&flow).unwrap()
}

pub fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let live = dir.path().join("crm-production.json");
    let apps = format!(
        "[apps.crm.envs.production]\nlive = {{ kind = \"file\", path = {:?} }}\n",
        live.display().to_string()
    );
    let server = Server::start(dir.path(), &config(&store, "", &apps));
    for n in 1..=3 {
        std::fs::write(&live, edited(n)).unwrap();
        cli(
            &server,
            &["backup", "crm", "production", "-m", &format!("edit {n}")],
        );
    }
    cli(
        &server,
        &["release", "crm", "production", "2", "--label", "two"],
    );
    let list = cli(&server, &["--json", "list", "crm", "production"]);
    let versions = serde_json::from_str::<Value>(&list).unwrap()["snapshots"]
        .as_array()
        .cloned()
        .or_else(|| {
            serde_json::from_str::<Value>(&list)
                .unwrap()
                .as_array()
                .cloned()
        })
        .unwrap();
    World {
        dir,
        server,
        live,
        versions,
    }
}

pub fn cli(server: &Server, args: &[&str]) -> String {
    let out = server.cli().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "jetvault {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Signs in with `token` through the page's form.
pub async fn sign_in(b: &Browser, server: &Server, token: &str) {
    b.goto(&server.url("/")).await;
    let input = b.find("#token").await;
    input.send_keys(token).await.unwrap();
    b.find("form.signin button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#who", "role:").await;
}

pub async fn no_serious_violations(b: &Browser, page: &str) {
    let found = b.axe().await;
    assert!(found.is_empty(), "axe-core on {page}: {found:#?}");
}

#[tokio::test]
async fn sign_in_overview_history_and_diff() {
    let w = world();
    let Some(b) = Browser::open(DESKTOP).await else {
        return;
    };

    // The page itself: no inline script, framing refused.
    let res = reqwest::get(w.server.url("/")).await.unwrap();
    let csp = res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(res.headers()["x-frame-options"], "DENY");

    // A wrong token is refused, a right one signs in.
    b.goto(&w.server.url("/")).await;
    b.find("#token")
        .await
        .send_keys("not-a-token")
        .await
        .unwrap();
    b.find("form.signin button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text(".error", "invalid bearer token").await;
    no_serious_violations(&b, "sign-in").await;
    b.screenshot("sign-in-desktop").await;
    let input = b.find("#token").await;
    input.clear().await.unwrap();
    input.send_keys(OP).await.unwrap();
    b.find("form.signin button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_text("#who", "role: operate").await;
    let overview = b.wait_text("#envs", "crm/production").await;
    assert!(
        overview.contains("two"),
        "the release label shows: {overview}"
    );
    no_serious_violations(&b, "overview").await;
    b.screenshot("overview-desktop").await;

    // History lists what `jetvault list` lists.
    b.goto(&w.server.url("/#/e/crm/production")).await;
    b.wait_text("#history", "v3").await;
    let shown = b
        .js("return [...document.querySelectorAll('#history tbody tr')].map(r => Number(r.dataset.version))")
        .await;
    let listed: Vec<Value> = w.versions.iter().map(|v| v["version"].clone()).collect();
    assert_eq!(shown, Value::Array(listed));
    let row2 = b.text("#history tr[data-version='2']").await;
    assert!(row2.contains("two"), "v2 carries its release badge: {row2}");
    no_serious_violations(&b, "history").await;
    b.screenshot("history-desktop").await;

    // Pick two versions and compare them.
    b.find("#history tr[data-version='1'] input[type=checkbox]")
        .await
        .click()
        .await
        .unwrap();
    b.find("#history tr[data-version='3'] input[type=checkbox]")
        .await
        .click()
        .await
        .unwrap();
    b.find("#compare").await.click().await.unwrap();
    let counts = b.wait_text("#counts", "changed").await;
    assert!(counts.contains("1 changed"), "{counts}");
    let changes = b.text("#changes").await;
    assert!(
        changes.contains("edit 1") && changes.contains("edit 3"),
        "{changes}"
    );
    no_serious_violations(&b, "diff").await;
    b.screenshot("diff-desktop").await;

    // A snapshot: metadata, tree, search.
    b.goto(&w.server.url("/#/e/crm/production/v/3")).await;
    b.wait_text("dl.meta", &w.versions[0]["sha256"].as_str().unwrap()[..12])
        .await;
    b.find("#tree-search")
        .await
        .send_keys("edit 3")
        .await
        .unwrap();
    b.wait_text("#tree mark", "edit 3").await;
    no_serious_violations(&b, "snapshot").await;
    b.screenshot("snapshot-desktop").await;
    b.close().await;
}

#[tokio::test]
async fn the_phone_size_works() {
    let w = world();
    let Some(b) = Browser::open(PHONE).await else {
        return;
    };
    sign_in(&b, &w.server, OP).await;
    b.wait_text("#envs", "crm/production").await;
    b.screenshot("overview-phone").await;
    b.goto(&w.server.url("/#/e/crm/production")).await;
    b.wait_text("#history", "v3").await;
    // Nothing wider than the screen but the scrolling tables.
    let overflow = b
        .js("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        .await;
    assert_eq!(overflow, Value::Bool(true), "the page scrolls sideways");
    no_serious_violations(&b, "history (phone)").await;
    b.screenshot("history-phone").await;
    b.goto(&w.server.url("/#/e/crm/production/diff/1/3")).await;
    b.wait_text("#counts", "changed").await;
    b.screenshot("diff-phone").await;
    b.close().await;
}

#[tokio::test]
async fn release_conflict_rollback_and_restore() {
    let w = world();
    let Some(b) = Browser::open(DESKTOP).await else {
        return;
    };
    sign_in(&b, &w.server, OP).await;
    b.goto(&w.server.url("/#/e/crm/production")).await;
    b.wait_text("#history", "v3").await;

    // The dialog holds the pointer's ETag from when it opened; a release made elsewhere
    // meanwhile makes it stale, and nothing is overwritten.
    b.find("#history tr[data-version='1'] button").await;
    click_row_button(&b, 1, "Release").await;
    b.find("#release-label")
        .await
        .send_keys("one")
        .await
        .unwrap();
    cli(
        &w.server,
        &["release", "crm", "production", "3", "--label", "three"],
    );
    b.find("#release-submit").await.click().await.unwrap();
    b.wait_text("dialog .error", "Someone else released meanwhile")
        .await;
    let pointer = cli(&w.server, &["--json", "releases", "crm", "production"]);
    assert!(pointer.contains("\"three\""), "{pointer}");
    b.client
        .find(Locator::Css("dialog button.secondary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // Released afresh, it goes through.
    click_row_button(&b, 1, "Release").await;
    b.find("#release-label")
        .await
        .send_keys("one")
        .await
        .unwrap();
    b.find("#release-submit").await.click().await.unwrap();
    b.wait_text("#toast", "Released v1 as one").await;
    b.screenshot("release-desktop").await;

    // Rollback goes back to "three".
    b.wait_text("#main", "Roll back the release").await;
    let rollback = b
        .client
        .find(Locator::XPath("//button[text()='Roll back the release']"))
        .await
        .unwrap();
    rollback.click().await.unwrap();
    b.find("#rollback-submit").await.click().await.unwrap();
    b.wait_text("#toast", "Rolled back to v3").await;

    // Restore v1: the plan first, then the typed confirmation.
    std::fs::write(&w.live, b"{\"broken\": true}").unwrap();
    b.wait_text("#history", "v3").await;
    click_row_button(&b, 1, "Restore").await;
    b.wait_text("dialog", "to confirm").await;
    let go = b.find("#restore-submit").await;
    assert!(
        !go.is_enabled().await.unwrap(),
        "restore waits for the typed name"
    );
    b.find("#restore-confirm")
        .await
        .send_keys("production")
        .await
        .unwrap();
    no_serious_violations(&b, "restore dialog").await;
    b.screenshot("restore-desktop").await;
    go.click().await.unwrap();
    b.wait_text("#restore-outcome", "Restored v1").await;
    let undo = b.text("#restore-undo").await;
    assert!(undo.contains("Undo"), "{undo}");
    assert_eq!(sha256(&std::fs::read(&w.live).unwrap()), sha256(&edited(1)));
    b.close().await;
}

pub async fn click_row_button(b: &Browser, version: u64, label: &str) {
    let xpath = format!("//tr[@data-version='{version}']//button[text()='{label}']");
    let start = std::time::Instant::now();
    loop {
        if let Ok(el) = b.client.find(Locator::XPath(&xpath)).await
            && el.click().await.is_ok()
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no button {xpath}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_read_token_sees_every_action_disabled() {
    let w = world();
    let Some(b) = Browser::open(DESKTOP).await else {
        return;
    };
    sign_in(&b, &w.server, RD).await;
    b.wait_text("#who", "role: read").await;
    b.goto(&w.server.url("/#/e/crm/production")).await;
    b.wait_text("#history", "v3").await;
    let enabled = b
        .js(
            "return [...document.querySelectorAll('#main button')].filter(x => \
             ['Back up now','Upload a JSON file','Roll back the release','Release','Restore',\
              'Pin','Unpin','Promote…','Compare with live']\
             .includes(x.textContent) && !x.disabled).length",
        )
        .await;
    assert_eq!(
        enabled,
        Value::from(0),
        "no action is possible with a read token"
    );
    // And the API refuses them anyway.
    let res = reqwest::Client::new()
        .post(w.server.url("/v1/apps/crm/envs/production/backup"))
        .bearer_auth(RD)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = reqwest::Client::new()
        .post(w.server.url("/v1/apps/crm/envs/production/pins/1"))
        .bearer_auth(RD)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    b.close().await;
}

#[tokio::test]
async fn a_restore_by_keyboard_alone() {
    let w = world();
    let Some(b) = Browser::open(DESKTOP).await else {
        return;
    };
    sign_in(&b, &w.server, OP).await;
    b.goto(&w.server.url("/#/e/crm/production")).await;
    b.wait_text("#history", "v3").await;
    std::fs::write(&w.live, b"{\"broken\": true}").unwrap();
    // Tab until the focus is on v2's Restore button.
    let mut found = false;
    for _ in 0..80 {
        b.client
            .active_element()
            .await
            .unwrap()
            .send_keys(TAB)
            .await
            .unwrap();
        let at = b
            .js(
                "const e = document.activeElement; const r = e && e.closest('tr'); \
                 return (r ? r.dataset.version : '') + ':' + e.textContent",
            )
            .await;
        if at == Value::String("2:Restore".into()) {
            found = true;
            break;
        }
    }
    assert!(found, "Tab never reached v2's Restore button");
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(ENTER)
        .await
        .unwrap();
    // The dialog opens with the focus in it; type the name, tab to Restore, press Enter.
    b.wait_text("dialog", "to confirm").await;
    let start = std::time::Instant::now();
    while b.js("return document.activeElement.id").await != Value::String("restore-confirm".into())
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the focus is not in the dialog"
        );
        b.client
            .active_element()
            .await
            .unwrap()
            .send_keys(TAB)
            .await
            .unwrap();
    }
    let active = b.client.active_element().await.unwrap();
    active.send_keys("production").await.unwrap();
    for _ in 0..6 {
        if b.js("return document.activeElement.id").await == Value::String("restore-submit".into())
        {
            break;
        }
        b.client
            .active_element()
            .await
            .unwrap()
            .send_keys(TAB)
            .await
            .unwrap();
    }
    assert_eq!(
        b.js("return document.activeElement.id").await,
        Value::String("restore-submit".into())
    );
    b.client
        .active_element()
        .await
        .unwrap()
        .send_keys(ENTER)
        .await
        .unwrap();
    b.wait_text("#restore-outcome", "Restored v2").await;
    assert_eq!(sha256(&std::fs::read(&w.live).unwrap()), sha256(&edited(2)));
    b.close().await;
}

#[tokio::test]
async fn the_overview_shows_a_release_made_elsewhere() {
    let w = world();
    let Some(b) = Browser::open(DESKTOP).await else {
        return;
    };
    sign_in(&b, &w.server, OP).await;
    b.wait_text("#envs", "two").await;
    cli(
        &w.server,
        &["release", "crm", "production", "3", "--label", "elsewhere"],
    );
    // No reload: the overview polls (every 3 s); wait_text gives up after 10 s.
    b.wait_text("#envs", "elsewhere").await;
    b.close().await;
}

/// A scheduled backup that fails shows in the overview, with its error and the next run.
#[tokio::test]
async fn a_failing_schedule_shows_in_the_overview() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let missing = dir.path().join("gone.json");
    let apps = format!(
        "[apps.crm.envs.staging]\nlive = {{ kind = \"file\", path = {:?} }}\nschedule = \"* * * * * *\"\n",
        missing.display().to_string()
    );
    let server = Server::start(dir.path(), &config(&store, "", &apps));
    let Some(b) = Browser::open(DESKTOP).await else {
        return;
    };
    b.goto(&server.url("/")).await;
    b.find("#token").await.send_keys(OP).await.unwrap();
    b.find("form.signin button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    let cell = b.wait_text("#envs .schedule", "failed").await;
    assert!(cell.contains("next"), "{cell}");
    assert!(
        cell.contains("gone.json"),
        "the error names the file: {cell}"
    );
    b.close().await;
}

/// The overview's rows are built as one string of HTML: text from the server (here a
/// live path and the error naming it) shows as text, never as markup.
#[tokio::test]
async fn the_overview_shows_markup_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let odd = dir.path().join("<i id=\"x\">odd</i>&amp;.json");
    let apps = format!(
        "[apps.crm.envs.staging]\nlive = {{ kind = \"file\", path = {:?} }}\nschedule = \"* * * * * *\"\n",
        odd.display().to_string()
    );
    let server = Server::start(dir.path(), &config(&store, "", &apps));
    let Some(b) = Browser::open(DESKTOP).await else {
        return;
    };
    sign_in(&b, &server, OP).await;
    let cell = b.wait_text("#envs .schedule", "failed").await;
    assert!(cell.contains("<i id=\"x\">odd</i>&amp;.json"), "{cell}");
    let live = b.text("#envs td.mono").await;
    assert!(live.contains("<i id=\"x\">odd</i>&amp;.json"), "{live}");
    assert_eq!(
        b.js("return document.querySelectorAll('#x, #envs i').length")
            .await,
        Value::from(0),
        "no element was made from the text"
    );
    b.close().await;
}
