//! Platform sign-in: an HTTP live target behind an OAuth2 token endpoint that answers
//! like Node-RED's `adminAuth` (`POST /auth/token`, password grant, client
//! `node-red-admin`, scope `*`), issuing tokens that expire within a second. Backups
//! renew the token before it expires, sign in again once after a revocation (401), and a
//! wrong password is a config error naming the token URL, never the password.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};

use jetvault_core::config::Config;
use jetvault_core::error::ErrorKind;
use jetvault_core::{BackupRequest, EnvRef, Trigger};

use crate::harness::StoreSpec;
use crate::harness::cli::Jv;

const PASSWORD: &str = "NodeRedPw-planted-8d2a";
const WRONG_PASSWORD: &str = "WrongPw-planted-3e7b";
const CLIENT_SECRET: &str = "Client-planted-5c1d";
/// `base64("jv-client:Client-planted-5c1d")`.
const CLIENT_BASIC: &str = "Basic anYtY2xpZW50OkNsaWVudC1wbGFudGVkLTVjMWQ=";

/// The token endpoint and the protected flows.
#[derive(Clone)]
struct Platform {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    lifetime: Duration,
    issued: u32,
    /// Valid tokens and when each expires.
    valid: HashMap<String, Instant>,
    /// Every token ever issued (to tell "expired" from "never issued").
    ever: HashSet<String>,
    /// 401 answers to requests for the flows.
    refused: u32,
    /// Flows requests answered with an expired token.
    expired_seen: u32,
    /// Refuse every token, even fresh ones.
    refuse_all: bool,
    flows: serde_json::Value,
}

impl Platform {
    fn new(lifetime: Duration) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                lifetime,
                issued: 0,
                valid: HashMap::new(),
                ever: HashSet::new(),
                refused: 0,
                expired_seen: 0,
                refuse_all: false,
                flows: serde_json::json!([{"id": "a1", "type": "tab", "label": "Flow 1"}]),
            })),
        }
    }

    fn issued(&self) -> u32 {
        self.inner.lock().unwrap().issued
    }

    fn refused(&self) -> u32 {
        self.inner.lock().unwrap().refused
    }

    /// Serves it on a free loopback port; its base URL.
    async fn serve(&self) -> String {
        let app = Router::new()
            .route("/auth/token", post(token))
            .route("/flows", get(get_flows).post(post_flows))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    }
}

async fn token(
    State(p): State<Platform>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, String) {
    let field = |k: &str| form.get(k).map(String::as_str);
    let ok = match field("grant_type") {
        Some("password") => {
            field("client_id") == Some("node-red-admin")
                && field("scope") == Some("*")
                && field("username") == Some("admin")
                && field("password") == Some(PASSWORD)
        }
        Some("client_credentials") => {
            headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(CLIENT_BASIC)
                && field("client_secret").is_none()
        }
        _ => false,
    };
    if !ok {
        // Repeats what it was sent, as careless endpoints do.
        let sent = field("password").unwrap_or("(none)");
        return (
            StatusCode::UNAUTHORIZED,
            format!(
                "{{\"error\":\"invalid_grant\",\"error_description\":\"bad password {sent}\"}}"
            ),
        );
    }
    let mut s = p.inner.lock().unwrap();
    s.issued += 1;
    let token = format!("tok-{}-{}", s.issued, uuid::Uuid::new_v4());
    let expires = Instant::now() + s.lifetime;
    s.valid.insert(token.clone(), expires);
    s.ever.insert(token.clone());
    // Some endpoints send the lifetime as a string.
    let expires_in = if field("grant_type") == Some("client_credentials") {
        serde_json::json!(s.lifetime.as_secs().to_string())
    } else {
        serde_json::json!(s.lifetime.as_secs_f64())
    };
    let answer = serde_json::json!({
        "access_token": token,
        "expires_in": expires_in,
        "token_type": "Bearer",
    });
    (StatusCode::OK, answer.to_string())
}

