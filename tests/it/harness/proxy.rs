//! A TCP proxy between jetvault and an S3 server: it logs every request jetvault makes
//! and can make S3 fail in the middle of an upload. No production code is involved:
//! jetvault is simply given the proxy's address as its S3 endpoint.
//!
//! The proxy reads HTTP/1.1 as it relays (the request's head and body, framed by
//! `Content-Length` or chunked, then the response the same way), so it knows where each
//! request starts on a kept-alive connection. Every exchange is logged with its method,
//! target, conditional headers and status ([`Exchange`]), and [`Mode::StopAtNextPut`]
//! cuts exactly the next upload.
//!
//! ```ignore
//! let proxy = Proxy::start(&bucket.endpoint);
//! let jv = Jv::with_store(bucket.spec_via("jetvault", &proxy.endpoint));
//! let before = proxy.count();
//! // ... jetvault works ...
//! let made = proxy.since(before);
//! ```

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What the proxy does with the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Relays everything.
    Pass,
    /// Relays the next PUT's head and the first 100 bytes of its body, then drops the
    /// connection and goes [`Mode::Down`].
    StopAtNextPut,
    /// Drops every connection (new ones at once, open ones at their next request).
    Down,
    /// Answers every request with `503 Service Unavailable` itself, as a proxy in front
    /// of a restarting platform does; nothing reaches the upstream.
    Unavailable,
}

impl Mode {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Pass,
            1 => Self::StopAtNextPut,
            3 => Self::Unavailable,
            _ => Self::Down,
        }
    }
}

/// One request relayed and the status of its response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The request target: path and query, e.g. `/bucket/key?x-id=GetObject`.
    pub target: String,
    /// The request's `If-None-Match` header.
    pub if_none_match: Option<String>,
    /// The request's `If-Match` header.
    pub if_match: Option<String>,
    /// The response's status; 0 when the proxy cut the request.
    pub status: u16,
}

impl Exchange {
    /// The target without its query string.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }
}

impl fmt::Display for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.target)?;
        if let Some(v) = &self.if_none_match {
            write!(f, " [If-None-Match: {v}]")?;
        }
        if let Some(v) = &self.if_match {
            write!(f, " [If-Match: {v}]")?;
        }
        write!(f, " -> {}", self.status)
    }
}

/// Renders exchanges one a line, for assertion messages.
pub fn render(exchanges: &[Exchange]) -> String {
    if exchanges.is_empty() {
        return "(no requests)".into();
    }
    exchanges
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A proxy in a thread of its own (with its own runtime), listening on 127.0.0.1.
#[derive(Debug)]
pub struct Proxy {
    /// `http://127.0.0.1:PORT`: give this to jetvault as the S3 endpoint.
    pub endpoint: String,
    mode: Arc<AtomicU8>,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl Proxy {
    /// Starts a proxy in front of `upstream` (`http://HOST:PORT`).
    pub fn start(upstream: &str) -> Self {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let (m, l) = (mode.clone(), log.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the proxy's runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the proxy");
                tx.send(listener.local_addr().expect("the proxy's address"))
                    .expect("report the proxy's address");
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    if Mode::from_u8(m.load(Ordering::SeqCst)) == Mode::Down {
                        drop(client);
                        continue;
                    }
                    let (upstream, m, l) = (upstream.clone(), m.clone(), l.clone());
                    tokio::spawn(async move {
                        // An error ends this connection only; jetvault sees it closed.
                        let _ = relay(client, &upstream, &m, &l).await;
                    });
                }
            });
        });
        let addr = rx.recv().expect("the proxy started");
        Self {
            endpoint: format!("http://{addr}"),
            mode,
            log,
        }
    }

    /// Sets what happens to the next requests.
    pub fn set(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        Mode::from_u8(self.mode.load(Ordering::SeqCst))
    }

    /// Every exchange so far, in the order the responses arrived.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }

    /// How many requests were relayed so far.
    pub fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// The exchanges after the first `n` (`n` from an earlier [`Proxy::count`]).
    pub fn since(&self, n: usize) -> Vec<Exchange> {
        self.log.lock().unwrap()[n..].to_vec()
    }
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

/// A message's start line and headers (names lowercased).
#[derive(Debug)]
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: &[u8]) -> Self {
        let text = String::from_utf8_lossy(raw);
        let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
        let start = lines.next().unwrap_or_default().to_string();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Self { start, headers }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body's framing; `otherwise` when neither length nor chunking is given.
    fn framing(&self, otherwise: Framing) -> Framing {
        if self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            return Framing::Chunked;
        }
        match self.header("content-length").map(str::parse::<u64>) {
            Some(Ok(0)) => Framing::Empty,
            Some(Ok(n)) => Framing::Length(n),
            _ => otherwise,
        }
    }

    /// A response's status code.
    fn status(&self) -> u16 {
        self.start
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

fn eof(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, what.to_string())
}

