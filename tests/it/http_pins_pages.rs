//! The pin routes and the `Link: rel="next"` pages of the lists, through the real binary
//! on a local directory store.

use crate::harness::StoreSpec;
use crate::harness::serve::{OP, RD, Server, client, config, send};
use serde_json::{Value, json};

const ENV: &str = "/v1/apps/crm/envs/production";

fn server(dir: &tempfile::TempDir) -> Server {
    let store = StoreSpec::local(&dir.path().join("store"));
    Server::start(dir.path(), &config(&store, "", ""))
}

/// The path and query of a `Link: <...>; rel="next"` header.
fn next_link(link: Option<String>) -> Option<String> {
    let link = link?;
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    Some(link[1..link.find('>').unwrap()].to_string())
}

#[tokio::test]
async fn pages_link_to_the_next_and_pins_come_and_go() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir);
    let http = client();
    for n in 1..=5 {
        let r = send(
            http.post(s.url(&format!("{ENV}/snapshots")))
                .bearer_auth(OP)
                .body(json!({"n": n}).to_string()),
        )
        .await;
        assert_eq!(r.status, 201, "{r:?}");
        let r = send(
            http.post(s.url(&format!("{ENV}/release")))
                .bearer_auth(OP)
                .body(json!({"version": n}).to_string()),
        )
        .await;
        assert_eq!(r.status, 201, "{r:?}");
    }

    // Following Link from the first page visits every snapshot once, newest first.
    for (list, key, field) in [
        ("snapshots", Some("snapshots"), "version"),
        ("releases", None, "seq"),
    ] {
        let mut seen = Vec::new();
        let mut next = Some(format!("{ENV}/{list}?limit=2"));
        while let Some(path) = next {
            let r = send(http.get(s.url(&path)).bearer_auth(RD)).await;
            assert_eq!(r.status, 200, "{path}: {r:?}");
            let body = r.json();
            let items = key.map_or(&body, |k| &body[k]).as_array().unwrap().clone();
            seen.extend(items.iter().map(|i| i[field].as_u64().unwrap()));
            next = next_link(r.header("link"));
            assert!(seen.len() <= 5, "{list}: pages do not end: {seen:?}");
        }
        assert_eq!(seen, vec![5, 4, 3, 2, 1], "{list}");
    }

    // Pins: 201 then 200 for the same pin; listed; unpinned; a second unpin is a 404.
    let pins = |r: Value| r["pins"].clone();
    let r = send(http.get(s.url(&format!("{ENV}/pins"))).bearer_auth(RD)).await;
    assert_eq!((r.status, pins(r.json())), (200, json!([])));
    let r = send(http.post(s.url(&format!("{ENV}/pins/v2"))).bearer_auth(RD)).await;
    assert_eq!(r.status, 403, "a read token cannot pin");
    for status in [201, 200] {
        let r = send(http.post(s.url(&format!("{ENV}/pins/v2"))).bearer_auth(OP)).await;
        assert_eq!(r.status, status, "{r:?}");
        assert_eq!(r.json()["version"], 2);
    }
    let r = send(
        http.post(s.url(&format!("{ENV}/pins/latest")))
            .bearer_auth(OP),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = send(http.get(s.url(&format!("{ENV}/pins"))).bearer_auth(RD)).await;
    assert_eq!(pins(r.json()), json!([2, 5]));
    let r = send(http.delete(s.url(&format!("{ENV}/pins/2"))).bearer_auth(OP)).await;
    assert_eq!((r.status, r.json()["changed"].clone()), (200, json!(true)));
    let r = send(http.delete(s.url(&format!("{ENV}/pins/2"))).bearer_auth(OP)).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.json()["error"]["code"], "not_found");
    let r = send(http.post(s.url(&format!("{ENV}/pins/9"))).bearer_auth(OP)).await;
    assert_eq!(r.status, 404, "no such snapshot: {r:?}");
    let r = send(http.get(s.url(&format!("{ENV}/pins"))).bearer_auth(RD)).await;
    assert_eq!(pins(r.json()), json!([5]));
}
