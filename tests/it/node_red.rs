//! jetvault against a real Node-RED 4.1 (`platforms/node-red.sh`, started once per run
//! by `scripts/test`, `adminAuth` on, tokens living 4 s), configured by the shipped
//! `examples/platforms/node-red.toml` with only its URL and password changed.
//!
//! Each API shape goes backup → edit → diff → release → wipe → restore, and then the
//! flow's `http in` endpoint answers as it did before the wipe.

use std::process::Command;

use serde_json::{Value, json};

use crate::harness::cli::{Jv, Run};
use crate::harness::node_red::{NodeRed, http_endpoint_flow};
use crate::harness::proxy::{Mode, Proxy};

/// Node-RED's default URL in the shipped example.
const DEFAULT_URL: &str = "http://127.0.0.1:1880";
/// The template node of the corpus flow: what `GET /hello` answers.
const TEMPLATE_ID: &str = "db134063.83b7a";
/// The variable the example reads the admin password from.
const PASSWORD_VAR: &str = "NODE_RED_PASSWORD";

/// The example config pointed at `url`.
fn example_config(url: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/platforms/node-red.toml"
    );
    let text = std::fs::read_to_string(path).expect("examples/platforms/node-red.toml");
    assert!(
        text.contains(DEFAULT_URL),
        "the example uses Node-RED's default URL"
    );
    // The example names no store: the test world gives one.
    text.replace(DEFAULT_URL, url)
}

/// A test world whose config is the example, aimed at Node-RED at `url`.
fn world(nr: &NodeRed, url: &str) -> Jv {
    let jv = Jv::new();
    jv.write_config(&example_config(url));
    let _ = nr;
    jv
}

fn run(jv: &Jv, nr: &NodeRed, args: &[&str]) -> Run {
    let mut cmd: Command = jv.command(args);
    cmd.env(PASSWORD_VAR, &nr.password);
    cmd.output().expect("run jetvault").into()
}

fn ok(jv: &Jv, nr: &NodeRed, args: &[&str]) -> Run {
    let r = run(jv, nr, args);
    assert_eq!(r.code, 0, "jetvault {args:?} failed:\n{}", r.text());
    r
}

/// The flow with the page `GET /hello` answers changed to `page`.
fn with_page(flow: &Value, page: &str) -> Value {
    let mut flow = flow.clone();
    for n in flow.as_array_mut().expect("a flow is an array") {
        if n["id"] == TEMPLATE_ID {
            n["template"] = json!(page);
        }
    }
    flow
}

