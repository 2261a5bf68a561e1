//! Runs the real `jetvault` binary against a store and file live targets in a temporary
//! directory, with a config file written by the test.
//!
//! Scenarios take a [`Jv`] so that they run against any store URL: the local directory
//! store now, LocalStack through `tests/support/` once that harness is there.

#![allow(dead_code, reason = "each test binary uses a different part")]

pub mod scenarios;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

/// Real configuration files (copies from the shared corpus, see `tests/data/SOURCES.md`).
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

pub fn corpus(name: &str) -> Vec<u8> {
    let path = corpus_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("corpus file {}: {e}", path.display()))
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One test's world: a temporary directory with the store (unless another URL is
/// given), the config file and the live files.
pub struct Jv {
    pub dir: tempfile::TempDir,
    pub store_url: String,
    pub config: PathBuf,
    /// The S3 endpoint (path-style) when the store is on an S3 server.
    pub s3_endpoint: Option<String>,
    /// Run the binary as this uid/gid (to make permissions bite when tests run as root).
    pub user: Option<(u32, u32)>,
    /// The binary to run.
    pub bin: PathBuf,
    /// Who the commands say they are (`JETVAULT_AUTHOR`).
    pub author: String,
}

/// Whether a user other than the owner can execute `bin` (every directory above it
/// searchable by others, the file executable by others).
fn others_can_run(bin: &Path) -> bool {
    let mode = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.permissions().mode());
    mode(bin) & 0o001 != 0
        && bin
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .all(|a| mode(a) & 0o001 != 0)
}

/// A finished run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}): {}\n{}", self.stdout, self.stderr)
        })
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Jv {
    /// A world with a local directory store.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store_url = format!("file://{}", dir.path().join("store").display());
        Self::with_dir(dir, store_url)
    }

    /// A world with the given store URL.
    pub fn with_store(url: &str) -> Self {
        Self::with_dir(tempfile::tempdir().unwrap(), url.to_string())
    }

    /// A world whose store is `s3://...` on an S3 server at `endpoint` (path-style, test
    /// credentials unless the environment has others).
    pub fn with_s3(url: &str, endpoint: &str) -> Self {
        let mut jv = Self::with_store(url);
        jv.s3_endpoint = Some(endpoint.to_string());
        jv
    }

    fn with_dir(dir: tempfile::TempDir, store_url: String) -> Self {
        let config = dir.path().join("jetvault.toml");
        let jv = Self {
            dir,
            store_url,
            config,
            s3_endpoint: None,
            user: None,
            bin: PathBuf::from(env!("CARGO_BIN_EXE_jetvault")),
            author: "tester".into(),
        };
        jv.write_config("");
        jv
    }

    /// Runs every command as `nobody` when the tests run as root, so that a read-only
    /// directory refuses writes as it would for any service user.
    pub fn unprivileged(mut self) -> Self {
        // /proc/self belongs to the effective uid of the process reading it.
        let root = std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false);
        if root {
            self.user = Some((65534, 65534));
            std::fs::set_permissions(self.dir.path(), std::fs::Permissions::from_mode(0o777))
                .unwrap();
            std::fs::set_permissions(&self.config, std::fs::Permissions::from_mode(0o644)).unwrap();
            if !others_can_run(&self.bin) {
                // The build directory is out of reach (e.g. under /root): run a copy.
                let copy = self.dir.path().join("jetvault");
                std::fs::copy(&self.bin, &copy).unwrap();
                std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
                self.bin = copy;
            }
        }
        self
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The store directory (local stores only).
    pub fn store_dir(&self) -> PathBuf {
        PathBuf::from(
            self.store_url
                .strip_prefix("file://")
                .expect("a local directory store"),
        )
    }

    /// The options that open this world's store from the library.
    pub fn open_options(&self) -> jetvault_core::store::OpenOptions {
        let mut o = jetvault_core::store::OpenOptions::default();
        if let Some(e) = &self.s3_endpoint {
            o.s3.endpoint = Some(e.clone());
            o.s3.force_path_style = true;
            o.s3.region = Some("us-east-1".into());
        }
        o
    }

    /// Flips one bit in the middle of a stored object, keeping its metadata.
    pub fn flip_byte(&self, key: &str) {
        if let Some(rest) = self.store_url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let full = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{}/{key}", prefix.trim_end_matches('/'))
            };
            let options = self.open_options().s3;
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let s3 = jetvault_core::store::s3::S3Client::new(&options)
                    .await
                    .unwrap();
                let client = s3.client();
                let obj = client
                    .get_object()
                    .bucket(bucket)
                    .key(&full)
                    .send()
                    .await
                    .unwrap();
                let metadata = obj.metadata().cloned();
                let mut bytes = obj.body.collect().await.unwrap().into_bytes().to_vec();
                let mid = bytes.len() / 2;
                bytes[mid] ^= 0x20;
                client
                    .put_object()
                    .bucket(bucket)
                    .key(&full)
                    .set_metadata(metadata)
                    .body(bytes.into())
                    .send()
                    .await
                    .unwrap();
            });
            return;
        }
        let path = self.store_dir().join(key);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
    }

    /// Writes the config: the store, then `body` (env sections and so on).
    pub fn write_config(&self, body: &str) {
        let text = format!("store = {:?}\n{body}", self.store_url);
        std::fs::write(&self.config, text).unwrap();
    }

    /// A config section for a file live target.
    pub fn file_env(app: &str, env: &str, live: &Path, extra: &str) -> String {
        format!(
            "[apps.{app}.envs.{env}]\nlive = {{ kind = \"file\", path = {:?} }}\n{extra}\n",
            live.display().to_string()
        )
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("JETVAULT_CONFIG", &self.config)
            .env_remove("JETVAULT_STORE")
            .env("JETVAULT_AUTHOR", &self.author)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        if let Some(endpoint) = &self.s3_endpoint {
            let var = |name: &str, default: &str| {
                std::env::var(name)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| default.to_string())
            };
            cmd.env("JETVAULT_S3_ENDPOINT", endpoint)
                .env("JETVAULT_S3_PATH_STYLE", "true")
                .env("AWS_ACCESS_KEY_ID", var("AWS_ACCESS_KEY_ID", "test"))
                .env(
                    "AWS_SECRET_ACCESS_KEY",
                    var("AWS_SECRET_ACCESS_KEY", "test"),
                )
                .env("AWS_REGION", var("AWS_REGION", "us-east-1"))
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .env_remove("AWS_PROFILE")
                .env_remove("AWS_ENDPOINT_URL")
                .env_remove("AWS_ENDPOINT_URL_S3");
        }
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Runs the binary with no standard input.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()))
            .into()
    }

    /// Runs the binary and expects success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "jetvault {args:?} failed:\n{}\n{}",
            r.stdout, r.stderr
        );
        r
    }

    /// Runs the binary with `--json`, expects success and parses its output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    /// Runs the binary and expects `code`.
    pub fn fails(&self, args: &[&str], code: i32) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, code,
            "jetvault {args:?}: expected exit {code}:\n{}\n{}",
            r.stdout, r.stderr
        );
        r
    }

    /// Writes `bytes` to `live` and backs it up.
    pub fn backup_bytes(&self, app: &str, env: &str, live: &Path, bytes: &[u8]) -> u64 {
        std::fs::write(live, bytes).unwrap();
        let r = self.ok(&["--json", "backup", app, env]);
        r.json()["version"].as_u64().unwrap()
    }
}
