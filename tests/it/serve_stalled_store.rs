//! `jetvault serve` while another process holds the directory store's lock (here: the
//! test process, with an exclusive `flock` on `.jvlock`): the release and the released
//! configuration keep being served from memory, marked `X-Jetvault-Stale`, `/readyz`
//! says 503, the metric counts it; once the lock is released, answers are fresh again.

use std::time::Duration;

use crate::harness::serve::{MEDIUM, OP, RD, Server, client, config, eventually, send};
use crate::harness::{StoreSpec, corpus};

const ENV: &str = "/v1/apps/crm/envs/production";

#[tokio::test]
async fn a_held_lock_serves_the_cached_release_as_stale() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let server = Server::start(dir.path(), &config(&store, "", ""));
    let http = client();
    let get = |path: &str| http.get(server.url(path)).bearer_auth(RD);

    let r = send(
        http.post(server.url(&format!("{ENV}/snapshots")))
            .bearer_auth(OP)
            .body(corpus(MEDIUM)),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = send(
        http.post(server.url(&format!("{ENV}/release")))
            .bearer_auth(OP)
            .body(r#"{"version": 1}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");
    let fresh = send(get(&format!("{ENV}/release"))).await;
    assert_eq!(fresh.status, 200);
    assert_eq!(fresh.header("x-jetvault-stale"), None);
    let config_fresh = send(get(&format!("{ENV}/release/config"))).await;
    assert_eq!(config_fresh.status, 200);
    assert_eq!(config_fresh.header("x-jetvault-stale"), None);

    // Another process takes the lock and keeps it.
    let lock = std::fs::File::open(store.dir().join(".jvlock")).unwrap();
    lock.lock().unwrap();
    // Past pointer_ttl (1 s), reads revalidate, and the store does not answer.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stale = send(get(&format!("{ENV}/release"))).await;
    assert_eq!(stale.status, 200, "{stale:?}");
    assert_eq!(stale.body, fresh.body);
    let age: u64 = stale
        .header("x-jetvault-stale")
        .expect("X-Jetvault-Stale on a pointer the store could not confirm")
        .parse()
        .unwrap();
    assert!(age >= 1, "{age}");
    let config_stale = send(get(&format!("{ENV}/release/config"))).await;
    assert_eq!(config_stale.status, 200);
    assert_eq!(config_stale.body, config_fresh.body);
    assert!(config_stale.header("x-jetvault-stale").is_some());

    let ready = send(http.get(server.url("/readyz"))).await;
    assert_eq!(ready.status, 503, "{ready:?}");
    let metrics = send(get("/metrics")).await;
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    let line = text
        .lines()
        .find(|l| l.starts_with("jetvault_pointer_stale_served_total "))
        .unwrap_or_else(|| panic!("{text}"));
    assert_ne!(line, "jetvault_pointer_stale_served_total 0");

    lock.unlock().unwrap();
    eventually("a fresh release", Duration::from_secs(30), || async {
        let r = send(get(&format!("{ENV}/release"))).await;
        (r.status == 200 && r.header("x-jetvault-stale").is_none()).then_some(())
    })
    .await;
    eventually("ready", Duration::from_secs(30), || async {
        (send(http.get(server.url("/readyz"))).await.status == 200).then_some(())
    })
    .await;
}
