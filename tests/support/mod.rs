//! The harness of the integration tests: S3 servers, fresh buckets, the corpus and the
//! real `jetvault` binary.
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
//! A test asks for what it needs and returns early when it is not there:
//!
//! ```ignore
//! mod support;
//! use support::{Backend, TestBucket};
//!
//! #[tokio::test]
//! async fn something_on_s3() {
//!     let Some(bucket) = TestBucket::new(Backend::LocalStack, "something").await else {
//!         return; // a "not run" note was printed
//!     };
//!     let store = bucket.store("").await;              // an S3Store on a fresh bucket
//!     let out = bucket.jetvault().args(["list", "crm", "prod"]).output().unwrap();
//! }
//! ```
//!
//! [`proxy::Proxy`] sits between jetvault and a server: it logs every S3 request (to
//! count what jetvault costs) and can cut an upload in the middle (S3 going away).
//!
//! When a server is missing and `CI=true`, the helpers PANIC with a message saying to run
//! `scripts/test`: under CI every test runs. Elsewhere they print a "not run" note and
//! the test returns.
#![allow(dead_code, unreachable_pub)]

pub mod proxy;

use std::path::{Path, PathBuf};
use std::process::Command;

use jetvault_core::config::S3Options;
use jetvault_core::store::S3Store;
use jetvault_core::store::s3::S3Client;

/// LocalStack's endpoint.
pub const LOCALSTACK_VAR: &str = "JETVAULT_TEST_LOCALSTACK";
/// moto's endpoint.
pub const MOTO_VAR: &str = "JETVAULT_TEST_MOTO";
/// The AWS CLI.
pub const AWS_CLI_VAR: &str = "JETVAULT_TEST_AWS_CLI";
/// The corpus directory, instead of `tests/data`.
pub const CORPUS_VAR: &str = "JETVAULT_CORPUS";

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

/// Whether this run is CI's, where nothing may go untested.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn env(name: &str) -> Option<String> {
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
             installs and starts LocalStack and moto and exports their endpoints"
        );
    }
    eprintln!("not run: {test}: {what}; run `scripts/test` to run it");
    None
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
        let client = S3Client::new(&options_for(&endpoint))
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

    /// The store URL of this bucket with an optional prefix.
    pub fn store_url(&self, prefix: &str) -> String {
        if prefix.is_empty() {
            format!("s3://{}", self.name)
        } else {
            format!("s3://{}/{prefix}", self.name)
        }
    }

    /// The S3 options that reach this server (endpoint, path style).
    pub fn options(&self) -> S3Options {
        options_for(&self.endpoint)
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

    /// The real `jetvault` binary with its store set to this bucket (no prefix): run
    /// with `.args([...]).output()`.
    pub fn jetvault(&self) -> Command {
        self.jetvault_at("")
    }

    /// The real `jetvault` binary with its store set to this bucket and `prefix`.
    pub fn jetvault_at(&self, prefix: &str) -> Command {
        jetvault_for(&self.store_url(prefix), Some(&self.endpoint))
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

fn options_for(endpoint: &str) -> S3Options {
    S3Options {
        endpoint: Some(endpoint.to_string()),
        region: Some(env("AWS_REGION").unwrap_or_else(|| "us-east-1".into())),
        force_path_style: true,
        ..S3Options::default()
    }
}

/// The real `jetvault` binary for `store_url` (and an S3 endpoint with path-style
/// addressing when given), with no config file and test credentials.
pub fn jetvault_for(store_url: &str, endpoint: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jetvault"));
    cmd.env_remove("JETVAULT_CONFIG")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_S3")
        .env_remove("AWS_PROFILE")
        .env("JETVAULT_STORE", store_url)
        .env("JETVAULT_AUTHOR", "test@jetvault")
        .env(
            "AWS_ACCESS_KEY_ID",
            env("AWS_ACCESS_KEY_ID").unwrap_or_else(|| "test".into()),
        )
        .env(
            "AWS_SECRET_ACCESS_KEY",
            env("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|| "test".into()),
        )
        .env(
            "AWS_REGION",
            env("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("NO_COLOR", "1");
    match endpoint {
        Some(e) => {
            cmd.env("JETVAULT_S3_ENDPOINT", e)
                .env("JETVAULT_S3_PATH_STYLE", "true");
        }
        None => {
            cmd.env_remove("JETVAULT_S3_ENDPOINT")
                .env_remove("JETVAULT_S3_PATH_STYLE");
        }
    }
    cmd
}

/// The corpus of real configuration files: `tests/data` (copies of the shared corpus,
/// see its SOURCES.md), or `JETVAULT_CORPUS` when set.
pub fn corpus_dir() -> PathBuf {
    env(CORPUS_VAR).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"),
        PathBuf::from,
    )
}

/// One corpus file's path.
pub fn corpus_file(name: &str) -> PathBuf {
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

/// A TCP port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}
