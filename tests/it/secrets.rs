//! No secret in any output: distinctive secrets are planted in the config (an inline
//! server token, a server token file, a live target's token in a file and one in an
//! environment variable, a URL's `user:password@` and `?api_key=`, secret headers from
//! a file and from a variable, an OAuth password in a file, an OAuth client secret in a
//! variable and the token its endpoint issues), then the real binary runs with every log
//! level on through a TOML syntax error, backups against a live endpoint that is down
//! and one that echoes the request (headers and body) back in a 500, and `serve` with
//! requests carrying a wrong token and `/metrics`. No output may hold any of them.

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
const HEADER_FILE: &str = "HeaderFile-planted-1d6a";
const HEADER_ENV: &str = "HeaderEnv-planted-7f3c";
const OAUTH_PW: &str = "OauthPw-planted-2b8d";
const OAUTH_CLIENT: &str = "OauthClient-planted-9e5f";
/// The token the echo endpoint's token route issues.
const ISSUED: &str = "Issued-planted-4a0b";
const ALL: [&str; 12] = [
    SERVER_INLINE,
    SERVER_FILE,
    LIVE_FILE,
    LIVE_ENV,
    API_KEY,
    USER_PW,
    WRONG,
    HEADER_FILE,
    HEADER_ENV,
    OAUTH_PW,
    OAUTH_CLIENT,
    ISSUED,
];
const LIVE_ENV_VAR: &str = "JETVAULT_TEST_PLANTED_LIVE_TOKEN";
const HEADER_ENV_VAR: &str = "JETVAULT_TEST_PLANTED_HEADER";
const CLIENT_ENV_VAR: &str = "JETVAULT_TEST_PLANTED_CLIENT_SECRET";

/// Fails naming every planted secret found in `what`.
fn assert_clean(label: &str, what: &str) {
    let found: Vec<&str> = ALL.iter().copied().filter(|s| what.contains(s)).collect();
    assert!(
        found.is_empty(),
        "{label} holds planted secrets {found:?}:\n{what}"
    );
}

/// An endpoint that answers 500 with the request's URL, headers and body; and a token
/// endpoint at `/good/token` that issues [`ISSUED`].
async fn echo_server() -> String {
    async fn echo(headers: HeaderMap, uri: Uri, body: String) -> (StatusCode, String) {
        let headers: Vec<String> = headers
            .iter()
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("(binary)")))
            .collect();
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "internal error; body {body:?}; request {uri} had {}",
                headers.join(", ")
            ),
        )
    }
    async fn token() -> String {
        format!("{{\"access_token\":\"{ISSUED}\",\"token_type\":\"bearer\",\"expires_in\":60}}")
    }
    let app = Router::new()
        .route("/good/token", axum::routing::post(token))
        .fallback(any(echo));
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
    let header_file = d.join("header-key");
    std::fs::write(&header_file, format!("{HEADER_FILE}\n")).unwrap();
    std::fs::set_permissions(&header_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let oauth_file = d.join("oauth-password");
    std::fs::write(&oauth_file, OAUTH_PW).unwrap();
    std::fs::set_permissions(&oauth_file, std::fs::Permissions::from_mode(0o600)).unwrap();

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
         bearer_token_env = \"{LIVE_ENV_VAR}\"\n\
         [apps.crm.envs.echoheader.live]\nkind = \"http\"\nurl = \"{echo}/export\"\n\
         secret_headers = {{ \"X-Api-Key\" = {{ file = {header_file:?} }}, \"PRIVATE-TOKEN\" = \
         {{ env = \"{HEADER_ENV_VAR}\" }} }}\n\
         [apps.crm.envs.echooauth.live]\nkind = \"http\"\nurl = \"{echo}/export\"\n\
         [apps.crm.envs.echooauth.live.oauth]\ngrant = \"password\"\n\
         token_url = \"{echo}/auth/token\"\nclient_id = \"node-red-admin\"\nscope = \"*\"\n\
         username = \"admin\"\npassword_file = {oauth_file:?}\n\
         [apps.crm.envs.echotoken.live]\nkind = \"http\"\nurl = \"{echo}/export\"\n\
         [apps.crm.envs.echotoken.live.oauth]\ngrant = \"client_credentials\"\n\
         token_url = \"{echo}/good/token\"\nclient_id = \"jv\"\n\
         client_secret_env = \"{CLIENT_ENV_VAR}\"\n",
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
            .env(LIVE_ENV_VAR, LIVE_ENV)
            .env(HEADER_ENV_VAR, HEADER_ENV)
            .env(CLIENT_ENV_VAR, OAUTH_CLIENT);
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
    for env in [
        "down",
        "echofile",
        "echoenv",
        "echoheader",
        "echooauth",
        "echotoken",
    ] {
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
            if env.starts_with("echo") {
                // Echoed back and scrubbed, not merely cut off.
                assert!(out.contains("<redacted>"), "{out}");
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
        (
            "POST",
            "/v1/apps/crm/envs/echoheader/backup",
            Some(SERVER_INLINE),
        ),
        (
            "POST",
            "/v1/apps/crm/envs/echooauth/backup",
            Some(SERVER_INLINE),
        ),
        (
            "POST",
            "/v1/apps/crm/envs/echotoken/backup",
            Some(SERVER_INLINE),
        ),
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
