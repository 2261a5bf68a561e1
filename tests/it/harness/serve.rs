//! Runs the real `jetvault serve` binary for tests: writes a config, starts the process on
//! a free loopback port (`--listen 127.0.0.1:0`; the bound address is read from its
//! standard output), and stops it by PID. The store is a [`StoreSpec`], reached through
//! the config (`store` and the `[s3]` table).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::StoreSpec;

/// The `operate` token of every test config.
pub const OP: &str = "op-token-for-tests";
/// The `read` token of every test config.
pub const RD: &str = "rd-token-for-tests";

pub const SMALL: &str = super::NODERED;
pub const MEDIUM: &str = super::GRAFANA;
pub const OTHER: &str = super::APPSMITH;
pub const LARGE: &str = super::APPSMITH_LARGE;

/// A config with the two test tokens; `server` adds `[server]` keys (`pointer_ttl` is 1 s
/// unless `server` sets it), `apps` adds tables.
pub fn config(store: &StoreSpec, server: &str, apps: &str) -> String {
    let ttl = if server.contains("pointer_ttl") {
        ""
    } else {
        "pointer_ttl = \"1s\"\n"
    };
    format!(
        "{store}[server]\n{ttl}{server}\n\
         [[server.tokens]]\nname = \"ci\"\nrole = \"operate\"\nvalue = \"{OP}\"\n\
         [[server.tokens]]\nname = \"dash\"\nrole = \"read\"\nvalue = \"{RD}\"\n{apps}",
        store = store.toml()
    )
}

/// A running `jetvault serve`.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stderr: Arc<Mutex<String>>,
    /// Where its config file is.
    pub config_path: PathBuf,
}

impl Server {
    /// Starts the binary with `config_text` (written into `dir`) and waits until it
    /// listens.
    pub fn start(dir: &Path, config_text: &str) -> Self {
        Self::start_with(dir, config_text, &["serve", "--listen", "127.0.0.1:0"])
    }

    /// Starts the binary with other arguments after `--config`.
    pub fn start_with(dir: &Path, config_text: &str, args: &[&str]) -> Self {
        let config_path = dir.join(format!("jetvault-{}.toml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&config_path, config_text).expect("write the test config");
        let mut child = with_config(&config_path)
            .args(args)
            .env("RUST_LOG", "info,jetvault=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start jetvault serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut pipe = child.stderr.take().expect("stderr");
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
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(addr) = line.strip_prefix("jetvault listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "jetvault serve did not start ({status:?}); stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        Self {
            child,
            base,
            stderr,
            config_path,
        }
    }

    /// The binary with this server's config (and environment), for CLI commands
    /// against the same store: `server.cli().args([...]).output()`.
    pub fn cli(&self) -> Command {
        let mut cmd = with_config(&self.config_path);
        cmd.env("RUST_LOG", "warn")
            .env("JETVAULT_AUTHOR", "cli@jetvault");
        cmd
    }

    /// The full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the process logged so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared in the log:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for jetvault") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "jetvault serve did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The harness's command ([`super::jetvault`]) with `--config config_path`.
pub fn with_config(config_path: &Path) -> Command {
    let mut cmd = super::jetvault();
    cmd.arg("--config").arg(config_path);
    cmd
}

/// A client that never decompresses by itself (the tests look at the bytes sent).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("build the HTTP client")
}

/// A response's status, headers and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body[..self.body.len().min(500)])
            )
        })
    }

    /// A header as a string.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// The error code of an error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {:?}", self.json()))
            .to_string()
    }
}

/// Sends a request and reads the whole reply.
pub async fn send(req: reqwest::RequestBuilder) -> Reply {
    let res = req.send().await.expect("send the request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.bytes().await.expect("read the body");
    Reply {
        status,
        headers,
        body,
    }
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