async fn round_trip(app: &str) {
    let env = "production";
    let Some(nr) = NodeRed::shared() else { return };
    let jv = world(&nr, &nr.url);
    let flow = http_endpoint_flow();
    nr.deploy(&flow).await;
    let before = nr.wait_for("/hello", 200).await;
    assert!(before.contains("Hello World!"), "{before}");

    let v1 = ok(&jv, &nr, &["--json", "backup", app, env]).json();
    assert_eq!(v1["version"], 1, "{v1}");

    // An edit in the editor, backed up.
    nr.deploy(&with_page(&flow, "<h1>Edited</h1>")).await;
    assert!(nr.wait_for("/hello", 200).await.contains("Edited"));
    let v2 = ok(&jv, &nr, &["--json", "backup", app, env]).json();
    assert_eq!(v2["version"], 2, "{v2}");

    // The diff is one line, naming the node.
    let diff = ok(&jv, &nr, &["diff", app, env, "1", "2"]).stdout;
    let lines: Vec<&str> = diff
        .lines()
        .filter(|l| {
            ["+ /", "- /", "~ /", "> /"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    assert_eq!(lines.len(), 1, "{diff}");
    assert!(lines[0].contains(TEMPLATE_ID), "{diff}");

    ok(
        &jv,
        &nr,
        &["release", app, env, "1", "--label", "before-edit"],
    );

    // The disaster: every flow gone.
    nr.wipe().await;
    nr.wait_for("/hello", 404).await;

    ok(&jv, &nr, &["restore", app, env, "release", "--yes"]);
    let after = nr.wait_for("/hello", 200).await;
    assert_eq!(after, before, "GET /hello answers as before the wipe");

    // History tells the truth: the newest snapshot is what is live, and an unchanged
    // backup writes nothing.
    let list = ok(&jv, &nr, &["--json", "list", app, env]).json();
    assert_eq!(list[0]["trigger"], "restore", "{list}");
    let again = ok(&jv, &nr, &["--json", "backup", app, env]).json();
    assert_eq!(again["version"], list[0]["version"], "{again}");
}

/// API v1: `GET /flows` is the bare array.
#[tokio::test]
async fn api_v1_round_trip() {
    round_trip("node-red-v1").await;
}

/// API v2: `{flows, rev}`; restore sends the current `rev` back (the stored one would
/// get `409 version_mismatch`).
#[tokio::test]
async fn api_v2_round_trip() {
    round_trip("node-red").await;
}

/// A proxy in front of Node-RED answers 503 (the platform restarting): restore refuses,
/// pushes nothing, and the flows are what they were.
#[tokio::test]
async fn restore_through_a_503_proxy_is_refused() {
    let Some(nr) = NodeRed::shared() else { return };
    let proxy = Proxy::start(&nr.url);
    let jv = world(&nr, &proxy.endpoint);
    let flow = http_endpoint_flow();
    nr.deploy(&flow).await;
    nr.wait_for("/hello", 200).await;
    ok(&jv, &nr, &["backup", "node-red-v1", "production"]);
    let edited = with_page(&flow, "<h1>Unsaved work</h1>");
    nr.deploy(&edited).await;
    nr.wait_for("/hello", 200).await;

    proxy.set(Mode::Unavailable);
    let r = run(
        &jv,
        &nr,
        &["restore", "node-red-v1", "production", "1", "--yes"],
    );
    assert_eq!(r.code, 5, "{}", r.text());
    assert!(r.stderr.contains("503"), "{}", r.stderr);
    assert!(
        proxy
            .exchanges()
            .iter()
            .all(|e| !(e.method == "POST" && e.target.starts_with("/flows"))),
        "nothing was pushed"
    );
    proxy.set(Mode::Pass);
    assert!(nr.wait_for("/hello", 200).await.contains("Unsaved work"));
}

/// `serve` backs up both API shapes every second for 12 s while Node-RED's tokens live
/// 4 s: every scheduled backup succeeds, so the sign-in was renewed (before expiry, or
/// once after a 401) again and again inside one process.
#[tokio::test]
async fn scheduled_backups_outlive_the_token() {
    use crate::harness::StoreSpec;
    use crate::harness::serve::{Server, client, send};

    let Some(nr) = NodeRed::shared() else { return };
    nr.deploy(&http_endpoint_flow()).await;
    nr.wait_for("/hello", 200).await;
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let password = dir.path().join("node-red-password");
    std::fs::write(&password, &nr.password).unwrap();
    let apps = example_config(&nr.url)
        .replace(
            &format!("password_env = \"{PASSWORD_VAR}\""),
            &format!("password_file = {:?}", password.display().to_string()),
        )
        .replace(
            "schedule = \"0 */15 * * * *\"",
            "schedule = \"* * * * * *\"",
        );
    let server = Server::start(dir.path(), &format!("{}\n{apps}", store.toml()));
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    let metrics = send(client().get(server.url("/metrics"))).await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    for app in ["node-red", "node-red-v1"] {
        let count = |result: &str| -> f64 {
            text.lines()
                .filter(|l| {
                    l.starts_with("jetvault_backups_total{")
                        && l.contains(&format!("app=\"{app}\""))
                        && l.contains("trigger=\"schedule\"")
                        && l.contains(&format!("result=\"{result}\""))
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        let ok = count("created") + count("unchanged");
        assert!(
            ok >= 8.0,
            "{app}: only {ok} scheduled backups succeeded:\n{text}\n{}",
            server.stderr()
        );
        assert_eq!(
            count("failed"),
            0.0,
            "{app}: a scheduled backup failed:\n{}",
            server.stderr()
        );
    }
}
