//! The one harness of the integration tests: the real `jetvault` binary, the stores it
//! runs against, the S3 servers, the corpus.
//!
//! - [`jetvault`] builds every command that runs the binary, with one environment
//!   policy: nothing from the caller's environment decides the store, the config or the
//!   log level; S3 credentials are the environment's `AWS_*` or the test servers' `test`.
//! - [`StoreSpec`] is a store the binary and the test both open: a local directory, or a
//!   bucket on LocalStack or moto ([`TestBucket::spec`]). It gives the store's URL, its
//!   config lines, the environment for the binary and the library's handle.
//! - [`cli::Jv`] runs CLI commands in a temporary world; [`serve::Server`] runs
//!   `jetvault serve`; both build on [`jetvault`].
//! - [`scenarios`] run against any store; [`proxy::Proxy`] sits between jetvault and an
//!   S3 server, counts its requests and can cut an upload (S3 going away).
//!
//! `scripts/test` starts LocalStack and moto and exports where they are:
//!
//! | variable                   | what                                      |
//! |----------------------------|-------------------------------------------|
//! | `JETVAULT_TEST_LOCALSTACK` | LocalStack's endpoint, `http://127.0.0.1:PORT` |
//! | `JETVAULT_TEST_MOTO`       | moto's endpoint                           |
//! | `JETVAULT_TEST_AWS_CLI`    | path of an `aws` command (AWS CLI v1)     |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` | `test`, `test`, `us-east-1` |
//! | `JETVAULT_CORPUS`          | optional: the corpus directory (default: `tests/data`) |
//!
//! A test asks for the server it needs and returns early when it is not there:
//!
//! ```ignore
//! let Some(bucket) = TestBucket::new(Backend::LocalStack, "something").await else {
//!     return; // a "not run" note was printed
//! };
//! let store = bucket.spec("jetvault");
//! ```
//!
//! When a server is missing and `CI=true`, the helpers PANIC with a message saying to run
//! `scripts/test`: under CI every test runs. Elsewhere they print a "not run" note and
//! the test returns.

#![allow(dead_code, unreachable_pub)]

pub mod browser;
pub mod cli;
pub mod node_red;
pub mod proxy;
pub mod scenarios;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use jetvault_core::config::S3Options;
use jetvault_core::store::s3::S3Client;
use jetvault_core::store::{OpenOptions, S3Store, Store};
use jetvault_core::{Vault, VaultOptions};
use sha2::{Digest, Sha256};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_jetvault");
/// LocalStack's endpoint.
pub const LOCALSTACK_VAR: &str = "JETVAULT_TEST_LOCALSTACK";
/// moto's endpoint.
pub const MOTO_VAR: &str = "JETVAULT_TEST_MOTO";
/// The AWS CLI.
pub const AWS_CLI_VAR: &str = "JETVAULT_TEST_AWS_CLI";

/// The corpus of real configuration files (see `tests/data/SOURCES.md`).
pub const NODERED: &str = "nodered-http-endpoint-example.json";
pub const APPSMITH: &str = "appsmith-import-app-all-access.json";
pub const GRAFANA: &str = "grafana-k8s-views-nodes.json";
pub const N8N: &str = "n8n-webhook-manual-create.json";
pub const APPSMITH_LARGE: &str = "appsmith-ce-automation-test.json";

/// Whether this run is CI's, where nothing may go untested.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A variable of the test's environment, unless empty.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Reports a missing prerequisite: panics under CI, else prints a note; returns `None`.
fn missing<T>(what: &str) -> Option<T> {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    if ci() {
        panic!(
            "{test}: {what}; under CI=true every test must run: use `scripts/test`, which \
             installs and starts LocalStack, moto and Node-RED and exports where they are"
        );
    }
    eprintln!("not run: {test}: {what}; run `scripts/test` to run it");
    None
}

/// The corpus directory (`tests/data`, or `JETVAULT_CORPUS`).
pub fn corpus_dir() -> PathBuf {
    jetvault_core::testutil::corpus_dir()
}

/// The bytes of one corpus file.
pub fn corpus(name: &str) -> Vec<u8> {
    jetvault_core::testutil::corpus(name)
}

/// One corpus file's path.
pub fn corpus_path(name: &str) -> PathBuf {
    let path = corpus_dir().join(name);
    assert!(path.is_file(), "corpus file {} is missing", path.display());
    path
}

