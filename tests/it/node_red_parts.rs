//! Credentials restored with the flows, on a Node-RED of the test's own: a flow whose
//! `http request` node signs in with basic-auth credentials (kept by Node-RED in
//! `flows_cred.json`, encrypted with `credentialSecret`, never in `GET /flows`) is
//! backed up with the shipped example's `node-red-files` environment (both files as
//! one snapshot), then Node-RED is stopped, both files are wiped, jetvault restores,
//! Node-RED starts again, and the node signs in as before. On the way, a control: with
//! the flows file alone, Node-RED starts and the node does not sign in, and a restore
//! over that half refuses unless overridden.
//!
//! This test stops and starts Node-RED, so it runs its own instance (own user dir and
//! port, `platforms/node-red.sh` with `NODE_RED_USER_DIR`), from the install
//! `scripts/test` made; it never installs.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::harness::cli::{Jv, Run};
use crate::harness::node_red::NodeRed;

/// Node-RED's default URL and the user dir the example names.
const DEFAULT_URL: &str = "http://127.0.0.1:1880";
const EXAMPLE_DIR: &str = "/data/";
/// The credentials the `http request` node signs in with.
const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pw";
/// `alice:s3cret-pw` in base64, as the basic-auth header carries it.
const BASIC: &str = "YWxpY2U6czNjcmV0LXB3";

/// A Node-RED of this test's own, on its own user dir and port.
struct OwnNodeRed {
    dir: tempfile::TempDir,
    port: Option<u16>,
    pid: Option<u32>,
    password: String,
}

impl OwnNodeRed {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("platforms/node-red.sh")
    }

    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            port: None,
            pid: None,
            password: format!("own-{}", std::process::id()),
        }
    }

    fn user_dir(&self) -> &Path {
        self.dir.path()
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port.expect("started"))
    }

    /// Starts it (on the port of its first start, so URLs stay valid) and waits until
    /// its admin API answers.
    fn start(&mut self) -> NodeRed {
        let mut cmd = Command::new("bash");
        cmd.arg(Self::script())
            .arg("start")
            .env("NODE_RED_USER_DIR", self.user_dir())
            .env("NODE_RED_NO_INSTALL", "1")
            .env("NODE_RED_PASSWORD", &self.password);
        if let Some(port) = self.port {
            cmd.env("NODE_RED_PORT", port.to_string());
        }
        let out = cmd.output().expect("run platforms/node-red.sh start");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "starting Node-RED failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let var = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name} in {stdout}"))
                .to_string()
        };
        let url = var("NODE_RED_URL");
        self.pid = Some(var("NODE_RED_PID").parse().unwrap());
        self.port = Some(url.rsplit(':').next().unwrap().parse().unwrap());
        NodeRed::at(&url, &self.password)
    }

    /// Stops it; its files stay.
    fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let status = Command::new("bash")
                .arg(Self::script())
                .args(["stop", &pid.to_string()])
                .status()
                .expect("run platforms/node-red.sh stop");
            assert!(status.success(), "stopping Node-RED {pid} failed");
        }
    }
}

impl Drop for OwnNodeRed {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = Command::new("bash")
                .arg(Self::script())
                .args(["stop", &pid.to_string()])
                .status();
        }
    }
}

/// Two endpoints: `GET /echo` answers the request's Authorization header, and
/// `GET /outer` calls `/echo` through an `http request` node that signs in with basic
/// auth (its credentials), answering what `/echo` said.
fn credentialed_flow(port: u16) -> Value {
    json!([
        {"id": "creds-tab", "type": "tab", "label": "credentials"},
        {"id": "echo-in", "type": "http in", "z": "creds-tab", "url": "/echo",
         "method": "get", "wires": [["echo-fn"]]},
        {"id": "echo-fn", "type": "function", "z": "creds-tab", "name": "echo auth",
         "func": "msg.payload = 'auth=' + (msg.req.headers.authorization || 'none');\nreturn msg;",
         "outputs": 1, "wires": [["echo-out"]]},
        {"id": "echo-out", "type": "http response", "z": "creds-tab", "wires": []},
        {"id": "outer-in", "type": "http in", "z": "creds-tab", "url": "/outer",
         "method": "get", "wires": [["outer-req"]]},
        {"id": "outer-req", "type": "http request", "z": "creds-tab", "name": "signed in",
         "method": "GET", "ret": "txt", "url": format!("http://127.0.0.1:{port}/echo"),
         "authType": "basic", "useAuth": true,
         "credentials": {"user": USER, "password": PASSWORD},
         "wires": [["outer-fn"]]},
        {"id": "outer-fn", "type": "function", "z": "creds-tab", "name": "answer",
         "func": "msg.headers = {};\nmsg.statusCode = 200;\nreturn msg;",
         "outputs": 1, "wires": [["outer-out"]]},
        {"id": "outer-out", "type": "http response", "z": "creds-tab", "wires": []},
    ])
}

