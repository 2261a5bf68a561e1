//! The HTTP live target against a real HTTP server (axum, in process): reads, writes,
//! the bearer token, failure kinds and messages without secrets.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap as AxHeaders, StatusCode as AxStatus};
use axum::routing::get;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use jetvault_core::EnvRef;
use jetvault_core::config::LiveConfig;
use jetvault_core::error::ErrorKind;
use jetvault_core::live::LiveTarget;
use jetvault_core::live::http::HttpTarget;

#[derive(Clone, Default)]
struct Fake {
    body: Arc<Mutex<Vec<u8>>>,
    auth_seen: Arc<Mutex<Option<String>>>,
}

async fn fake_server(fake: Fake) -> String {
    async fn get_cfg(State(f): State<Fake>, h: AxHeaders) -> (AxStatus, Vec<u8>) {
        *f.auth_seen.lock().unwrap() = h
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string());
        (AxStatus::OK, f.body.lock().unwrap().clone())
    }
    async fn put_cfg(State(f): State<Fake>, body: axum::body::Bytes) -> AxStatus {
        *f.body.lock().unwrap() = body.to_vec();
        AxStatus::NO_CONTENT
    }
    async fn fail() -> (AxStatus, &'static str) {
        (AxStatus::INTERNAL_SERVER_ERROR, "database is down")
    }
    async fn echo(h: AxHeaders) -> (AxStatus, String) {
        let auth = h.get("authorization").map_or("", |v| v.to_str().unwrap());
        // The token across the 200-character cut.
        (
            AxStatus::INTERNAL_SERVER_ERROR,
            format!("{}you sent {auth}", "x".repeat(170)),
        )
    }
    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "{}"
    }
    let app = Router::new()
        .route("/config", get(get_cfg).put(put_cfg))
        .route("/fail", get(fail).put(fail))
        .route("/slow", get(slow))
        .route("/echo", get(echo))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn target(url: String, token_file: Option<PathBuf>, timeout: Option<Duration>) -> HttpTarget {
    let env = EnvRef::parse("crm", "production").unwrap();
    HttpTarget::from_config(
        &env,
        &LiveConfig::Http {
            url,
            write_url: None,
            write_method: None,
            headers: BTreeMap::from([("X-App".to_string(), "crm".to_string())]),
            bearer_token_env: None,
            bearer_token_file: token_file,
            secret_headers: BTreeMap::new(),
            oauth: None,
            timeout,
            create: None,
        },
    )
    .unwrap()
}

#[tokio::test]
async fn reads_writes_and_sends_the_token() {
    let corpus = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/nodered-http-endpoint-example.json"
    ));
    let fake = Fake::default();
    *fake.body.lock().unwrap() = corpus.to_vec();
    let base = fake_server(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret\n").unwrap();
    let t = target(format!("{base}/config?key=abc"), Some(token), None);
    assert_eq!(&t.read(1 << 20).await.unwrap()[..], &corpus[..]);
    assert_eq!(
        fake.auth_seen.lock().unwrap().as_deref(),
        Some("Bearer s3cret")
    );
    assert!(
        !t.describe().contains("abc"),
        "query strings may hold secrets"
    );
    t.write(Bytes::from_static(b"{\"restored\":true}"))
        .await
        .unwrap();
    assert_eq!(&fake.body.lock().unwrap()[..], b"{\"restored\":true}");
    assert_eq!(t.read(5).await.unwrap_err().kind(), ErrorKind::TooLarge);
}

#[tokio::test]
async fn failures_have_kinds() {
    let base = fake_server(Fake::default()).await;
    let e = target(format!("{base}/fail"), None, None)
        .read(100)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("500"), "{e}");
    let e = target(format!("{base}/fail"), None, None)
        .write(Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let e = target(format!("{base}/nothing"), None, None)
        .read(100)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LiveMissing);
    let e = target(
        format!("{base}/slow"),
        None,
        Some(Duration::from_millis(200)),
    )
    .read(100)
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("timed out"), "{e}");
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = target(format!("http://127.0.0.1:{port}/x"), None, None)
        .read(100)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

#[tokio::test]
async fn messages_hold_no_secret() {
    let base = fake_server(Fake::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "\nTOKEN-S3CRET-0123\n").unwrap();
    let e = target(format!("{base}/echo"), Some(token.clone()), None)
        .read(100)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("500"), "{e}");
    assert!(e.to_string().contains("Bearer <red"), "{e}");
    assert!(!e.to_string().contains("S3CRET"), "{e}");
    assert!(!e.to_string().contains("TOKEN-"), "{e}");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let e = target(
        format!("http://user:PASS-S3CRET@127.0.0.1:{port}/x?api_key=KEY-S3CRET"),
        Some(token),
        None,
    )
    .read(100)
    .await
    .unwrap_err();
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(!e.to_string().contains("S3CRET"), "{e}");
}

#[tokio::test]
async fn missing_token_variable_is_a_config_error() {
    let env = EnvRef::parse("crm", "production").unwrap();
    let t = HttpTarget::from_config(
        &env,
        &LiveConfig::Http {
            url: "http://127.0.0.1:9/x".into(),
            write_url: None,
            write_method: None,
            headers: BTreeMap::new(),
            bearer_token_env: Some("JETVAULT_TEST_TOKEN_THAT_IS_NOT_SET".into()),
            bearer_token_file: None,
            secret_headers: BTreeMap::new(),
            oauth: None,
            timeout: None,
            create: None,
        },
    )
    .unwrap();
    let e = t.read(10).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.to_string()
            .contains("JETVAULT_TEST_TOKEN_THAT_IS_NOT_SET")
    );
}
