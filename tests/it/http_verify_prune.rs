//! The verify and prune routes and the events' `Link: rel="next"` pages, through the
//! real binary on a local directory store.

use crate::harness::StoreSpec;
use crate::harness::serve::{OP, RD, Server, client, config, send};
use serde_json::json;

const ENV: &str = "/v1/apps/crm/envs/production";

#[tokio::test]
async fn verify_reports_prune_plans_then_deletes_and_events_page() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let s = Server::start(dir.path(), &config(&store, "", ""));
    let http = client();
    for n in 1..=5 {
        let r = send(
            http.post(s.url(&format!("{ENV}/snapshots")))
                .bearer_auth(OP)
                .body(json!({"n": n}).to_string()),
        )
        .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let r = send(
        http.post(s.url(&format!("{ENV}/release")))
            .bearer_auth(OP)
            .body(json!({"version": 2}).to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");

    // Verify: operate only; every snapshot checked, or a sample plus the latest.
    let verify = |token: &'static str, body: Option<serde_json::Value>| {
        let req = http
            .post(s.url(&format!("{ENV}/verify")))
            .bearer_auth(token);
        send(match body {
            Some(b) => req.body(b.to_string()),
            None => req,
        })
    };
    assert_eq!(verify(RD, None).await.status, 403);
    let r = verify(OP, None).await;
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(
        (report["total"].as_u64(), report["checked"].as_u64()),
        (Some(5), Some(5))
    );
    assert_eq!(report["bad"], json!([]), "{report}");
    let r = verify(OP, Some(json!({"sample": 2}))).await;
    assert!(r.json()["checked"].as_u64().unwrap() <= 3, "{r:?}");
    for bad in [json!({"sample": 0}), json!({"sample": 1.5}), json!(null)] {
        assert_eq!(verify(OP, Some(bad.clone())).await.status, 400, "{bad}");
    }
    let r = send(
        http.post(s.url("/v1/apps/crm/envs/nothing/verify"))
            .bearer_auth(OP),
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");

    // Prune: no policy anywhere is a 400; the plan deletes nothing; the apply deletes
    // what the plan named, never the latest or the released one.
    let prune = |path: &'static str, body: serde_json::Value| {
        send(
            http.post(s.url(&format!("{ENV}/{path}")))
                .bearer_auth(OP)
                .body(body.to_string()),
        )
    };
    let r = prune("prune/plan", json!({})).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "invalid_input".to_string()),
        "{r:?}"
    );
    let keep_one = json!({"retention": {"keep_last": 1}});
    let plan = prune("prune/plan", keep_one.clone()).await;
    assert_eq!(plan.status, 200, "{plan:?}");
    let plan = plan.json();
    assert_eq!(plan["dry_run"], true);
    let doomed: Vec<u64> = plan["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["keep"] == false)
        .map(|d| d["version"].as_u64().unwrap())
        .collect();
    assert_eq!(doomed, [4, 3, 1], "{plan}");
    let r = send(http.get(s.url(&format!("{ENV}/snapshots"))).bearer_auth(RD)).await;
    assert_eq!(
        r.json()["snapshots"].as_array().unwrap().len(),
        5,
        "the plan deleted nothing"
    );
    let r = send(
        http.post(s.url(&format!("{ENV}/prune")))
            .bearer_auth(RD)
            .body(keep_one.to_string()),
    )
    .await;
    assert_eq!(r.status, 403, "a read token cannot prune");
    let applied = prune("prune", keep_one).await;
    assert_eq!(applied.status, 200, "{applied:?}");
    assert_eq!(applied.json()["deleted"], 3, "{applied:?}");
    let r = send(http.get(s.url(&format!("{ENV}/snapshots"))).bearer_auth(RD)).await;
    let left: Vec<u64> = r.json()["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_u64().unwrap())
        .collect();
    assert_eq!(left, [5, 2]);

    // Events, two at a time by Link: every one once, newest first (the prune last).
    let mut actions = Vec::new();
    let mut next = Some(format!("{ENV}/events?limit=2"));
    while let Some(path) = next {
        let r = send(http.get(s.url(&path)).bearer_auth(RD)).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        let page = r.json();
        assert!(page.as_array().unwrap().len() <= 2);
        actions.extend(
            page.as_array()
                .unwrap()
                .iter()
                .map(|e| e["action"].as_str().unwrap().to_string()),
        );
        next = r.header("link").map(|l| {
            assert!(l.ends_with("; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_string()
        });
        assert!(actions.len() <= 7, "pages do not end: {actions:?}");
    }
    assert_eq!(actions.len(), 7, "{actions:?}");
    assert_eq!(actions[0], "prune", "{actions:?}");
    assert_eq!(actions.iter().filter(|a| *a == "release").count(), 1);
    let r = send(
        http.get(s.url(&format!("{ENV}/events?after=../x")))
            .bearer_auth(RD),
    )
    .await;
    assert_eq!(r.status, 400, "{r:?}");
}