/// The corpus's JSON files, by name, sorted.
pub fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("read the corpus directory")
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Replaces a file atomically, as a live target should see it.
pub fn write_atomically(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A TCP port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// The real `jetvault` binary with nothing from the caller's environment deciding the
/// store, the config or the log level (`JETVAULT_STORE`, `JETVAULT_CONFIG`,
/// `JETVAULT_S3_*`, `AWS_PROFILE`, `AWS_ENDPOINT_URL*`, `RUST_LOG` removed), S3
/// credentials (`AWS_*` from the environment, else LocalStack's and moto's `test`), no
/// standard input. Callers add the store ([`StoreSpec::apply`] or a config file).
pub fn jetvault() -> Command {
    command(BIN)
}

/// [`jetvault`] with another copy of the binary (one that another user can run).
pub fn command(bin: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_remove("JETVAULT_STORE")
        .env_remove("JETVAULT_CONFIG")
        .env_remove("JETVAULT_S3_ENDPOINT")
        .env_remove("JETVAULT_S3_PATH_STYLE")
        .env_remove("JETVAULT_LISTEN")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("RUST_LOG")
        .env(
            "AWS_ACCESS_KEY_ID",
            env("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".into()),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            env("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "test".into()),
        )
        .env("AWS_REGION", region())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    cmd
}

fn region() -> String {
    env("AWS_REGION").unwrap_or_else(|| "us-east-1".into())
}

/// The S3 options that reach a test server at `endpoint` (path-style addressing,
/// `AWS_REGION` or `us-east-1`).
pub fn s3_options(endpoint: &str) -> S3Options {
    S3Options {
        endpoint: Some(endpoint.to_string()),
        region: Some(region()),
        force_path_style: true,
        ..S3Options::default()
    }
}

/// A store the binary and the test both open.
#[derive(Debug, Clone)]
pub struct StoreSpec {
    /// `file:///...` or `s3://bucket/prefix`.
    pub url: String,
    /// S3 client settings (endpoint, path style) when `url` is S3.
    pub s3: S3Options,
}

impl StoreSpec {
    /// A local directory store.
    pub fn local(dir: &Path) -> Self {
        Self {
            url: format!("file://{}", dir.display()),
            s3: S3Options::default(),
        }
    }

    /// A store on an S3 server: `url` is `s3://bucket/prefix`, `endpoint` the server's
    /// (or a proxy's in front of it).
    pub fn s3(url: &str, endpoint: &str) -> Self {
        Self {
            url: url.to_string(),
            s3: s3_options(endpoint),
        }
    }

    /// The S3 endpoint, when the store is on an S3 server.
    pub fn endpoint(&self) -> Option<&str> {
        self.s3.endpoint.as_deref()
    }

    /// The store directory (local stores only).
    pub fn dir(&self) -> PathBuf {
        PathBuf::from(
            self.url
                .strip_prefix("file://")
                .expect("a local directory store"),
        )
    }

    /// The config lines that select this store (top-level key and `[s3]` table).
    pub fn toml(&self) -> String {
        let mut out = format!("store = {:?}\n", self.url);
        if let Some(endpoint) = &self.s3.endpoint {
            out.push_str(&format!(
                "[s3]\nendpoint = {endpoint:?}\nforce_path_style = {}\n",
                self.s3.force_path_style
            ));
            if let Some(region) = &self.s3.region {
                out.push_str(&format!("region = {region:?}\n"));
            }
        }
        out
    }

    /// Points `cmd` at this store's S3 server, if any (`JETVAULT_S3_ENDPOINT`, path
    /// style); the store itself comes from a config file or [`Self::apply`].
    pub fn apply_s3(&self, cmd: &mut Command) {
        if let Some(endpoint) = &self.s3.endpoint {
            cmd.env("JETVAULT_S3_ENDPOINT", endpoint)
                .env("JETVAULT_S3_PATH_STYLE", "true");
        }
    }

    /// Points `cmd` at this store through the environment (`JETVAULT_STORE` and the S3
    /// endpoint), for commands run without a config file.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("JETVAULT_STORE", &self.url);
        self.apply_s3(cmd);
    }

    /// The options that open this store from the library.
    pub fn open_options(&self) -> OpenOptions {
        OpenOptions {
            s3: self.s3.clone(),
        }
    }

    /// Opens the store as the library does, to check what the binary wrote.
    pub async fn store(&self) -> Arc<dyn Store> {
        jetvault_core::store::open(&self.url, &self.open_options())
            .await
            .expect("open the test store")
    }

    /// A vault on the store.
    pub async fn vault(&self) -> Vault {
        Vault::new(self.store().await, VaultOptions::default())
    }
}

/// An S3 server the tests run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// LocalStack (Python, without Docker).
    LocalStack,
    /// moto's server.
    Moto,
}

