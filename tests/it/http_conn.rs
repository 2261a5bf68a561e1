//! How `jetvault serve` handles HTTP/1.1 connections (`src/http/conn/`), spoken to over
//! raw sockets: plain GETs are answered by jetvault's own connection path (a large
//! released configuration with sendfile), everything else by hyper, on the same
//! connection when a client mixes them: keep-alive, pipelining, a head that arrives a
//! byte at a time, HEAD, HTTP/1.0, a POST after GETs, heads too large for the fast path,
//! `Connection: close` (with pipelined bytes after it: lingering close), `Host` checks,
//! and shutdown with idle connections open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::serve::{LARGE, MEDIUM, OP, RD, Server, config};
use crate::harness::{StoreSpec, corpus};

const ENV: &str = "/v1/apps/crm/envs/production";

/// A server on a fresh local store with `LARGE` released as `crm/production`.
fn released() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let server = Server::start(dir.path(), &config(&store, "", ""));
    let input = dir.path().join("large.json");
    std::fs::write(&input, corpus(LARGE)).unwrap();
    for args in [
        vec![
            "backup",
            "crm",
            "production",
            "--from",
            input.to_str().unwrap(),
        ],
        vec!["release", "crm", "production", "1"],
    ] {
        let out = server.cli().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    (dir, server)
}

fn connect(server: &Server) -> (TcpStream, BufReader<TcpStream>) {
    let addr = server.base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {RD}\r\n{extra}\r\n")
}

#[derive(Debug)]
struct Resp {
    version: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response; `head_only` for the answer to HEAD (no body follows).
fn read(r: &mut BufReader<TcpStream>, head_only: bool) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let mut parts = line.trim_end().splitn(3, ' ');
    let version = parts.next().unwrap().to_string();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {line:?}"));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).unwrap();
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':').unwrap();
        headers.push((n.to_string(), v.trim().to_string()));
    }
    let mut resp = Resp {
        version,
        status,
        headers,
        body: Vec::new(),
    };
    if !head_only && status != 304 && status != 204 {
        let len: usize = resp
            .header("content-length")
            .unwrap_or_else(|| panic!("no content-length: {resp:?}"))
            .parse()
            .unwrap();
        resp.body = vec![0; len];
        r.read_exact(&mut resp.body).unwrap();
    }
    resp
}

/// A counter's value from `/metrics` (0 when absent), read on a connection of its own.
fn metric(server: &Server, series: &str) -> u64 {
    let (mut w, mut r) = connect(server);
    w.write_all(get("/metrics", "Connection: close\r\n").as_bytes())
        .unwrap();
    let text = String::from_utf8(read(&mut r, false).body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

const SENDFILE: &str = "jetvault_http_sendfile_bytes_total";
const BY_JETVAULT: &str = "jetvault_http_connections_total{server=\"jetvault\"}";
const BY_HYPER: &str = "jetvault_http_connections_total{server=\"hyper\"}";

/// The connection is closed: the next read gives end of file.
fn assert_closed(r: &mut BufReader<TcpStream>) {
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "bytes after the last response: {rest:?}");
}

#[test]
fn keep_alive_pipelining_and_a_post_after_gets_on_one_connection() {
    let (_dir, server) = released();
    let large = corpus(LARGE);
    let (mut w, mut r) = connect(&server);

    // Three GETs in one write: the configuration twice (sendfile), the pointer once.
    let config = get(&format!("{ENV}/release/config"), "");
    let pointer = get(&format!("{ENV}/release"), "");
    w.write_all(format!("{config}{pointer}{config}").as_bytes())
        .unwrap();
    let a = read(&mut r, false);
    let b = read(&mut r, false);
    let c = read(&mut r, false);
    for resp in [&a, &c] {
        assert_eq!(resp.status, 200, "{:?}", resp.headers);
        assert_eq!(resp.body, &large[..], "the configuration differs");
        assert_eq!(resp.header("content-type"), Some("application/json"));
        assert!(resp.header("etag").is_some() && resp.header("date").is_some());
    }
    assert_eq!(b.status, 200);
    let release: serde_json::Value = serde_json::from_slice(&b.body).unwrap();
    assert_eq!(release["version"], 1);
    // Both copies of the configuration went out with sendfile, nothing else did.
    assert_eq!(metric(&server, SENDFILE), 2 * large.len() as u64);

    // 304 on the same connection: no body, the connection goes on.
    let etag = a.header("etag").unwrap().to_string();
    w.write_all(
        get(
            &format!("{ENV}/release/config"),
            &format!("If-None-Match: {etag}\r\n"),
        )
        .as_bytes(),
    )
    .unwrap();
    let not_modified = read(&mut r, false);
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));

    // A POST with a body: hyper takes the connection over, bytes read so far included
    // (the upload and the GET after it go in one write).
    let body = corpus(MEDIUM);
    let mut post = format!(
        "POST {ENV}/snapshots HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {OP}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    post.extend_from_slice(&body);
    post.extend_from_slice(get(&format!("{ENV}/snapshots/2/config"), "").as_bytes());
    w.write_all(&post).unwrap();
    let uploaded = read(&mut r, false);
    assert_eq!(
        uploaded.status,
        201,
        "{}",
        String::from_utf8_lossy(&uploaded.body)
    );
    let content = read(&mut r, false);
    assert_eq!(content.status, 200);
    assert_eq!(content.body, &body[..]);

    // Still the large configuration, now through hyper.
    w.write_all(config.as_bytes()).unwrap();
    assert_eq!(read(&mut r, false).body, &large[..]);
    assert_eq!(metric(&server, SENDFILE), 2 * large.len() as u64);

    // Counted when it closes: this connection as hyper's, the /metrics ones as jetvault's.
    let (hyper, jetvault) = (metric(&server, BY_HYPER), metric(&server, BY_JETVAULT));
    assert_eq!(hyper, 0);
    drop((w, r));
    eventually(|| metric(&server, BY_HYPER) == 1);
    assert!(metric(&server, BY_JETVAULT) > jetvault);
}