/// Whether the request carries a valid token; counts refusals.
fn admitted(p: &Platform, headers: &HeaderMap) -> bool {
    let mut s = p.inner.lock().unwrap();
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let now = Instant::now();
    let ok = !s.refuse_all && s.valid.get(token).is_some_and(|exp| now < *exp);
    if !ok {
        if s.ever.contains(token) && s.valid.get(token).is_some_and(|exp| now >= *exp) {
            s.expired_seen += 1;
        }
        s.refused += 1;
    }
    ok
}

async fn get_flows(State(p): State<Platform>, headers: HeaderMap) -> (StatusCode, String) {
    if !admitted(&p, &headers) {
        return (StatusCode::UNAUTHORIZED, "Unauthorized".into());
    }
    (StatusCode::OK, p.inner.lock().unwrap().flows.to_string())
}

async fn post_flows(
    State(p): State<Platform>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    if !admitted(&p, &headers) {
        return StatusCode::UNAUTHORIZED;
    }
    p.inner.lock().unwrap().flows = serde_json::from_slice(&body).unwrap();
    StatusCode::NO_CONTENT
}

fn config(store: &str, base: &str, password_file: &std::path::Path) -> String {
    format!(
        "store = {store:?}\n\
         [apps.nodered.envs.production.live]\nkind = \"http\"\nurl = \"{base}/flows\"\n\
         write_method = \"POST\"\n\
         [apps.nodered.envs.production.live.oauth]\ngrant = \"password\"\n\
         token_url = \"{base}/auth/token\"\nclient_id = \"node-red-admin\"\nscope = \"*\"\n\
         username = \"admin\"\npassword_file = {password_file:?}\n"
    )
}

