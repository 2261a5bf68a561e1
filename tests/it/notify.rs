//! Webhook notifications, end to end against a receiver in the test (axum on
//! 127.0.0.1, port 0): the real binary signs each body (the test checks the
//! signature with its own HMAC), sends no secret, retries a receiver that is down until
//! it is up (one delivery, one idempotency id), is not slowed by a slow receiver, and a
//! failed scheduled backup on LocalStack reaches the receiver signed within 5 s.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::harness::serve::{OP, RD, SMALL, Server, client, config, eventually, send};
use crate::harness::{Backend, StoreSpec, TestBucket, corpus, serve};

/// The HMAC key every test webhook signs with.
const KEY: &str = "hmac-key-planted-0c1d";
/// A live target's bearer token that must never reach a payload.
const LIVE_TOKEN: &str = "live-token-planted-77ab";

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    headers: HeaderMap,
    body: Bytes,
}

impl Got {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    fn event(&self) -> String {
        self.json()["event"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Checks `X-Jetvault-Signature` against the test's own HMAC of the body.
    fn assert_signed(&self) {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(KEY.as_bytes()).unwrap();
        mac.update(&self.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(self.header("x-jetvault-signature"), expected, "{self:?}");
    }
}

/// A webhook receiver: records every request; answers 503 to the first `fail_first`,
/// then 200 after `delay`.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    answered: Arc<AtomicUsize>,
    fail_first: usize,
    delay: Duration,
}

impl Receiver {
    /// Serves on `listener`; returns the webhook URL.
    fn serve(&self, listener: tokio::net::TcpListener) -> String {
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move {
                    let n = {
                        let mut got = me.got.lock().unwrap();
                        got.push(Got { headers, body });
                        got.len()
                    };
                    if n <= me.fail_first {
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    tokio::time::sleep(me.delay).await;
                    me.answered.fetch_add(1, Ordering::SeqCst);
                    StatusCode::OK
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    async fn start(self) -> (Self, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = self.serve(listener);
        (self, url)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// The requests of one event kind.
    fn of(&self, event: &str) -> Vec<Got> {
        self.got()
            .into_iter()
            .filter(|g| g.event() == event)
            .collect()
    }

    async fn wait_for(&self, event: &str, timeout: Duration) -> Got {
        eventually(&format!("a {event} notification"), timeout, || async {
            self.of(event).into_iter().next()
        })
        .await
    }
}

/// The `[notify]` tables: one signed webhook at `url`, quick retries.
fn notify_toml(dir: &Path, url: &str, extra: &str) -> String {
    let key_file = dir.join("webhook.key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    format!(
        "[notify]\nmin_backoff = \"100ms\"\nmax_backoff = \"400ms\"\nmax_attempts = 30\n{extra}\n\
         [[notify.webhooks]]\nname = \"test\"\nurl = {url:?}\nsecret_file = {:?}\nslack = true\n",
        key_file.display().to_string()
    )
}

/// `crm/production` from a live file, and `crm/staging` from an HTTP target on a closed
/// port whose bearer token is planted in a file.
fn apps_toml(dir: &Path) -> String {
    let live = dir.join("live.json");
    std::fs::write(&live, corpus(SMALL)).unwrap();
    let token = dir.join("live.token");
    std::fs::write(&token, LIVE_TOKEN).unwrap();
    format!(
        "[apps.crm.envs.production.live]\nkind = \"file\"\npath = {:?}\n\
         [apps.crm.envs.staging.live]\nkind = \"http\"\nurl = \"http://127.0.0.1:{}/export?t=x\"\n\
         bearer_token_file = {:?}\n",
        live.display().to_string(),
        crate::harness::closed_port(),
        token.display().to_string()
    )
}

/// Runs the CLI with `cfg` off the async runtime (the receiver keeps answering).
async fn cli(cfg: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = serve::with_config(cfg);
    cmd.args(args).env("JETVAULT_AUTHOR", "ana");
    tokio::task::spawn_blocking(move || cmd.output().expect("run jetvault"))
        .await
        .unwrap()
}

fn assert_no_secret(got: &[Got]) {
    for g in got {
        let text = format!("{:?} {}", g.headers, String::from_utf8_lossy(&g.body));
        for planted in [KEY, LIVE_TOKEN, OP, RD] {
            assert!(
                !text.contains(planted),
                "{planted} in a notification: {text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_notices_are_signed_filtered_and_carry_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (rx, url) = Receiver::default().start().await;
    let store = StoreSpec::local(&dir.path().join("store"));
    let cfg_path = dir.path().join("jetvault.toml");
    let text = config(
        &store,
        "",
        &format!(
            "{}{}",
            notify_toml(dir.path(), &url, ""),
            apps_toml(dir.path())
        ),
    );
    std::fs::write(&cfg_path, text).unwrap();

    let out = cli(&cfg_path, &["backup", "crm", "production"]).await;
    assert!(out.status.success(), "{out:?}");
    let out = cli(&cfg_path, &["release", "crm", "production", "1"]).await;
    assert!(out.status.success(), "{out:?}");
    // A failing backup keeps its exit code; its notice names the failure, not the token.
    let out = cli(&cfg_path, &["backup", "crm", "staging"]).await;
    assert!(!out.status.success(), "{out:?}");

    // The CLI waited for its notices at exit: they are all there now.
    let written = rx.of("snapshot-written");
    assert_eq!(written.len(), 1, "{:?}", rx.got());
    let released = rx.of("released");
    assert_eq!(released.len(), 1, "{:?}", rx.got());
    let failed = rx.of("backup-failed");
    assert_eq!(failed.len(), 1, "{:?}", rx.got());
    for g in rx.got() {
        g.assert_signed();
        let body = g.json();
        assert_eq!(g.header("idempotency-key"), body["id"].as_str().unwrap());
        assert_eq!(
            g.header("x-jetvault-event"),
            body["event"].as_str().unwrap()
        );
        assert_eq!(body["app"], "crm");
        assert!(
            body["text"].as_str().unwrap().starts_with("jetvault ["),
            "{body}"
        );
    }
    let w = written[0].json();
    assert_eq!(w["env"], "production");
    assert_eq!(w["version"], 1);
    assert_eq!(w["actor"]["who"], "ana");
    assert_eq!(w["actor"]["via"], "cli");
    let f = failed[0].json();
    assert_eq!(f["env"], "staging");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("backup of crm/staging failed"),
        "{f}"
    );
    assert_no_secret(&rx.got());

    // A filter: a webhook for failures only hears of none of the successes.
    let (only, only_url) = Receiver::default().start().await;
    let text = config(
        &store,
        "",
        &format!(
            "{}events = [\"backup-failed\"]\n{}",
            notify_toml(dir.path(), &only_url, ""),
            apps_toml(dir.path())
        ),
    );
    std::fs::write(&cfg_path, text).unwrap();
    let out = cli(&cfg_path, &["backup", "crm", "production", "--force"]).await;
    assert!(out.status.success(), "{out:?}");
    let out = cli(&cfg_path, &["backup", "crm", "staging"]).await;
    assert!(!out.status.success(), "{out:?}");
    let events: Vec<String> = only.got().iter().map(Got::event).collect();
    assert_eq!(events, ["backup-failed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_then_up_gets_the_notice_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::harness::closed_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let store = StoreSpec::local(&dir.path().join("store"));
    let cfg_path = dir.path().join("jetvault.toml");
    let text = config(
        &store,
        "",
        &format!(
            "{}{}",
            notify_toml(dir.path(), &url, "exit_wait = \"20s\""),
            apps_toml(dir.path())
        ),
    );
    std::fs::write(&cfg_path, text).unwrap();

    let mut cmd = serve::with_config(&cfg_path);
    cmd.args(["backup", "crm", "production"]);
    let run = tokio::task::spawn_blocking(move || cmd.output().expect("run jetvault"));
    // Nothing listens yet: the first attempts are refused. Then the receiver comes up
    // on that port, and a retry reaches it.
    let rx = Receiver::default();
    let listener = eventually(
        "the backup's first attempts",
        Duration::from_secs(30),
        || {
            let run_done = run.is_finished();
            async move {
                assert!(!run_done, "the CLI exited before the receiver was up");
                tokio::time::sleep(Duration::from_millis(500)).await;
                tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .ok()
            }
        },
    )
    .await;
    rx.serve(listener);
    let out = run.await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let got = rx.got();
    assert_eq!(got.len(), 1, "delivered once: {got:?}");
    assert_eq!(got[0].event(), "snapshot-written");
    got[0].assert_signed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_of_a_failing_receiver_carry_one_idempotency_id() {
    let dir = tempfile::tempdir().unwrap();
    let (rx, url) = Receiver {
        fail_first: 2,
        ..Receiver::default()
    }
    .start()
    .await;
    let store = StoreSpec::local(&dir.path().join("store"));
    let cfg_path = dir.path().join("jetvault.toml");
    let text = config(
        &store,
        "",
        &format!(
            "{}{}",
            notify_toml(dir.path(), &url, ""),
            apps_toml(dir.path())
        ),
    );
    std::fs::write(&cfg_path, text).unwrap();
    let out = cli(&cfg_path, &["backup", "crm", "production"]).await;
    assert!(out.status.success(), "{out:?}");
    let got = rx.got();
    assert_eq!(got.len(), 3, "two 503s, then accepted: {got:?}");
    let ids: std::collections::BTreeSet<&str> =
        got.iter().map(|g| g.header("idempotency-key")).collect();
    assert_eq!(ids.len(), 1, "one id on every attempt: {ids:?}");
    assert!(
        got.iter().all(|g| g.body == got[0].body),
        "the same body each time"
    );
    assert_eq!(rx.answered.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_receiver_does_not_slow_a_backup() {
    let sleep = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let (rx, url) = Receiver {
        delay: sleep,
        ..Receiver::default()
    }
    .start()
    .await;
    let store = StoreSpec::local(&dir.path().join("store"));
    let text = config(
        &store,
        "",
        &format!(
            "{}{}",
            notify_toml(dir.path(), &url, "timeout = \"30s\""),
            apps_toml(dir.path())
        ),
    );
    let server = Server::start(dir.path(), &text);
    let started = Instant::now();
    let r = send(
        client()
            .post(server.url("/v1/apps/crm/envs/production/snapshots"))
            .bearer_auth(OP)
            .body(corpus(SMALL)),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(r.status, 201, "{r:?}");
    // The notice reached the receiver, which has not answered yet: the backup did not
    // wait for it.
    let got = rx
        .wait_for("snapshot-written", Duration::from_secs(30))
        .await;
    got.assert_signed();
    assert_eq!(
        rx.answered.load(Ordering::SeqCst),
        0,
        "the receiver answered already"
    );
    assert!(
        took < sleep / 2,
        "the backup took {took:?}, the receiver sleeps {sleep:?}"
    );
}

/// The "done when": a failed scheduled backup reaches a webhook receiver within
/// 5 s, signed, with the store on LocalStack; after `failures_in_a_row` failures, one
/// `scheduled-backup-failing`; `/metrics` counts the deliveries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_scheduled_backup_reaches_the_webhook_signed_localstack() {
    let Some(bucket) = TestBucket::new(Backend::LocalStack, "notify").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (rx, url) = Receiver::default().start().await;
    let store = bucket.spec("jetvault");
    let missing = dir.path().join("missing.json");
    let apps = format!(
        "[apps.crm.envs.production]\nschedule = \"* * * * * *\"\n\
         [apps.crm.envs.production.live]\nkind = \"file\"\npath = {:?}\n",
        missing.display().to_string()
    );
    let text = config(
        &store,
        "",
        &format!(
            "{}{apps}",
            notify_toml(dir.path(), &url, "failures_in_a_row = 2")
        ),
    );
    let server = Server::start(dir.path(), &text);
    let failed = rx.wait_for("backup-failed", Duration::from_secs(5)).await;
    failed.assert_signed();
    let body = failed.json();
    assert_eq!(body["env"], "production");
    assert_eq!(body["actor"]["via"], "schedule");
    assert!(
        body["message"].as_str().unwrap().contains("missing.json"),
        "{body}"
    );

    let failing = rx
        .wait_for("scheduled-backup-failing", Duration::from_secs(10))
        .await;
    failing.assert_signed();
    assert!(
        failing.json()["message"]
            .as_str()
            .unwrap()
            .contains("2 times in a row")
    );
    assert_no_secret(&rx.got());

    let delivered = eventually("the delivered counter", Duration::from_secs(10), || async {
        let r = send(client().get(server.url("/metrics")).bearer_auth(RD)).await;
        let text = String::from_utf8(r.body.to_vec()).unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix("jetvault_notifications_total{hook=\"test\",outcome=\"delivered\"} ")
            })
            .and_then(|n| n.trim().parse::<u64>().ok())
            .filter(|n| *n >= 2)
    })
    .await;
    assert!(delivered >= 2);
    // Once per streak: still one `scheduled-backup-failing` after more failures.
    eventually("two more failures", Duration::from_secs(10), || async {
        (rx.of("backup-failed").len() >= 4).then_some(())
    })
    .await;
    assert_eq!(rx.of("scheduled-backup-failing").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_names_a_missing_webhook_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let missing = dir.path().join("gone.key");
    let text = config(
        &store,
        "",
        &format!(
            "[[notify.webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/hook\"\n\
             secret_file = {:?}\n",
            missing.display().to_string()
        ),
    );
    let cfg_path = dir.path().join("jetvault.toml");
    std::fs::write(&cfg_path, text).unwrap();
    let out = cli(&cfg_path, &["config", "check"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    // A warning (the file may exist only where the service runs), naming hook and file.
    assert!(out.status.success(), "{out:?}");
    assert!(
        stderr.contains("gone.key") && stderr.contains("\"ops\""),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_over_http_sends_the_verify_problem_notice() {
    let dir = tempfile::tempdir().unwrap();
    let (rx, url) = Receiver::default().start().await;
    let store_dir = dir.path().join("store");
    let store = StoreSpec::local(&store_dir);
    let text = config(
        &store,
        "",
        &format!(
            "{}{}",
            notify_toml(dir.path(), &url, ""),
            apps_toml(dir.path())
        ),
    );
    let cfg_path = dir.path().join("jetvault.toml");
    std::fs::write(&cfg_path, &text).unwrap();
    let out = cli(&cfg_path, &["backup", "crm", "production"]).await;
    assert!(out.status.success(), "{out:?}");
    // Damage the stored snapshot: verify over HTTP must find it and say so to the hook.
    let env = jetvault_core::EnvRef::parse("crm", "production").unwrap();
    let object = store_dir.join(jetvault_core::layout::snapshot_key(&env, 1));
    std::fs::write(&object, b"not zstd at all").unwrap();

    let server = Server::start(dir.path(), &text);
    let r = send(
        client()
            .post(server.url("/v1/apps/crm/envs/production/verify"))
            .bearer_auth(OP),
    )
    .await;
    assert_eq!(r.status, 200, "{r:?}");
    let report = r.json();
    assert_eq!(report["bad"].as_array().map(Vec::len), Some(1), "{report}");
    let notice = rx.wait_for("verify-problem", Duration::from_secs(10)).await;
    notice.assert_signed();
    let body = notice.json();
    assert_eq!(body["env"], "production");
    assert_eq!(body["actor"]["via"], "api", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("1 bad snapshots"),
        "{body}"
    );
    assert_no_secret(&rx.got());
}
