//! Environments discovered from the platform: a test platform on 127.0.0.1:0 lists its
//! environments (behind a bearer token) and serves each one's configuration.
//!
//! - `jetvault envs --json` lists 1,000 discovered environments from a config made of
//!   `examples/discovery.toml` (only its URLs and store changed); when the platform
//!   drops some, those with history show as `store-only` and keep it.
//! - A running `serve` refreshes the list (an environment dropped shows as store-only
//!   in `GET /v1/envs`, a failing refresh keeps the last good list) and, on SIGHUP,
//!   picks up a new environment and a new token while a kept-alive connection goes on;
//!   a config that no longer parses keeps the running one.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as AxPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::harness::cli::Jv;
use crate::harness::serve::{OP, RD, Server, config};

const PLATFORM_TOKEN: &str = "platform-token-for-tests-5150";
const STAGES: [&str; 5] = ["production", "staging", "dev", "qa", "demo"];

/// The test platform: its environments, and whether it answers 503.
#[derive(Clone, Default)]
struct Platform {
    envs: Arc<Mutex<Vec<(String, String)>>>,
    down: Arc<AtomicBool>,
}

impl Platform {
    fn set(&self, envs: Vec<(String, String)>) {
        *self.envs.lock().unwrap() = envs;
    }

    fn retain(&self, keep: impl Fn(&str, &str) -> bool) {
        self.envs.lock().unwrap().retain(|(a, e)| keep(a, e));
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {PLATFORM_TOKEN}"))
}

async fn list(State(p): State<Platform>, headers: HeaderMap) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if p.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let mut apps: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (app, env) in p.envs.lock().unwrap().iter() {
        apps.entry(app.clone())
            .or_default()
            .push(serde_json::json!({ "name": env, "region": "eu" }));
    }
    let apps: Vec<_> = apps
        .into_iter()
        .map(|(slug, envs)| serde_json::json!({ "slug": slug, "environments": envs }))
        .collect();
    axum::Json(serde_json::json!({ "apps": apps })).into_response()
}

async fn export(
    State(_): State<Platform>,
    AxPath((app, env)): AxPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(serde_json::json!({ "app": app, "env": env, "flows": [{"id": 1}] })).into_response()
}

/// Starts the platform on a free loopback port; its base URL and the runtime serving it.
fn start_platform(platform: &Platform) -> (String, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/api/apps", get(list))
        .route("/api/apps/{app}/envs/{env}/config", get(export))
        .with_state(platform.clone());
    rt.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        axum::serve(listener, app).await.unwrap();
    });
    (base, rt)
}

/// `n` environments: apps `app-000`... with five stages each.
fn thousand(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            (
                format!("app-{:03}", i / STAGES.len()),
                STAGES[i % STAGES.len()].to_string(),
            )
        })
        .collect()
}

/// `examples/discovery.toml` with the platform's URLs pointing at `base`.
fn example(base: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/discovery.toml");
    let text = std::fs::read_to_string(path).expect("examples/discovery.toml");
    assert!(
        text.contains("http://127.0.0.1:8090/"),
        "the example's URL moved"
    );
    text.replace("http://127.0.0.1:8090", base)
}

fn envs_json(jv: &Jv) -> serde_json::Value {
    let run: crate::harness::cli::Run = jv
        .command(&["envs", "--json"])
        .env("PLATFORM_TOKEN", PLATFORM_TOKEN)
        .output()
        .unwrap()
        .into();
    assert_eq!(run.code, 0, "{}", run.text());
    run.json()
}

fn by_name(listing: &serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    listing["envs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                format!(
                    "{}/{}",
                    e["app"].as_str().unwrap(),
                    e["env"].as_str().unwrap()
                ),
                e.clone(),
            )
        })
        .collect()
}

