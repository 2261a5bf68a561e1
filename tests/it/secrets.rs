//! No secret in any output: distinctive secrets are planted in the config (an inline
//! server token, a server token file, a live target's token in a file and one in an
//! environment variable, a URL's `user:password@` and `?api_key=`), then the real binary
//! runs with every log level on through a TOML syntax error, backups against a live
//! endpoint that is down and one that echoes the request back in a 500, and `serve`
//! with requests carrying a wrong token and `/metrics`. No output may hold any of them.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::any;

use crate::harness::{self, closed_port};

const SERVER_INLINE: &str = "SrvInline-planted-5d1f";
const SERVER_FILE: &str = "SrvFile-planted-8c2e";
const LIVE_FILE: &str = "LiveFile-planted-3a9b";
const LIVE_ENV: &str = "LiveEnv-planted-6e4c";
const API_KEY: &str = "ApiKey-planted-2f7d";
const USER_PW: &str = "UserPw-planted-9b3a";
/// Sent by a client as its bearer token: a wrong token may be someone's real one.
const WRONG: &str = "Wrong-planted-4c8e";
const ALL: [&str; 7] = [
    SERVER_INLINE,
    SERVER_FILE,
    LIVE_FILE,
    LIVE_ENV,
    API_KEY,
    USER_PW,
    WRONG,
];
const LIVE_ENV_VAR: &str = "JETVAULT_TEST_PLANTED_LIVE_TOKEN";

/// Fails naming every planted secret found in `what`.
fn assert_clean(label: &str, what: &str) {
    let found: Vec<&str> = ALL.iter().copied().filter(|s| what.contains(s)).collect();
    assert!(
        found.is_empty(),
        "{label} holds planted secrets {found:?}:\n{what}"
    );
}

/// An endpoint that answers 500 with the request's Authorization header and URL.
async fn echo_server() -> String {
    async fn echo(headers: HeaderMap, uri: Uri) -> (StatusCode, String) {
        let auth = headers
            .get("authorization")
            .map_or("(none)", |v| v.to_str().unwrap_or("(binary)"));
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error; request {uri} had Authorization: {auth}"),
        )
    }
    let app = Router::new().fallback(any(echo));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Runs `cmd` off the runtime (the echo endpoint must keep answering); exit code and
