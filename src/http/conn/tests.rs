//! Unit tests of the connection path.

use std::io::Write as _;

use super::file_body::Slots;
use super::*;
use tokio::io::AsyncWriteExt as _;

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
pub(super) async fn start(
    router: Router,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<io::Result<()>>,
) {
    start_with(router, Limits::default()).await
}

/// [`start`] with other limits.
async fn start_with(
    router: Router,
    limits: Limits,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<io::Result<()>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = Arc::new(HttpMetrics::new(["/"]));
    let server = tokio::spawn(serve_with(listener, router, metrics, limits, async move {
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

/// The size of [`big`]'s body: more than loopback's socket buffers hold.
const BIG: usize = 32 << 20;

/// Routes for the tests: `/small`, `/big` ([`BIG`] bytes from memory), `/bye` (the
/// handler asks to close), `/slow` (waits for `release`).
fn router() -> Router {
    Router::new()
        .route("/small", axum::routing::get(|| async { "small" }))
        .route("/big", axum::routing::get(|| async { vec![b'x'; BIG] }))
        .route(
            "/bye",
            axum::routing::get(|| async { ([(axum::http::header::CONNECTION, "close")], "bye") }),
        )
}

/// Hands a fresh connection to hyper (a HEAD) and reads the answer's head.
async fn via_hyper(addr: SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"HEAD /small HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut c).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    c
}

/// Reads up to the end of a response head.
pub(super) async fn read_head(c: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if c.read(&mut b).await.unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    String::from_utf8(head).unwrap()
}

/// Reads until the server closes; the time it took.
async fn closed_after(c: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(within, c.read_to_end(&mut rest))
        .await
        .expect("still open")
        .unwrap();
    started.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_sends_nothing_is_closed_after_the_head_timeout() {
    let (addr, _stop, _server) = start(router()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let took = closed_after(&mut c, 2 * HEAD_TIMEOUT).await;
    assert!(took >= HEAD_TIMEOUT - Duration::from_millis(10), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (addr, _stop, _server) = start(router()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /small HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(read_head(&mut c).await.starts_with("HTTP/1.1 200"));
    let took = closed_after(&mut c, 2 * IDLE_TIMEOUT).await;
    assert!(took >= IDLE_TIMEOUT - Duration::from_millis(10), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn hypers_path_closes_idle_connections_after_the_head_timeout() {
    let (addr, _stop, _server) = start(router()).await;
    let mut c = via_hyper(addr).await;
    let took = closed_after(&mut c, 2 * HEAD_TIMEOUT).await;
    assert!(took >= HEAD_TIMEOUT - Duration::from_millis(10), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn hypers_path_serves_past_the_first_heads_deadline() {
    let (addr, _stop, _server) = start(router()).await;
    let mut c = via_hyper(addr).await;
    // Requests 0.6 and 1.2 head timeouts after the accept, each within one of the last.
    for _ in 0..2 {
        tokio::time::sleep(HEAD_TIMEOUT * 6 / 10).await;
        c.write_all(b"GET /small HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let head = read_head(&mut c).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head:?}");
        let mut body = [0u8; 5];
        c.read_exact(&mut body).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_big_head_never_finished_is_closed_within_one_head_timeout_of_the_accept() {
    let (addr, _stop, _server) = start(router()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    // Over MAX_HEAD: hyper's to read, never finished.
    let padding = format!(
        "GET /small HTTP/1.1\r\nHost: a\r\nX-Pad: {}",
        "p".repeat(MAX_HEAD)
    );
    c.write_all(padding.as_bytes()).await.unwrap();
    let _ = closed_after(&mut c, 3 * HEAD_TIMEOUT).await;
    let took = started.elapsed();
    assert!(
        took >= HEAD_TIMEOUT - Duration::from_millis(10)
            && took < HEAD_TIMEOUT + Duration::from_secs(1),
        "{took:?}"
    );
}

/// Asks for `/big` and never reads: the server gives up after the write timeout.
async fn a_stuck_reader_is_dropped(mut c: TcpStream, prefix: &[u8]) {
    c.write_all(prefix).await.unwrap();
    c.write_all(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    // Let the server fill the socket buffers, then time how long it waits.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let started = Instant::now();
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    // Reading only after the timeout: the server has closed (end of file or reset)
    // before the whole body came.
    tokio::time::sleep(WRITE_TIMEOUT + Duration::from_secs(1)).await;
    loop {
        match c.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got < BIG, "the whole body came: the write never timed out");
    assert!(started.elapsed() >= WRITE_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_reads_is_dropped_after_the_write_timeout() {
    let (addr, _stop, _server) = start(router()).await;
    a_stuck_reader_is_dropped(TcpStream::connect(addr).await.unwrap(), b"").await;
}

#[tokio::test(start_paused = true)]
async fn hypers_path_drops_a_client_that_never_reads_after_the_write_timeout() {
    let (addr, _stop, _server) = start(router()).await;
    let c = via_hyper(addr).await;
    a_stuck_reader_is_dropped(c, b"").await;
}

#[tokio::test]
async fn at_the_cap_the_oldest_idle_connection_gives_way() {
    let limits = Limits {
        max_connections: 2,
        ..Limits::default()
    };
    let (addr, _stop, _server) = start_with(router(), limits).await;
    let mut oldest = TcpStream::connect(addr).await.unwrap();
    let mut hyper_idle = via_hyper(addr).await;
    // A third: the oldest (idle, never sent a byte) is closed to make room.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third
        .write_all(b"GET /small HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(read_head(&mut third).await.starts_with("HTTP/1.1 200"));
    closed_after(&mut oldest, Duration::from_secs(5)).await;
    // A fourth: now hyper's idle connection gives way.
    let mut fourth = TcpStream::connect(addr).await.unwrap();
    fourth
        .write_all(b"GET /small HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    assert!(read_head(&mut fourth).await.starts_with("HTTP/1.1 200"));
    closed_after(&mut hyper_idle, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_busy_connection_is_not_evicted_and_the_next_one_waits() {
    let entered = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let router = router().route(
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
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let (addr, _stop, _server) = start_with(router, limits).await;
    let mut busy = TcpStream::connect(addr).await.unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    entered.notified().await;
    let mut next = TcpStream::connect(addr).await.unwrap();
    next.write_all(b"GET /small HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut b = [0u8; 1];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), next.read(&mut b))
            .await
            .is_err(),
        "answered past the cap"
    );
    release.notify_one();
    let mut answer = String::new();
    busy.read_to_string(&mut answer).await.unwrap();
    assert!(answer.ends_with("done"), "{answer}");
    assert!(read_head(&mut next).await.starts_with("HTTP/1.1 200"));
}

/// The status line of the answer to `raw` on a fresh connection, on jetvault's path or
/// (after a HEAD) on hyper's, and whether the connection was closed after it.
async fn status_of(addr: SocketAddr, raw: &[u8], hyper: bool) -> (String, bool) {
    let mut c = if hyper {
        via_hyper(addr).await
    } else {
        TcpStream::connect(addr).await.unwrap()
    };
    c.write_all(raw).await.unwrap();
    let head = read_head(&mut c).await;
    let status = head.lines().next().unwrap_or("").to_string();
    let closed = head.to_ascii_lowercase().contains("connection: close");
    (status, closed)
}

#[tokio::test]
async fn host_must_be_there_once_and_valid_on_both_paths() {
    let (addr, _stop, _server) = start(router()).await;
    for hyper in [false, true] {
        for raw in [
            &b"GET /small HTTP/1.1\r\n\r\n"[..],
            b"GET /small HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET /small HTTP/1.1\r\nHost: a b\r\n\r\n",
            b"GET /small HTTP/1.1\r\nHost: u@a\r\n\r\n",
            b"GET /small HTTP/1.1\r\nHost: a:port\r\n\r\n",
            b"GET /small HTTP/1.1\r\nHost: a/b\r\n\r\n",
        ] {
            let (status, closed) = status_of(addr, raw, hyper).await;
            assert_eq!(
                status,
                "HTTP/1.1 400 Bad Request",
                "{hyper} {:?}",
                String::from_utf8_lossy(raw)
            );
            assert!(closed, "{hyper} {:?}", String::from_utf8_lossy(raw));
        }
        for raw in [
            &b"GET /small HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"GET /small HTTP/1.1\r\nHost: a:8080\r\n\r\n",
            b"GET /small HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
            b"GET /small HTTP/1.1\r\nHost:\r\n\r\n",
        ] {
            let (status, _) = status_of(addr, raw, hyper).await;
            assert_eq!(
                status,
                "HTTP/1.1 200 OK",
                "{hyper} {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
    // HTTP/1.0 needs no Host.
    let (status, _) = status_of(addr, b"GET /small HTTP/1.0\r\n\r\n", false).await;
    assert_eq!(status, "HTTP/1.0 200 OK");
}

#[tokio::test]
async fn a_fragment_in_the_target_is_a_400_on_jetvaults_path() {
    let (addr, _stop, _server) = start(router()).await;
    let (status, closed) =
        status_of(addr, b"GET /small#x HTTP/1.1\r\nHost: a\r\n\r\n", false).await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert!(closed);
}

#[tokio::test]
async fn a_handlers_connection_close_is_sent_and_obeyed_on_both_paths() {
    let (addr, _stop, _server) = start(router()).await;
    for hyper in [false, true] {
        let mut c = if hyper {
            via_hyper(addr).await
        } else {
            TcpStream::connect(addr).await.unwrap()
        };
        c.write_all(b"GET /bye HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), c.read_to_string(&mut answer))
            .await
            .expect("the connection stayed open")
            .unwrap();
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("connection: close\r\n"),
            "{hyper} {answer}"
        );
        assert!(answer.ends_with("\r\n\r\nbye"), "{hyper} {answer}");
    }
}

#[tokio::test]
async fn connection_close_with_pipelined_bytes_still_delivers_the_whole_answer() {
    let (addr, _stop, _server) = start(router()).await;
    for hyper in [false, true] {
        let mut c = if hyper {
            via_hyper(addr).await
        } else {
            TcpStream::connect(addr).await.unwrap()
        };
        // The request, then more requests the server will not answer, all before reading.
        let mut raw = b"GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_vec();
        for _ in 0..2000 {
            raw.extend_from_slice(b"GET /small HTTP/1.1\r\nHost: a\r\n\r\n");
        }
        c.write_all(&raw).await.unwrap();
        let head = read_head(&mut c).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let mut body = Vec::new();
        c.read_to_end(&mut body)
            .await
            .unwrap_or_else(|e| panic!("{hyper}: {e} after {} bytes", body.len()));
        assert_eq!(body.len(), BIG, "{hyper}");
    }
}

mod head_props {
    use proptest::prelude::*;

    use super::super::head::{Head, parse};

    /// A header a client may send on the fast path (no framing or upgrade headers).
    fn header() -> impl Strategy<Value = (String, String)> {
        (
            "x-[a-z0-9-]{1,20}|accept|if-none-match|authorization|user-agent",
            "[ -~]{0,40}",
        )
            .prop_map(|(n, v)| (n, v.trim().to_string()))
    }

    fn head() -> impl Strategy<Value = (String, Vec<(String, String)>, bool)> {
        (
            "/[a-zA-Z0-9/._~%-]{0,40}(\\?[a-z0-9=&%]{0,20})?",
            proptest::collection::vec(header(), 0..20),
            any::<bool>(),
        )
    }

    fn render(path: &str, headers: &[(String, String)], close: bool) -> String {
        let mut raw = format!("GET {path} HTTP/1.1\r\nHost: h\r\n");
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        if close {
            raw.push_str("Connection: close\r\n");
        }
        raw.push_str("\r\n");
        raw
    }

    proptest! {
        #[test]
        fn any_bytes_parse_without_panicking_and_a_taken_head_is_within_them(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
        ) {
            if let Head::Get(_, len, _) | Head::Bad(_, len) = parse(&bytes) {
                prop_assert!(len <= bytes.len());
                prop_assert!(bytes[..len].ends_with(b"\n\n") || bytes[..len].ends_with(b"\r\n\r\n"));
            }
        }

        #[test]
        fn a_valid_get_is_taken_whole_with_its_headers(
            (path, headers, close) in head(),
            rest in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let raw = render(&path, &headers, close);
            let mut bytes = raw.clone().into_bytes();
            bytes.extend_from_slice(&rest);
            let Head::Get(req, len, closing) = parse(&bytes) else {
                return Err(TestCaseError::fail(format!("not taken: {raw:?}")));
            };
            prop_assert_eq!(len, raw.len());
            prop_assert_eq!(closing, close);
            prop_assert_eq!(req.uri().to_string(), path);
            for (n, v) in &headers {
                prop_assert!(
                    req.headers().get_all(n.as_str()).iter().any(|x| x.as_bytes() == v.as_bytes()),
                    "{} lost", n
                );
            }
            prop_assert_eq!(req.headers().len(), headers.len() + 1 + usize::from(close));
        }

        #[test]
        fn every_strict_prefix_of_a_head_needs_more(
            (path, headers, close) in head(),
            cut in any::<prop::sample::Index>(),
        ) {
            let raw = render(&path, &headers, close);
            let cut = cut.index(raw.len());
            prop_assert!(matches!(parse(&raw.as_bytes()[..cut]), Head::Partial), "{:?}", &raw[..cut]);
        }

        #[test]
        fn framing_headers_always_go_to_hyper(
            (path, headers, close) in head(),
            framing in "(Content-Length: [1-9][0-9]{0,5}|Transfer-Encoding: [a-z, ]{1,20}|Upgrade: [a-z0-9]{1,10}|Expect: [a-z0-9-]{1,12})",
            at in any::<prop::sample::Index>(),
        ) {
            let mut headers = headers;
            let (n, v) = framing.split_once(": ").unwrap();
            headers.insert(at.index(headers.len() + 1), (n.to_string(), v.to_string()));
            let raw = render(&path, &headers, close);
            prop_assert!(matches!(parse(raw.as_bytes()), Head::Hyper), "{:?}", raw);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn out_of_file_descriptors_evicts_the_oldest_idle_connection_and_backs_off() {
    let registry = slots::Registry::new(10);
    let oldest = registry.register();
    let busy_one = registry.register();
    busy_one.slot.set_busy(true);
    let started = Instant::now();
    accept_error(
        io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error()),
        &registry,
    )
    .await;
    assert_eq!(started.elapsed(), ACCEPT_BACKOFF);
    tokio::time::timeout(Duration::from_millis(1), oldest.slot.evicted())
        .await
        .expect("the oldest idle connection was not asked to close");
    // The busy one was not; a second EMFILE finds nobody else to ask.
    assert!(!registry.evict_one());
    // A connection reset before accept is no reason to pause.
    let started = Instant::now();
    accept_error(io::ErrorKind::ConnectionReset.into(), &registry).await;
    assert_eq!(started.elapsed(), Duration::ZERO);
}
