//! The console's second round of actions in a real headless Chromium: a version compared
//! with live, pin and unpin, promote (with a release in the target), and the last
//! verify's result in the overview, ok and then failed. The world, sign-in and helpers
//! are those of [`crate::console`].

use serde_json::Value;

use crate::console::{World, cli, click_row_button, no_serious_violations, sign_in, world};
use crate::harness::browser::{Browser, DESKTOP};
use crate::harness::serve::{OP, client, send};

/// The pinned versions of crm/production, read through the API.
async fn pins(w: &World) -> Value {
    let r = send(
        client()
            .get(w.server.url("/v1/apps/crm/envs/production/pins"))
            .bearer_auth(OP),
    )
    .await;
    r.json()["pins"].clone()
}

#[tokio::test]
async fn compare_with_live_pin_and_promote() {
    let w = world();
    let Some(b) = Browser::open(DESKTOP).await else {
        return;
    };
    sign_in(&b, &w.server, OP).await;
    b.goto(&w.server.url("/#/e/crm/production")).await;
    b.wait_text("#history", "v3").await;

    // Live holds "edit 3"; v1 is "edit 1": one change, named with both values.
    click_row_button(&b, 1, "Compare with live").await;
    let counts = b.wait_text("#counts", "changed").await;
    assert!(counts.contains("1 changed"), "{counts}");
    let changes = b.text("#changes").await;
    assert!(
        changes.contains("edit 3") && changes.contains("edit 1"),
        "{changes}"
    );
    assert!(b.text("#main").await.contains("crm-production.json"));
    no_serious_violations(&b, "live diff").await;
    b.screenshot("live-diff-desktop").await;

    // Pin v1 from the history page, then unpin it; the store says so each time.
    b.goto(&w.server.url("/#/e/crm/production")).await;
    b.wait_text("#history", "v3").await;
    click_row_button(&b, 1, "Pin").await;
    b.wait_text("#toast", "Pinned v1").await;
    b.wait_text("#history tr[data-version='1']", "pinned").await;
    assert_eq!(pins(&w).await, serde_json::json!([1]));
    click_row_button(&b, 1, "Unpin").await;
    b.wait_text("#toast", "Unpinned v1").await;
    assert_eq!(pins(&w).await, serde_json::json!([]));

    // Promote v2 into crm/staging (which has history of its own) and release it there.
    let other = w.dir.path().join("staging.json");
    std::fs::write(&other, b"{\"staging\": 1}").unwrap();
    cli(
        &w.server,
        &[
            "backup",
            "crm",
            "staging",
            "--from",
            other.to_str().unwrap(),
        ],
    );
    b.goto(&w.server.url("/#/e/crm/production/v/2")).await;
    b.wait_text("dl.meta", "v2").await;
    b.client
        .find(fantoccini::Locator::XPath("//button[text()='Promote…']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let version = b.find("#promote-version").await;
    assert_eq!(version.prop("value").await.unwrap().as_deref(), Some("2"));
    b.find("#promote-release").await.click().await.unwrap();
    b.find("#promote-label")
        .await
        .send_keys("from-prod")
        .await
        .unwrap();
    no_serious_violations(&b, "promote dialog").await;
    b.screenshot("promote-desktop").await;
    b.find("#promote-submit").await.click().await.unwrap();
    b.wait_text("#toast", "Promoted v2 to staging").await;
    // The console moves to the target's history, where the copy carries the label.
    let history = b.wait_text("#history", "from-prod").await;
    assert!(history.contains("promote"), "{history}");
    let releases = cli(&w.server, &["--json", "releases", "crm", "staging"]);
    assert!(releases.contains("\"from-prod\""), "{releases}");
    b.close().await;
}

#[tokio::test]
async fn the_overview_shows_the_last_verify() {
    let w = world();
    let Some(b) = Browser::open(DESKTOP).await else {
        return;
    };
    sign_in(&b, &w.server, OP).await;
    let cell = b.wait_text("#envs .verify", "never").await;
    assert!(!cell.contains("ok"), "{cell}");

    // A verify from the CLI shows without a reload.
    cli(&w.server, &["verify", "crm", "production"]);
    let cell = b.wait_text("#envs .verify", "ok").await;
    assert!(cell.contains("3 checked"), "{cell}");
    no_serious_violations(&b, "overview with a verify").await;
    b.screenshot("overview-desktop").await;

    // Damage v1 in the store: the next verify fails (exit code 5 from the CLI), and
    // the overview says so, naming the snapshot.
    let snapshots = w
        .dir
        .path()
        .join("store/apps/crm/envs/production/snapshots");
    let v1 = std::fs::read_dir(&snapshots)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-v1.json.zst"))
        .expect("v1 in the store");
    std::fs::write(&v1, b"not a zstd frame").unwrap();
    let out = w
        .server
        .cli()
        .args(["verify", "crm", "production"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "verify finds the damage");
    let cell = b.wait_text("#envs .verify", "failed").await;
    assert!(cell.contains("1 bad"), "{cell}");
    assert!(cell.contains("-v1.json.zst"), "names the snapshot: {cell}");
    b.close().await;
}
