//! CLI runs of the real binary in a temporary world: a store (a local directory unless
//! given), a config file written by the test and file live targets.
//!
//! Scenarios take a [`Jv`] so that they run against any [`StoreSpec`].

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::StoreSpec;

/// One test's world: a temporary directory with the store (unless another is given), the
/// config file and the live files.
pub struct Jv {
    pub dir: tempfile::TempDir,
    pub store: StoreSpec,
    pub config: PathBuf,
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

    /// The exit code, standard output and standard error as one text.
    pub fn text(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
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

impl Default for Jv {
    fn default() -> Self {
        Self::new()
    }
}

impl Jv {
    /// A world with a local directory store.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = StoreSpec::local(&dir.path().join("store"));
        Self::with_dir(dir, store)
    }

    /// A world with the given store (a bucket: [`super::TestBucket::spec`]).
    pub fn with_store(store: StoreSpec) -> Self {
        Self::with_dir(tempfile::tempdir().unwrap(), store)
    }

    fn with_dir(dir: tempfile::TempDir, store: StoreSpec) -> Self {
        let config = dir.path().join("jetvault.toml");
        let jv = Self {
            dir,
            store,
            config,
            user: None,
            bin: PathBuf::from(super::BIN),
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

    /// Writes `content` to `name` in the world's directory; returns its path.
    pub fn file(&self, name: &str, content: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        p.display().to_string()
    }

    /// The store directory (local stores only).
    pub fn store_dir(&self) -> PathBuf {
        self.store.dir()
    }

    /// Flips one bit in the middle of a stored object, keeping its metadata.
    pub fn flip_byte(&self, key: &str) {
        if let Some(rest) = self.store.url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let full = if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{}/{key}", prefix.trim_end_matches('/'))
            };
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async {
                let s3 = jetvault_core::store::s3::S3Client::new(&self.store.s3)
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
        let text = format!("store = {:?}\n{body}", self.store.url);
        std::fs::write(&self.config, text).unwrap();
    }

    /// A config section for a file live target.
    pub fn file_env(app: &str, env: &str, live: &Path, extra: &str) -> String {
        format!(
            "[apps.{app}.envs.{env}]\nlive = {{ kind = \"file\", path = {:?} }}\n{extra}\n",
            live.display().to_string()
        )
    }

    /// The harness's command ([`super::command`]) with this world's config, store
    /// endpoint, author and user.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = super::command(&self.bin);
        cmd.args(args)
            .env("JETVAULT_CONFIG", &self.config)
            .env("JETVAULT_AUTHOR", &self.author)
            .env("RUST_LOG", "warn");
        self.store.apply_s3(&mut cmd);
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

    /// Runs the binary: its exit code, standard output and standard error as one text.
    pub fn text(&self, args: &[&str]) -> String {
        self.run(args).text()
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