/// Backs up through a live target built anew, as each backup (and each tick of
/// `serve`) does.
async fn backup(vault: &jetvault_core::Vault, config: &Config) -> jetvault_core::Result<()> {
    let env = EnvRef::parse("nodered", "production").unwrap();
    let target = jetvault_core::live::open_configured(config, &env).await?;
    vault
        .backup_from_live(
            &env,
            target.as_ref(),
            BackupRequest::new(Vec::new(), Trigger::Schedule),
        )
        .await
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_cached_and_renewed_before_it_expires() {
    let platform = Platform::new(Duration::from_secs(2));
    let base = platform.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let config = Config::parse(&config(&store.url, &base, &pw)).unwrap();
    let vault = store.vault().await;

    backup(&vault, &config).await.unwrap();
    assert_eq!(platform.issued(), 1);
    // Targets built anew share the process's token: no second sign-in.
    backup(&vault, &config).await.unwrap();
    let env = EnvRef::parse("nodered", "production").unwrap();
    let (a, b) = tokio::join!(
        jetvault_core::live::open_configured(&config, &env),
        jetvault_core::live::open_configured(&config, &env)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ra, rb) = tokio::join!(a.read(1 << 20), b.read(1 << 20));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(platform.issued(), 1, "one sign-in for every request so far");

    // Past the token's lifetime: renewed before use, never sent expired.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    platform.inner.lock().unwrap().flows = serde_json::json!([{"id": "b2", "type": "tab"}]);
    backup(&vault, &config).await.unwrap();
    assert_eq!(platform.issued(), 2, "a second token was issued");
    assert_eq!(
        platform.refused(),
        0,
        "renewed before it expired, not after a 401"
    );
    // At 80% of its lifetime (1.6 s), a token is renewed although still valid.
    tokio::time::sleep(Duration::from_millis(1750)).await;
    backup(&vault, &config).await.unwrap();
    assert_eq!(platform.issued(), 3);
    let (refused, expired_seen) = {
        let s = platform.inner.lock().unwrap();
        (s.refused, s.expired_seen)
    };
    assert_eq!((refused, expired_seen), (0, 0));
    let versions = vault.list(&env, None, 100).await.unwrap();
    assert_eq!(versions.len(), 2, "two different flows were backed up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_renewed_once_and_the_request_retried() {
    let platform = Platform::new(Duration::from_secs(600));
    let base = platform.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, PASSWORD).unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let config = Config::parse(&config(&store.url, &base, &pw)).unwrap();
    let env = EnvRef::parse("nodered", "production").unwrap();
    let target = jetvault_core::live::open_configured(&config, &env)
        .await
        .unwrap();
    target.read(1 << 20).await.unwrap();
    assert_eq!(platform.issued(), 1);

    // The platform restarts and forgets its tokens: one 401, one sign-in, success.
    platform.inner.lock().unwrap().valid.clear();
    target
        .write(bytes::Bytes::from_static(b"[{\"id\":\"c3\"}]"))
        .await
        .unwrap();
    assert_eq!((platform.issued(), platform.refused()), (2, 1));
    assert_eq!(
        platform.inner.lock().unwrap().flows,
        serde_json::json!([{"id": "c3"}])
    );

    // A platform that refuses every token: one renewal, then the 401 is the error.
    platform.inner.lock().unwrap().refuse_all = true;
    let e = target.read(1 << 20).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config, "{e}");
    let msg = e.report();
    assert!(msg.contains("401"), "{msg}");
    assert!(msg.contains("token just issued"), "{msg}");
    assert!(msg.contains("nothing was read"), "{msg}");
    assert_eq!((platform.issued(), platform.refused()), (3, 3));
    let e = target
        .write(bytes::Bytes::from_static(b"[]"))
        .await
        .unwrap_err();
    assert!(e.report().contains("nothing was written"), "{e}");
    assert!(!e.report().contains("tok-"), "the token is scrubbed: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_with_basic_client_authentication() {
    let platform = Platform::new(Duration::from_secs(600));
    let base = platform.serve().await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("client-secret");
    let text = format!(
        "[apps.svc.envs.prod.live]\nkind = \"http\"\nurl = \"{base}/flows\"\n\
         [apps.svc.envs.prod.live.oauth]\ngrant = \"client_credentials\"\n\
         token_url = \"{base}/auth/token\"\nclient_id = \"jv-client\"\nclient_auth = \"basic\"\n\
         client_secret_file = {secret:?}\n"
    );
    let config = Config::parse(&text).unwrap();
    let env = EnvRef::parse("svc", "prod").unwrap();
    let target = jetvault_core::live::open_configured(&config, &env)
        .await
        .unwrap();
    // Not there yet: a config error naming the file; nothing sent.
    let e = target.read(1 << 20).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.report().contains(secret.to_str().unwrap()), "{e}");
    assert!(e.report().contains("nothing was read"), "{e}");
    assert_eq!(platform.issued(), 0);
    std::fs::write(&secret, format!("\n{CLIENT_SECRET}\n")).unwrap();
    target.read(1 << 20).await.unwrap();
    assert_eq!(platform.issued(), 1);
    target.read(1 << 20).await.unwrap();
    assert_eq!(platform.issued(), 1, "cached");
    let debug = format!("{target:?}");
    assert!(
        !debug.contains(CLIENT_SECRET) && !debug.contains("tok-"),
        "{debug}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_names_the_token_url_never_the_password() {
    let platform = Platform::new(Duration::from_secs(600));
    let base = platform.serve().await;
    let jv = Jv::new();
    let pw = jv.path("pw");
    std::fs::write(&pw, WRONG_PASSWORD).unwrap();
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let text = config(&jv.store.url, &base, &pw);
    let body = text.split_once('\n').unwrap().1.to_string();
    jv.write_config(&body);

    let run = |args: Vec<&'static str>| {
        let cmd = jv.command(&args);
        async move {
            let mut cmd = cmd;
            tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap()
        }
    };
    for args in [
        vec!["backup", "nodered", "production"],
        vec!["--json", "backup", "nodered", "production"],
        vec!["doctor"],
    ] {
        let out = run(args.clone()).await;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert!(
            text.contains(&format!("{base}/auth/token")),
            "{args:?}: {text}"
        );
        assert!(text.contains("401"), "{args:?}: {text}");
        assert!(!text.contains(WRONG_PASSWORD), "{args:?}: {text}");
        if args[0] == "backup" {
            assert!(text.contains("nothing was read"), "{text}");
            assert!(
                text.contains(pw.to_str().unwrap()),
                "names the file: {text}"
            );
        }
    }
    // The right password: backed up.
    std::fs::write(&pw, PASSWORD).unwrap();
    let out = run(vec!["backup", "nodered", "production"]).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(platform.issued(), 1);
}
