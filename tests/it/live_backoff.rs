//! The HTTP live target backs off when the platform asks it to: a 429 or a 503 with
//! `Retry-After` is retried after the wait asked for (seconds or an HTTP date), a bounded
//! number of times; a bare 503 is not retried; the error after the last retry is the
//! usual `Unavailable`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::get;

use jetvault_core::EnvRef;
use jetvault_core::config::LiveConfig;
use jetvault_core::error::ErrorKind;
use jetvault_core::live::LiveTarget;
use jetvault_core::live::http::HttpTarget;
use jetvault_core::live::http::retry::MAX_RETRIES;

/// Answers `status` with `retry_after` to the first `refusals` GETs, then `{}`.
#[derive(Clone)]
struct Busy {
    status: StatusCode,
    retry_after: Option<&'static str>,
    refusals: usize,
    gets: Arc<AtomicUsize>,
}

async fn serve(busy: Busy) -> String {
    async fn get_cfg(State(b): State<Busy>) -> (StatusCode, HeaderMap, &'static str) {
        let n = b.gets.fetch_add(1, Ordering::SeqCst);
        let mut h = HeaderMap::new();
        if n < b.refusals {
            if let Some(v) = b.retry_after {
                h.insert("retry-after", HeaderValue::from_static(v));
            }
            return (b.status, h, "slow down");
        }
        (StatusCode::OK, h, "{}")
    }
    let app = Router::new()
        .route("/config", get(get_cfg))
        .with_state(busy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/config")
}

fn target(url: String) -> HttpTarget {
    let env = EnvRef::parse("crm", "production").unwrap();
    HttpTarget::from_config(
        &env,
        &LiveConfig::Http {
            url,
            write_url: None,
            write_method: None,
            headers: BTreeMap::new(),
            bearer_token_env: None,
            bearer_token_file: None,
            secret_headers: BTreeMap::new(),
            oauth: None,
            timeout: None,
            create: None,
        },
    )
    .unwrap()
}

async fn read(
    status: StatusCode,
    retry_after: Option<&'static str>,
    refusals: usize,
) -> (Result<bytes::Bytes, jetvault_core::Error>, usize) {
    let gets = Arc::new(AtomicUsize::new(0));
    let url = serve(Busy {
        status,
        retry_after,
        refusals,
        gets: gets.clone(),
    })
    .await;
    let result = target(url).read(1 << 20).await;
    (result, gets.load(Ordering::SeqCst))
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_asked_for() {
    let started = std::time::Instant::now();
    let (r, gets) = read(StatusCode::TOO_MANY_REQUESTS, Some("1"), 2).await;
    assert_eq!(&r.unwrap()[..], b"{}");
    assert_eq!(gets, 3, "two refusals, then the answer");
    // The two waits of one second were honoured (a lower bound, not a timing budget).
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
}

#[tokio::test]
async fn a_503_with_an_http_date_is_retried() {
    // A date in the past: retry at once.
    let (r, gets) = read(
        StatusCode::SERVICE_UNAVAILABLE,
        Some("Wed, 21 Oct 2015 07:28:00 GMT"),
        1,
    )
    .await;
    assert_eq!(&r.unwrap()[..], b"{}");
    assert_eq!(gets, 2);
}

#[tokio::test]
async fn retries_are_bounded_and_end_in_the_usual_error() {
    let (r, gets) = read(StatusCode::TOO_MANY_REQUESTS, Some("0"), usize::MAX).await;
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("429"), "{e}");
    assert_eq!(gets, 1 + MAX_RETRIES as usize);
}

#[tokio::test]
async fn a_bare_503_is_an_outage_and_not_retried() {
    let (r, gets) = read(StatusCode::SERVICE_UNAVAILABLE, None, usize::MAX).await;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::Unavailable);
    assert_eq!(gets, 1);
}