/// both outputs.
async fn run(mut cmd: Command) -> (i32, String) {
    tokio::task::spawn_blocking(move || {
        let o = cmd.output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            format!(
                "--- stdout\n{}--- stderr\n{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_reaches_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let echo = echo_server().await;
    let down = closed_port();

    // Token files: the server's readable by anyone (a warning), the live target's with
    // blank lines before the token (trimmed).
    let server_file = d.join("server-token");
    std::fs::write(&server_file, format!("{SERVER_FILE}\n")).unwrap();
    std::fs::set_permissions(&server_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let live_file = d.join("live-token");
    std::fs::write(&live_file, format!("\n\n{LIVE_FILE}\n")).unwrap();
    std::fs::set_permissions(&live_file, std::fs::Permissions::from_mode(0o600)).unwrap();

    let config = format!(
        "store = {store:?}\n\
         [server]\n\
         [[server.tokens]]\nname = \"ci\"\nrole = \"operate\"\nvalue = \"{SERVER_INLINE}\"\n\
         [[server.tokens]]\nname = \"dash\"\nrole = \"read\"\nvalue_file = {server_file:?}\n\
         [apps.crm.envs.down.live]\nkind = \"http\"\n\
         url = \"http://user:{USER_PW}@127.0.0.1:{down}/export?api_key={API_KEY}\"\n\
         bearer_token_file = {live_file:?}\n\
         [apps.crm.envs.echofile.live]\nkind = \"http\"\n\
         url = \"{echo}/export?api_key={API_KEY}\"\nbearer_token_file = {live_file:?}\n\
         [apps.crm.envs.echoenv.live]\nkind = \"http\"\n\
         url = \"http://user:{USER_PW}@{host}/export?api_key={API_KEY}\"\n\
         bearer_token_env = \"{LIVE_ENV_VAR}\"\n",
        store = format!("file://{}", d.join("store").display()),
        host = echo.trim_start_matches("http://"),
    );
    let config_path = d.join("jetvault.toml");
    std::fs::write(&config_path, &config).unwrap();
    std::fs::set_permissions(&config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let jv = |args: &[&str]| {
        let mut cmd = harness::jetvault();
        cmd.arg("--config")
            .arg(&config_path)
            .args(args)
            .env("RUST_LOG", "trace")
            .env(LIVE_ENV_VAR, LIVE_ENV);
        cmd
    };

    // A TOML syntax error on the token's line: the line is named, not shown.
    let broken = d.join("broken.toml");
    std::fs::write(
        &broken,
        config.replace(
            &format!("value = \"{SERVER_INLINE}\"\n"),
            &format!("value = \"{SERVER_INLINE}\n"),
        ),
    )
    .unwrap();
    for args in [
        vec!["config", "check", broken.to_str().unwrap()],
        vec!["--json", "config", "check", broken.to_str().unwrap()],
    ] {
        let mut cmd = harness::jetvault();
        cmd.args(&args).env("RUST_LOG", "trace");
        let (code, out) = run(cmd).await;
        assert_ne!(code, 0, "{out}");
        assert!(out.contains("line"), "{out}");
        assert_clean(&format!("{args:?}"), &out);
    }

    // The valid config: the readable token file gets a warning naming it and the fix.
    let (code, out) = run(jv(&["config", "check"])).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&server_file.display().to_string()) && out.contains("chmod 600"),
        "{out}"
    );
    assert!(
        !out.contains(&live_file.display().to_string()),
        "the live token file is private: {out}"
    );
    assert_clean("config check", &out);

    // Backups: connection refused, and a 500 echoing the token and the URL.
    for env in ["down", "echofile", "echoenv"] {
        for json in [false, true] {
            let mut args = vec!["backup", "crm", env];
            if json {
                args.insert(0, "--json");
            }
            let (code, out) = run(jv(&args)).await;
            assert_ne!(code, 0, "{out}");
            if env != "down" {
                assert!(out.contains("500"), "the endpoint was reached: {out}");
            }
            assert_clean(&format!("{args:?}"), &out);
        }
    }

    // serve at trace level, requests with a wrong token, a failing backup, /metrics.
    let mut child = jv(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    {
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
    }
    let stdout = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let pipe = child.stdout.take().unwrap();
        let sink = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("jetvault listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
    }
    let base = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
        .await
        .unwrap()
        .unwrap_or_else(|_| panic!("serve did not start:\n{}", stderr.lock().unwrap()));

    let client = reqwest::Client::new();
    let mut replies = String::new();
    let requests = [
        ("GET", "/v1/apps/crm/envs/down/snapshots", Some(WRONG)),
        ("POST", "/v1/apps/crm/envs/echofile/backup", Some(WRONG)),
        (
            "POST",
            "/v1/apps/crm/envs/echofile/backup",
            Some(SERVER_INLINE),
        ),
        (
            "POST",
            "/v1/apps/crm/envs/echoenv/backup",
            Some(SERVER_INLINE),
        ),
        ("POST", "/v1/apps/crm/envs/down/backup", Some(SERVER_INLINE)),
        ("GET", "/metrics", Some(WRONG)),
        ("GET", "/metrics", Some(SERVER_FILE)),
        ("GET", "/metrics", None),
    ];
    for (method, path, token) in requests {
        let mut req = client.request(method.parse().unwrap(), format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        replies.push_str(&format!("{method} {path} -> {status}\n{body}\n"));
    }
    assert!(
        replies.contains("jetvault_"),
        "the metrics were read: {replies}"
    );
    assert!(replies.contains("-> 401"), "{replies}");

    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stderr = stderr.lock().unwrap().clone();
    let stdout = stdout.lock().unwrap().clone();
    assert!(
        stderr.contains("TRACE") && stderr.contains("DEBUG"),
        "every level is logged"
    );
    assert!(
        stderr.contains(&server_file.display().to_string()) && stderr.contains("chmod 600"),
        "serve warns of the readable token file"
    );
    assert_clean("the service's replies and /metrics", &replies);
    assert_clean("serve's standard output", &stdout);
    assert_clean("serve's log", &stderr);
}