impl Backend {
    /// The variable that holds its endpoint.
    pub fn var(self) -> &'static str {
        match self {
            Self::LocalStack => LOCALSTACK_VAR,
            Self::Moto => MOTO_VAR,
        }
    }

    /// Its name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::LocalStack => "LocalStack",
            Self::Moto => "moto",
        }
    }

    /// Its endpoint, or `None` after a "not run" note (a panic under `CI=true`).
    pub fn endpoint(self) -> Option<String> {
        let endpoint = env(self.var());
        if endpoint.is_some() && env("AWS_ACCESS_KEY_ID").is_none() {
            return missing(&format!(
                "{} is set but AWS_ACCESS_KEY_ID is not (LocalStack and moto accept any \
                 credentials: export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
                 AWS_REGION=us-east-1)",
                self.var()
            ));
        }
        endpoint.or_else(|| {
            missing(&format!(
                "{} is not set, so there is no {} to test against",
                self.var(),
                self.name()
            ))
        })
    }
}

/// A fresh, empty bucket on one backend, and ways to use it.
#[derive(Debug, Clone)]
pub struct TestBucket {
    /// The server.
    pub backend: Backend,
    /// Its endpoint.
    pub endpoint: String,
    /// The bucket's name.
    pub name: String,
    /// A client for raw S3 calls (`client.client()` is the SDK client).
    pub client: S3Client,
}

impl TestBucket {
    /// Creates a bucket named after `label` with a random suffix on `backend`; `None`
    /// (after a note) when the backend is not available outside CI.
    pub async fn new(backend: Backend, label: &str) -> Option<Self> {
        let endpoint = backend.endpoint()?;
        let client = S3Client::new(&s3_options(&endpoint))
            .await
            .expect("S3 client for the test server");
        let label: String = label
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(30)
            .collect();
        let name = format!(
            "jvt-{label}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        client
            .client()
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot create bucket {name} on {} at {endpoint}: {:?}",
                    backend.name(),
                    e
                )
            });
        Some(Self {
            backend,
            endpoint,
            name,
            client,
        })
    }

    /// [`TestBucket::new`] from synchronous tests.
    pub fn new_blocking(backend: Backend, label: &str) -> Option<Self> {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(Self::new(backend, label))
    }

    /// The store URL of this bucket with an optional prefix.
    pub fn store_url(&self, prefix: &str) -> String {
        if prefix.is_empty() {
            format!("s3://{}", self.name)
        } else {
            format!("s3://{}/{prefix}", self.name)
        }
    }

    /// The store on this bucket, keys under `prefix`.
    pub fn spec(&self, prefix: &str) -> StoreSpec {
        self.spec_via(prefix, &self.endpoint)
    }

    /// The store on this bucket reached through another endpoint (a proxy in front of
    /// the server).
    pub fn spec_via(&self, prefix: &str, endpoint: &str) -> StoreSpec {
        StoreSpec::s3(&self.store_url(prefix), endpoint)
    }

    /// The S3 options that reach this server (endpoint, path style).
    pub fn options(&self) -> S3Options {
        s3_options(&self.endpoint)
    }

    /// An `S3Store` on this bucket, keys under `prefix`.
    pub async fn store(&self, prefix: &str) -> S3Store {
        self.store_with(prefix, &self.options()).await
    }

    /// An `S3Store` on this bucket with other options (SSE, ...).
    pub async fn store_with(&self, prefix: &str, options: &S3Options) -> S3Store {
        S3Store::connect(&self.name, prefix, options)
            .await
            .expect("S3Store on the test bucket")
    }

    /// The real `jetvault` binary with its store set to this bucket (no prefix) and no
    /// config file: run with `.args([...]).output()`.
    pub fn jetvault(&self) -> Command {
        self.jetvault_at("")
    }

    /// The real `jetvault` binary with its store set to this bucket and `prefix`.
    pub fn jetvault_at(&self, prefix: &str) -> Command {
        store_command(&self.spec(prefix))
    }

    /// The AWS CLI with this server's endpoint: `aws s3 cp ...` by hand.
    pub fn aws_cli(&self) -> Option<Command> {
        let aws = env(AWS_CLI_VAR).or_else(|| {
            missing(&format!(
                "{AWS_CLI_VAR} is not set, so there is no AWS CLI to test with"
            ))
        })?;
        let mut cmd = Command::new(aws);
        cmd.args(["--endpoint-url", &self.endpoint]);
        Some(cmd)
    }
}

/// [`jetvault`] on `store` through the environment, with no config file, as author
/// `test@jetvault`.
pub fn store_command(store: &StoreSpec) -> Command {
    let mut cmd = jetvault();
    store.apply(&mut cmd);
    cmd.env("JETVAULT_AUTHOR", "test@jetvault");
    cmd
}