/// Reads a message head up to and including the blank line; `None` at a clean end of
/// stream before it starts.
async fn read_head<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let start = head.len();
        let n = r.read_until(b'\n', &mut head).await?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(eof("end of stream inside a message head"))
            };
        }
        let line = &head[start..];
        if line == b"\r\n" || line == b"\n" {
            if start == 0 {
                // A stray blank line between messages.
                head.clear();
                continue;
            }
            return Ok(Some(head));
        }
        if head.len() > 256 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message head too long",
            ));
        }
    }
}

/// Copies exactly `n` bytes.
async fn copy_exact<R, W>(r: &mut BufReader<R>, w: &mut W, n: u64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let copied = tokio::io::copy(&mut (&mut *r).take(n), w).await?;
    if copied == n {
        Ok(())
    } else {
        Err(eof("end of stream inside a body"))
    }
}

/// Copies one body as framed.
async fn copy_body<R, W>(r: &mut BufReader<R>, w: &mut W, framing: Framing) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match framing {
        Framing::Empty => Ok(()),
        Framing::Length(n) => copy_exact(r, w, n).await,
        Framing::UntilClose => tokio::io::copy(r, w).await.map(|_| ()),
        Framing::Chunked => loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).await? == 0 {
                return Err(eof("end of stream inside a chunked body"));
            }
            w.write_all(&line).await?;
            let text = String::from_utf8_lossy(&line);
            let size = text.trim().split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size, 16)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            if size == 0 {
                // Trailers, up to a blank line.
                loop {
                    let mut t = Vec::new();
                    if r.read_until(b'\n', &mut t).await? == 0 {
                        return Err(eof("end of stream inside chunked trailers"));
                    }
                    w.write_all(&t).await?;
                    if t == b"\r\n" || t == b"\n" {
                        return Ok(());
                    }
                }
            }
            copy_exact(r, w, size + 2).await?;
        },
    }
}

/// Relays one client connection, one exchange at a time (HTTP/1.1 without pipelining,
/// as the AWS SDK speaks it).
async fn relay(
    client: TcpStream,
    upstream: &str,
    mode: &AtomicU8,
    log: &Mutex<Vec<Exchange>>,
) -> io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let (cr, mut cw) = client.into_split();
    let (sr, mut sw) = server.into_split();
    let (mut cr, mut sr) = (BufReader::new(cr), BufReader::new(sr));
    loop {
        let Some(raw) = read_head(&mut cr).await? else {
            return Ok(());
        };
        let req = Head::parse(&raw);
        let mut parts = req.start.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let target = parts.next().unwrap_or_default().to_string();
        let mut exchange = Exchange {
            method: method.clone(),
            target,
            if_none_match: req.header("if-none-match").map(str::to_string),
            if_match: req.header("if-match").map(str::to_string),
            status: 0,
        };
        let body = req.framing(Framing::Empty);
        match Mode::from_u8(mode.load(Ordering::SeqCst)) {
            Mode::Down => return Ok(()),
            Mode::StopAtNextPut if method == "PUT" => {
                sw.write_all(&raw).await?;
                let budget = match body {
                    Framing::Length(n) => n.min(100),
                    Framing::Chunked => 100,
                    Framing::Empty | Framing::UntilClose => 0,
                };
                copy_exact(&mut cr, &mut sw, budget).await?;
                mode.store(Mode::Down as u8, Ordering::SeqCst);
                log.lock().unwrap().push(exchange);
                return Ok(());
            }
            Mode::Unavailable => {
                // The request's body is read and dropped, so the connection stays usable.
                copy_body(&mut cr, &mut tokio::io::sink(), body).await?;
                let text = "the platform is restarting";
                cw.write_all(
                    format!(
                        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\
                         content-length: {}\r\nretry-after: 1\r\n\r\n{text}",
                        text.len()
                    )
                    .as_bytes(),
                )
                .await?;
                exchange.status = 503;
                log.lock().unwrap().push(exchange);
                continue;
            }
            Mode::Pass | Mode::StopAtNextPut => {}
        }
        sw.write_all(&raw).await?;
        let expects_continue = req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        let mut body_sent = !expects_continue;
        if body_sent {
            copy_body(&mut cr, &mut sw, body).await?;
        }
        // Interim responses (100 Continue) go through; the body follows the first one.
        let resp = loop {
            let raw = read_head(&mut sr)
                .await?
                .ok_or_else(|| eof("the server closed before responding"))?;
            let head = Head::parse(&raw);
            if (100..200).contains(&head.status()) {
                cw.write_all(&raw).await?;
                if !body_sent {
                    copy_body(&mut cr, &mut sw, body).await?;
                    body_sent = true;
                }
                continue;
            }
            break (raw, head);
        };
        let (raw, head) = resp;
        exchange.status = head.status();
        // Logged before the client sees the response, so that whoever waits on the
        // client's answer finds the exchange counted.
        log.lock().unwrap().push(exchange);
        cw.write_all(&raw).await?;
        let framing = if method == "HEAD" || matches!(head.status(), 204 | 304) {
            Framing::Empty
        } else {
            head.framing(Framing::UntilClose)
        };
        copy_body(&mut sr, &mut cw, framing).await?;
        if framing == Framing::UntilClose || !body_sent {
            // The connection cannot carry another exchange.
            return Ok(());
        }
    }
}