/// The shipped example, aimed at `dir` (the user dir) and `url`.
fn example_config(dir: &Path, url: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/platforms/node-red.toml"
    );
    let text = std::fs::read_to_string(path).expect("examples/platforms/node-red.toml");
    assert!(
        text.contains(EXAMPLE_DIR),
        "the example names Node-RED's user dir"
    );
    text.replace(DEFAULT_URL, url)
        .replace(EXAMPLE_DIR, &format!("{}/", dir.display()))
}

#[tokio::test]
async fn credentials_come_back_with_the_flows() {
    // The shared instance's presence says Node-RED is installed (under CI it must be).
    if NodeRed::shared().is_none() {
        return;
    }
    let mut own = OwnNodeRed::new();
    let nr = own.start();
    let port = own.port.unwrap();
    nr.deploy(&credentialed_flow(port)).await;
    let before = nr.wait_for("/outer", 200).await;
    let expected = format!("auth=Basic {BASIC}");
    assert_eq!(before, expected, "the node signs in with its credentials");
    let user_dir = own.user_dir().to_path_buf();
    let (flows, creds) = (
        user_dir.join("flows.json"),
        user_dir.join("flows_cred.json"),
    );
    assert!(
        creds.exists(),
        "Node-RED keeps the credentials in flows_cred.json"
    );

    let jv = Jv::new();
    jv.write_config(&example_config(&user_dir, &own.url()));
    let (app, env) = ("node-red-files", "production");
    let v1 = jv.json(&["backup", app, env]);
    assert_eq!(v1["version"], 1, "{v1}");
    // One snapshot holds both documents; the credentials stay encrypted by Node-RED.
    let stored = jv.ok(&["cat", app, env, "1"]).stdout;
    let stored: Value = serde_json::from_str(&stored).expect("the snapshot is JSON");
    assert!(stored["flows"].is_array(), "{stored}");
    assert!(stored["credentials"]["$"].is_string(), "{stored}");
    assert!(
        !stored.to_string().contains(PASSWORD),
        "no clear-text password"
    );

    // The disaster: Node-RED stopped, its flows and credentials gone (backups too).
    own.stop();
    for f in [
        "flows.json",
        "flows_cred.json",
        ".flows.json.backup",
        ".flows_cred.json.backup",
    ] {
        let _ = std::fs::remove_file(user_dir.join(f));
    }
    // The control: the flows alone, taken out by hand as the README shows, start
    // without the credentials, and the node no longer signs in.
    std::fs::write(&flows, serde_json::to_vec(&stored["flows"]).unwrap()).unwrap();
    let nr = own.start();
    let without = nr.wait_for("/outer", 200).await;
    assert_eq!(
        without, "auth=none",
        "without flows_cred.json there are no credentials"
    );
    own.stop();
    let _ = std::fs::remove_file(user_dir.join(".flows.json.backup"));

    // The credentials part is optional (Node-RED writes no flows_cred.json before the
    // first credential), so the flows alone are a version of their own: the restore
    // saves them first (without credentials) and puts both files back.
    let restored = jv.json(&["restore", app, env, "1", "--yes"]);
    assert_eq!(restored["verified"], "sha256", "{restored}");
    assert!(flows.exists() && creds.exists());
    let saved: Value = serde_json::from_str(&jv.ok(&["cat", app, env, "2"]).stdout).unwrap();
    assert!(
        saved["flows"].is_array() && saved.get("credentials").is_none(),
        "the pre-restore snapshot holds the flows alone: {saved}"
    );

    let nr = own.start();
    let after = nr.wait_for("/outer", 200).await;
    assert_eq!(
        after, before,
        "the credentialed node signs in as before the wipe"
    );
    own.stop();
}

