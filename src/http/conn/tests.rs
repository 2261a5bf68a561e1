//! Unit tests of the connection path.

use std::io::Write as _;

use super::file_body::Slots;
use super::*;

#[test]
fn a_plain_get_is_taken_with_its_head_length() {
    let raw = b"GET /v1/x?y=1 HTTP/1.1\r\nHost: a\r\nIf-None-Match: \"e\"\r\n\r\nGET /next";
    let Head::Get(req, len, close) = parse(raw) else {
        panic!("not taken")
    };
    assert_eq!(len, raw.len() - b"GET /next".len());
    assert!(!close);
    assert_eq!(req.uri(), "/v1/x?y=1");
    assert_eq!(req.headers()["if-none-match"], "\"e\"");
}

#[test]
fn connection_close_is_noticed_among_tokens() {
    let raw = b"GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n";
    assert!(matches!(parse(raw), Head::Get(_, _, true)));
}

#[test]
fn anything_unusual_goes_to_hyper() {
    for raw in [
        &b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"[..],
        b"HEAD / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"GET http://a/ HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        b"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"NONSENSE\r\n\r\n",
    ] {
        assert!(
            matches!(parse(raw), Head::Hyper),
            "{:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn a_head_cut_short_needs_more() {
    assert!(matches!(parse(b""), Head::Partial));
    assert!(matches!(
        parse(b"GET /v1/x HTTP/1.1\r\nHost:"),
        Head::Partial
    ));
}

#[test]
fn small_bodies_get_no_file() {
    assert!(FileBody::new("small", &[b'x'; FILE_BODY_MIN - 1]).is_none());
}

#[cfg(target_os = "linux")]
#[test]
fn a_file_body_is_sealed() {
    let f = FileBody::new("sealed", &vec![b'x'; FILE_BODY_MIN]).expect("memfd");
    assert_eq!(f.len, FILE_BODY_MIN as u64);
    let mut file = &f.file.0;
    assert!(file.write_all(b"y").is_err(), "a sealed memfd took a write");
}

/// `conn::serve` in this process with `router`; the shutdown sender and the server.
async fn start(
    router: Router,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = Arc::new(HttpMetrics::new(["/"]));
    let server = tokio::spawn(serve(listener, router, metrics, async move {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

#[tokio::test(start_paused = true)]
async fn a_head_that_never_ends_is_dropped_after_the_timeout() {
    let (addr, _stop, _server) = start(Router::new()).await;
    let mut client = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        .await
        .unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(2 * HEAD_TIMEOUT, client.read_to_end(&mut rest))
        .await
        .expect("the connection is still open after twice the head timeout")
        .unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        started.elapsed() >= HEAD_TIMEOUT,
        "closed after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_request_in_flight_at_shutdown_is_answered_then_the_connection_closed() {
    let entered = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let router = Router::new().route(
        "/slow",
        axum::routing::get({
            let (entered, release) = (entered.clone(), release.clone());
            move || async move {
                entered.notify_one();
                release.notified().await;
                "done"
            }
        }),
    );
    let (addr, stop, server) = start(router).await;
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    entered.notified().await;

    stop.send(()).unwrap();
    // The idle connection is closed; the busy one is not, yet.
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!server.is_finished(), "stopped with a request in flight");

    release.notify_one();
    let mut answer = String::new();
    busy.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\ndone"), "{answer}");
    server.await.unwrap().unwrap();
}

#[test]
fn slots_have_a_ceiling_and_come_back() {
    let slots = Slots::new(2);
    assert!(slots.take() && slots.take());
    assert!(!slots.take(), "a third slot of two");
    slots.give_back();
    assert!(slots.take());
}