#[test]
fn envs_lists_a_thousand_discovered_environments_and_keeps_the_history_of_those_gone() {
    let platform = Platform::default();
    let mut envs = thousand(1000);
    envs.push(("Bad_App".into(), "production".into()));
    platform.set(envs);
    let (base, _rt) = start_platform(&platform);
    let jv = Jv::new();
    jv.write_config(&example(&base));

    let listing = envs_json(&jv);
    let all = by_name(&listing);
    assert_eq!(all.len(), 1000, "{listing}");
    assert!(
        all.values().all(|e| e["source"] == "discovery"),
        "{listing}"
    );
    assert_eq!(listing["discovery"]["discovered"], 1000);
    let skipped = listing["discovery"]["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{listing}");
    assert!(
        skipped[0].as_str().unwrap().contains("\"Bad_App\""),
        "{skipped:?}"
    );
    let qa = &all["app-007/qa"];
    assert_eq!(
        qa["live"],
        format!("{base}/api/apps/app-007/envs/qa/config")
    );
    assert_eq!(qa["schedule"], "0 */5 * * * *");
    assert_eq!(qa["stored"], false);

    // History for one environment, then the platform drops its app.
    let file = jv.file("qa.json", br#"{"flows": []}"#);
    let run = jv.run(&["backup", "app-007", "qa", "--from", &file]);
    assert_eq!(run.code, 0, "{}", run.text());
    platform.retain(|app, _| app != "app-007");

    let listing = envs_json(&jv);
    let all = by_name(&listing);
    assert_eq!(all.len(), 996, "995 discovered and one store-only");
    assert_eq!(all["app-007/qa"]["source"], "store-only");
    assert_eq!(all["app-007/qa"]["stored"], true);
    assert!(!all.contains_key("app-007/production"));
    assert_eq!(
        all.values().filter(|e| e["source"] == "discovery").count(),
        995
    );
    let run = jv.run(&["list", "app-007", "qa", "--json"]);
    assert_eq!(run.code, 0, "{}", run.text());
    assert_eq!(
        run.json().as_array().map(Vec::len),
        Some(1),
        "{}",
        run.text()
    );

    // The text listing says where each comes from.
    let text = jv
        .command(&["envs"])
        .env("PLATFORM_TOKEN", PLATFORM_TOKEN)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        out.contains("996 environments: 0 configured, 995 discovered, 1 store-only"),
        "{out}"
    );

    // Without the platform's token: the command fails and says which token.
    let run: crate::harness::cli::Run = jv.command(&["envs"]).output().unwrap().into();
    assert_ne!(run.code, 0, "{}", run.text());
    assert!(run.stderr.contains("PLATFORM_TOKEN"), "{}", run.text());
}

/// One kept-alive HTTP/1.1 connection.
struct KeepAlive {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    fn open(base: &str) -> Self {
        let addr = base.strip_prefix("http://").unwrap();
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Self { stream, reader }
    }

    /// Sends a request on this connection; the status and the JSON body.
    fn request(&mut self, method: &str, path: &str, token: &str) -> (u16, serde_json::Value) {
        write!(
            self.stream,
            "{method} {path} HTTP/1.1\r\nHost: jetvault\r\nAuthorization: Bearer {token}\r\n\
             Content-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut status = String::new();
        self.reader.read_line(&mut status).unwrap();
        let code: u16 = status
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("no status line: {status:?}"))
            .parse()
            .unwrap();
        let mut length = None;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            assert!(
                !name.eq_ignore_ascii_case("connection") || !value.contains("close"),
                "the server closes the connection: {line}"
            );
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>().unwrap());
            }
        }
        let mut body = vec![0; length.expect("a Content-Length")];
        self.reader.read_exact(&mut body).unwrap();
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        (code, json)
    }

    /// `GET /v1/envs`: source by `app/env`.
    fn sources(&mut self, token: &str) -> BTreeMap<String, String> {
        let (code, body) = self.request("GET", "/v1/envs", token);
        assert_eq!(code, 200, "{body}");
        by_name(&body)
            .into_iter()
            .map(|(k, v)| (k, v["source"].as_str().unwrap().to_string()))
            .collect()
    }
}

fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sighup(server: &Server) {
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(server.pid().to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn serve_refreshes_discovery_and_reloads_config_and_tokens_on_sighup() {
    let platform = Platform::default();
    platform.set(thousand(20));
    let (base, _rt) = start_platform(&platform);
    let jv = Jv::new();
    let token_file = jv.file("platform-token", PLATFORM_TOKEN.as_bytes());
    let discovery = format!(
        "[discovery]\nurl = \"{base}/api/apps\"\nbearer_token_file = {token_file:?}\n\
         filter = \"[.apps[] | .slug as $a | .environments[] | {{app: $a, env: .name}}]\"\n\
         refresh = \"1s\"\n\
         [discovery.template.live]\nkind = \"http\"\n\
         url = \"{base}/api/apps/{{app}}/envs/{{env}}/config\"\n\
         bearer_token_file = {token_file:?}\n"
    );
    let text = config(&jv.store, "", &discovery);
    let server = Server::start(jv.dir.path(), &text);
    let mut conn = KeepAlive::open(&server.base);

    let sources = conn.sources(RD);
    assert_eq!(sources.len(), 20, "{sources:?}");
    assert!(sources.values().all(|s| s == "discovery"), "{sources:?}");
    // A discovered environment backs up from its templated live target.
    let (code, body) = conn.request("POST", "/v1/apps/app-001/envs/qa/backup", OP);
    assert_eq!(code, 201, "{body}");

    // The platform drops app-001 and lists app-009: the next refresh shows both.
    platform.retain(|app, _| app != "app-001");
    platform
        .envs
        .lock()
        .unwrap()
        .push(("app-009".into(), "production".into()));
    wait_until("the refresh", || {
        conn.sources(RD).contains_key("app-009/production")
    });
    let sources = conn.sources(RD);
    assert_eq!(sources["app-001/qa"], "store-only", "{sources:?}");
    assert!(!sources.contains_key("app-001/dev"), "{sources:?}");
    let (code, body) = conn.request("GET", "/v1/apps/app-001/envs/qa/snapshots", RD);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["snapshots"].as_array().unwrap().len(), 1, "{body}");

    // A failing refresh keeps the last good list.
    platform.down.store(true, Ordering::SeqCst);
    server.wait_log(
        "discovery failed; the last good list of environments is kept",
        Duration::from_secs(30),
    );
    assert_eq!(conn.sources(RD)["app-009/production"], "discovery");
    platform.down.store(false, Ordering::SeqCst);

    // SIGHUP: a new token and a new configured environment, on the same connection.
    let (code, _) = conn.request("GET", "/v1/envs", "new-token-for-tests");
    assert_eq!(code, 401);
    let live = jv.file("extra.json", br#"{"a": 1}"#);
    let apps = format!(
        "{discovery}[apps.extra.envs.one]\nlive = {{ kind = \"file\", path = {live:?} }}\n\
         [[server.tokens]]\nname = \"new\"\nrole = \"read\"\nvalue = \"new-token-for-tests\"\n"
    );
    std::fs::write(&server.config_path, config(&jv.store, "", &apps)).unwrap();
    sighup(&server);
    server.wait_log("SIGHUP: config reloaded", Duration::from_secs(30));
    let sources = conn.sources("new-token-for-tests");
    assert_eq!(sources["extra/one"], "config", "{sources:?}");
    assert_eq!(sources["app-009/production"], "discovery", "{sources:?}");

    // A config that no longer parses is refused; the running one goes on.
    std::fs::write(&server.config_path, "[server\nbroken").unwrap();
    sighup(&server);
    server.wait_log(
        "SIGHUP: cannot reload the config; the running config is kept",
        Duration::from_secs(30),
    );
    assert_eq!(conn.sources("new-token-for-tests")["extra/one"], "config");
    let (code, _) = conn.request("GET", "/v1/envs", RD);
    assert_eq!(code, 200);

    let metrics = get_text(&server.url("/metrics"), OP);
    for want in [
        "jetvault_config_reloads_total{result=\"ok\"} 1",
        "jetvault_config_reloads_total{result=\"failed\"} 1",
        "jetvault_discovery_refreshes_total{result=\"failed\"}",
        "jetvault_discovery_environments 16",
    ] {
        assert!(metrics.contains(want), "missing {want} in\n{metrics}");
    }
}

/// A GET on a fresh connection that the server then closes; the response as text.
fn get_text(url: &str, token: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let mut conn = KeepAlive::open(&format!("http://{addr}"));
    write!(
        conn.stream,
        "GET {path} HTTP/1.1\r\nHost: jetvault\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    conn.reader.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn discovered_environments_get_the_template_schedule_and_new_ones_are_scheduled() {
    let platform = Platform::default();
    platform.set(thousand(3));
    let (base, _rt) = start_platform(&platform);
    let jv = Jv::new();
    let token_file = jv.file("platform-token", PLATFORM_TOKEN.as_bytes());
    let discovery = format!(
        "[discovery]\nurl = \"{base}/api/apps\"\nbearer_token_file = {token_file:?}\n\
         filter = \"[.apps[] | .slug as $a | .environments[] | {{app: $a, env: .name}}]\"\n\
         refresh = \"1s\"\n\
         [discovery.template]\nschedule = \"* * * * * *\"\n\
         [discovery.template.live]\nkind = \"http\"\n\
         url = \"{base}/api/apps/{{app}}/envs/{{env}}/config\"\n\
         bearer_token_file = {token_file:?}\n"
    );
    let server = Server::start(jv.dir.path(), &config(&jv.store, "", &discovery));
    let mut conn = KeepAlive::open(&server.base);
    let scheduled = |conn: &mut KeepAlive, env: &str| {
        let (code, body) = conn.request("GET", &format!("/v1/apps/{env}/snapshots"), RD);
        code == 200
            && body["snapshots"]
                .as_array()
                .is_some_and(|s| s.iter().any(|m| m["trigger"] == "schedule"))
    };
    wait_until("a scheduled backup of a discovered environment", || {
        scheduled(&mut conn, "app-000/envs/staging")
    });
    // Listed later: scheduled once the refresh has found it.
    platform
        .envs
        .lock()
        .unwrap()
        .push(("app-005".into(), "dev".into()));
    wait_until(
        "a scheduled backup of a newly discovered environment",
        || scheduled(&mut conn, "app-005/envs/dev"),
    );
    server.wait_log("schedules reloaded", Duration::from_secs(5));
}