/// Flows through the admin API and `flows_cred.json` as the two parts of the shipped
/// example's `node-red-api-files` environment, on a running Node-RED: before any
/// credential the backup stores the flows alone (the credentials part is optional);
/// then a credentialed flow is backed up, the flows are wiped by a deploy and the file
/// deleted, jetvault restores both (the deploy it makes leaves the restored file
/// alone), and once Node-RED reloads, the node signs in as before.
#[tokio::test]
async fn flows_through_the_api_and_the_credentials_file_come_back() {
    if NodeRed::shared().is_none() {
        return;
    }
    let mut own = OwnNodeRed::new();
    let nr = own.start();
    let port = own.port.unwrap();
    let user_dir = own.user_dir().to_path_buf();
    let creds = user_dir.join("flows_cred.json");
    let jv = Jv::new();
    jv.write_config(&example_config(&user_dir, &own.url()));
    let (app, env) = ("node-red-api-files", "production");
    let run = |args: &[&str]| -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = jv
            .command(&all)
            .env("NODE_RED_PASSWORD", &own.password)
            .output()
            .expect("run jetvault");
        let r: Run = out.into();
        assert_eq!(r.code, 0, "jetvault {args:?} failed:\n{}", r.text());
        r.json()
    };

    // No credential yet: no flows_cred.json, and the version holds the flows alone.
    assert!(!creds.exists());
    let v1 = run(&["backup", app, env]);
    assert_eq!(v1["version"], 1, "{v1}");
    let stored: Value = serde_json::from_str(&jv.ok(&["cat", app, env, "1"]).stdout).unwrap();
    assert!(stored.get("credentials").is_none(), "{stored}");

    nr.deploy(&credentialed_flow(port)).await;
    let before = nr.wait_for("/outer", 200).await;
    assert_eq!(before, format!("auth=Basic {BASIC}"));
    assert!(creds.exists(), "Node-RED wrote its credentials file");
    let v2 = run(&["backup", app, env]);
    assert_eq!(v2["version"], 2, "{v2}");
    let stored: Value = serde_json::from_str(&jv.ok(&["cat", app, env, "2"]).stdout).unwrap();
    assert!(stored["credentials"]["$"].is_string(), "{stored}");
    assert!(
        !stored.to_string().contains(PASSWORD),
        "no clear-text password"
    );

    // The disaster: every flow deleted by a deploy, and the credentials file gone.
    nr.wipe().await;
    nr.wait_for("/outer", 404).await;
    let _ = std::fs::remove_file(&creds);
    let _ = std::fs::remove_file(user_dir.join(".flows_cred.json.backup"));

    let restored = run(&["restore", app, env, "2", "--yes"]);
    assert!(
        restored["verified"] == "sha256" || restored["verified"] == "equivalent_json",
        "{restored}"
    );
    let on_disk: Value = serde_json::from_slice(&std::fs::read(&creds).unwrap()).unwrap();
    assert_eq!(
        on_disk, stored["credentials"],
        "the deploy the restore made left the restored credentials file alone"
    );
    assert_eq!(
        nr.flows().await,
        stored["flows"],
        "the flows are deployed again"
    );

    // Node-RED reads the file when it reloads: the node then signs in as before.
    let resp = reqwest::Client::new()
        .post(format!("{}/flows", own.url()))
        .bearer_auth(nr.token().await)
        .header("Node-RED-Deployment-Type", "reload")
        .send()
        .await
        .expect("POST /flows (reload)");
    assert!(resp.status().is_success(), "reload: {}", resp.status());
    let start = std::time::Instant::now();
    let after = loop {
        let (status, body) = nr.get("/outer").await;
        if status == 200 && body == before {
            break body;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "after the reload GET /outer answers {status}: {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        after, before,
        "the credentialed node signs in as before the wipe"
    );
    // What live holds is the newest snapshot: a backup now writes nothing.
    let again = run(&["backup", app, env]);
    assert_eq!(again["outcome"], "unchanged", "{again}");
    own.stop();
}

/// `config check` passes the shipped example, and refuses it once the credentials
/// part's written opt-in is gone (no `[encryption]` recipients apply), naming the part;
/// age recipients make it pass again.
#[test]
fn config_check_refuses_a_secret_part_stored_in_plain_text() {
    let jv = Jv::new();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/platforms/node-red.toml"
    );
    let text = std::fs::read_to_string(path).expect("examples/platforms/node-red.toml");
    let ok = jv.file("node-red.toml", text.as_bytes());
    jv.ok(&["config", "check", &ok]);

    let opt_in = "allow_plaintext_secrets = true\n";
    assert_eq!(
        text.matches(opt_in).count(),
        2,
        "one opt-in per parts environment in the example"
    );
    let without = text.replace(opt_in, "");
    let bad = jv.file("no-opt-in.toml", without.as_bytes());
    let r = jv.fails(&["config", "check", &bad], 2);
    assert!(
        r.stderr
            .contains(".envs.production.live.parts.credentials: secret = true"),
        "{}",
        r.text()
    );

    let (_, recipient) = jetvault_core::crypt::Identities::generate();
    let encrypted = format!("[encryption]\nrecipients = [\"{recipient}\"]\n{without}");
    let good = jv.file("encrypted.toml", encrypted.as_bytes());
    jv.ok(&["config", "check", &good]);
}