/// Waits up to 10 s for `ok`.
fn eventually(ok: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "never came true");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_stored_zstd_frame_goes_out_with_sendfile_too() {
    let (_dir, server) = released();
    let (mut w, mut r) = connect(&server);
    w.write_all(
        get(
            &format!("{ENV}/release/config"),
            "Accept-Encoding: zstd\r\n",
        )
        .as_bytes(),
    )
    .unwrap();
    let resp = read(&mut r, false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-encoding"), Some("zstd"));
    assert_eq!(
        zstd::decode_all(&resp.body[..]).unwrap(),
        &corpus(LARGE)[..]
    );
    assert_eq!(metric(&server, SENDFILE), resp.body.len() as u64);
}

#[test]
fn a_head_sent_a_byte_at_a_time_is_answered() {
    let (_dir, server) = released();
    let (mut w, mut r) = connect(&server);
    w.set_nodelay(true).unwrap();
    for byte in get(&format!("{ENV}/release/config"), "Connection: close\r\n").bytes() {
        w.write_all(&[byte]).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let resp = read(&mut r, false);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, &corpus(LARGE)[..]);
    assert_eq!(resp.header("connection"), Some("close"));
    assert_closed(&mut r);
}

#[test]
fn head_and_http_1_0_are_answered_by_hyper() {
    let (_dir, server) = released();
    let large = corpus(LARGE);

    let (mut w, mut r) = connect(&server);
    w.write_all(
        format!(
            "HEAD {ENV}/release/config HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {RD}\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let head = read(&mut r, true);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(large.len().to_string().as_str())
    );

    let (mut w, mut r) = connect(&server);
    w.write_all(
        format!("GET {ENV}/release/config HTTP/1.0\r\nAuthorization: Bearer {RD}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let old = read(&mut r, false);
    assert_eq!((old.version.as_str(), old.status), ("HTTP/1.0", 200));
    assert_eq!(old.body, &large[..]);
    assert_closed(&mut r);
}

#[test]
fn heads_too_large_for_the_fast_path_are_hypers_to_judge() {
    let (_dir, server) = released();
    // 20 KB of headers: over the fast path's 16 KiB, within hyper's limits: served.
    let (mut w, mut r) = connect(&server);
    let padding = format!("X-Padding: {}\r\n", "p".repeat(20_000));
    w.write_all(get(&format!("{ENV}/release"), &padding).as_bytes())
        .unwrap();
    assert_eq!(read(&mut r, false).status, 200);

    // 101 headers: more than hyper takes: 431, and the connection is closed.
    let (mut w, mut r) = connect(&server);
    let many: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    w.write_all(get(&format!("{ENV}/release"), &many).as_bytes())
        .unwrap();
    assert_eq!(read(&mut r, false).status, 431);
    assert_closed(&mut r);

    // Not HTTP at all: 400.
    let (mut w, mut r) = connect(&server);
    w.write_all(b"HELLO THERE\r\n\r\n").unwrap();
    assert_eq!(read(&mut r, false).status, 400);
}

#[test]
fn errors_from_the_router_keep_their_status_and_body() {
    let (_dir, server) = released();
    let (mut w, mut r) = connect(&server);
    let no_token = format!("GET {ENV}/release/config HTTP/1.1\r\nHost: t\r\n\r\n");
    w.write_all(no_token.as_bytes()).unwrap();
    let denied = read(&mut r, false);
    assert_eq!(denied.status, 401);
    let body: serde_json::Value = serde_json::from_slice(&denied.body).unwrap();
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");

    w.write_all(get("/v1/apps/crm/envs/nope/release/config", "").as_bytes())
        .unwrap();
    assert_eq!(read(&mut r, false).status, 404);
    w.write_all(get("/v1/apps/BAD!/envs/production/release", "").as_bytes())
        .unwrap();
    assert_eq!(read(&mut r, false).status, 400);
}

#[test]
fn shutdown_closes_idle_connections_and_exits_cleanly() {
    let (_dir, mut server) = released();
    // One idle connection on the fast path, one that hyper holds (after a HEAD).
    let (mut fast_w, mut fast_r) = connect(&server);
    fast_w
        .write_all(get(&format!("{ENV}/release"), "").as_bytes())
        .unwrap();
    assert_eq!(read(&mut fast_r, false).status, 200);
    let (mut hyper_w, mut hyper_r) = connect(&server);
    hyper_w
        .write_all(
            format!("HEAD {ENV}/release HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {RD}\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
    assert_eq!(read(&mut hyper_r, true).status, 200);

    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}\n{}", server.stderr());
    assert_closed(&mut fast_r);
    assert_closed(&mut hyper_r);
}

/// Hands a fresh connection to hyper with a HEAD of the pointer.
fn connect_hyper(server: &Server) -> (TcpStream, BufReader<TcpStream>) {
    let (mut w, mut r) = connect(server);
    w.write_all(
        format!("HEAD {ENV}/release HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {RD}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(read(&mut r, true).status, 200);
    (w, r)
}

#[test]
fn a_request_without_one_valid_host_is_a_400_on_both_paths() {
    let (_dir, server) = released();
    for hyper in [false, true] {
        for host in ["", "Host: a\r\nHost: b\r\n", "Host: a b\r\n"] {
            let (mut w, mut r) = if hyper {
                connect_hyper(&server)
            } else {
                connect(&server)
            };
            w.write_all(
                format!("GET {ENV}/release HTTP/1.1\r\n{host}Authorization: Bearer {RD}\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
            let resp = read(&mut r, false);
            assert_eq!(resp.status, 400, "{hyper} {host:?}");
            let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
            assert_eq!(body["error"]["code"], "invalid_input", "{body}");
            assert_eq!(resp.header("connection"), Some("close"));
            assert_closed(&mut r);
        }
    }
}

#[test]
fn connection_close_then_pipelined_bytes_still_gets_the_whole_configuration() {
    let (_dir, server) = released();
    let large = corpus(LARGE);
    for hyper in [false, true] {
        let (mut w, mut r) = if hyper {
            connect_hyper(&server)
        } else {
            connect(&server)
        };
        let mut raw = get(&format!("{ENV}/release/config"), "Connection: close\r\n");
        for _ in 0..500 {
            raw.push_str(&get(&format!("{ENV}/release"), ""));
        }
        w.write_all(raw.as_bytes()).unwrap();
        let resp = read(&mut r, false);
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body.len(), large.len(), "{hyper}: cut short");
        assert_eq!(resp.body, &large[..]);
        assert_closed(&mut r);
    }
}

/// `[server] head_timeout` is the server's: a client that sends nothing is closed after
/// it, not after the 10 s default.
#[test]
fn the_head_timeout_is_a_setting() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    let server = Server::start(dir.path(), &config(&store, "head_timeout = \"1s\"\n", ""));
    let mut c = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    let mut rest = Vec::new();
    let read = c.read_to_end(&mut rest);
    assert!(
        read.is_ok(),
        "the silent connection was not closed within 6 s: {read:?}"
    );
}

/// A fragment in the request target is a 400 on both paths (RFC 9112 section 3.2: no
/// target form has one): on hyper's path too, though hyper's parser drops it, for a head
/// too large for jetvault's path, for a request after a handed-over one, and after a
/// POST's body.
#[test]
fn a_fragment_in_the_target_is_a_400_on_both_paths() {
    let (_dir, server) = released();
    let pad = format!("X-Pad: {}\r\n", "p".repeat(17_000));
    let target = format!("{ENV}/release#frag");
    let body = corpus(MEDIUM);
    let post = |target: &str| {
        let mut raw = format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {OP}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        raw
    };
    let cases: Vec<(&str, bool, Vec<u8>)> = vec![
        ("jetvault's path", false, get(&target, "").into_bytes()),
        (
            "a 17 KB head (hyper)",
            false,
            get(&target, &pad).into_bytes(),
        ),
        ("after a HEAD (hyper)", true, get(&target, "").into_bytes()),
        ("a POST (hyper)", false, post(&format!("{ENV}/snapshots#x"))),
        ("after a POST's body (hyper)", false, {
            let mut raw = post(&format!("{ENV}/snapshots"));
            raw.extend_from_slice(get(&target, "").as_bytes());
            raw
        }),
    ];
    for (name, handed_over, raw) in cases {
        let (mut w, mut r) = if handed_over {
            connect_hyper(&server)
        } else {
            connect(&server)
        };
        w.write_all(&raw).unwrap();
        let mut resp = read(&mut r, false);
        if name.starts_with("after a POST") {
            assert_eq!(resp.status, 201, "{name}: the POST itself");
            resp = read(&mut r, false);
        }
        assert_eq!(
            resp.status,
            400,
            "{name}: {}",
            String::from_utf8_lossy(&resp.body)
        );
        let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(body["error"]["code"], "invalid_input", "{name}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("fragment"),
            "{name}: {body}"
        );
        assert_eq!(resp.header("connection"), Some("close"), "{name}");
        assert_closed(&mut r);
    }
    // Without the fragment, the same large head is served.
    let (mut w, mut r) = connect(&server);
    w.write_all(get(&format!("{ENV}/release"), &pad).as_bytes())
        .unwrap();
    assert_eq!(read(&mut r, false).status, 200);
}
