//! The configuration: one TOML file, overridable by environment variables and flags
//! (flags > environment > file). Unknown keys are refused, naming the key and the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::id::{AppId, EnvId, EnvRef};
use crate::store::StoreUrl;
pub use crate::store::s3::{S3Options, Sse};

/// The default store: a directory in the current user's data directory is not portable,
/// so the embedded default is relative to the working directory.
pub const DEFAULT_STORE_DIR: &str = "jetvault-data";

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where snapshots live: `s3://bucket/prefix` or `file:///path`.
    pub store: Option<String>,
    /// S3 client settings.
    #[serde(default)]
    pub s3: S3Options,
    /// How snapshots are encoded and what input is accepted.
    #[serde(default)]
    pub snapshots: SnapshotOptions,
    /// The HTTP service.
    #[serde(default)]
    pub server: ServerConfig,
    /// Apps by id, each with its environments.
    #[serde(default)]
    pub apps: BTreeMap<AppId, AppConfig>,
}

/// Snapshot encoding and input limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnapshotOptions {
    /// zstd level, 1 to 19.
    pub compression_level: i32,
    /// The largest configuration accepted.
    pub max_size: ByteSize,
}

impl Default for SnapshotOptions {
    fn default() -> Self {
        Self {
            compression_level: 3,
            max_size: ByteSize(64 * 1024 * 1024),
        }
    }
}

/// The HTTP service's settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// How long a served release pointer is trusted before it is revalidated.
    #[serde(with = "humantime_serde")]
    pub pointer_ttl: Duration,
    /// Whether read routes need no token.
    pub public_reads: bool,
    /// The largest request body accepted.
    pub max_body_size: ByteSize,
    /// How long a shutdown waits for backups in flight.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Bearer tokens.
    pub tokens: Vec<TokenConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            pointer_ttl: Duration::from_secs(1),
            public_reads: false,
            max_body_size: ByteSize(64 * 1024 * 1024),
            shutdown_grace: Duration::from_secs(30),
            tokens: Vec::new(),
        }
    }
}

/// What a bearer token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Read pointers, history and content.
    Read,
    /// Also back up, release, roll back and restore.
    Operate,
}

/// One bearer token: its value inline or in a file, not both.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// A name for logs and metrics (never the token itself).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The token.
    pub value: Option<Secret>,
    /// A file holding the token (trailing whitespace is ignored).
    pub value_file: Option<PathBuf>,
}

impl fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("value", &self.value)
            .field("value_file", &self.value_file)
            .finish()
    }
}

impl TokenConfig {
    /// Reads the token's value from the config or its file.
    ///
    /// # Errors
    /// `Config` if neither or both are set, or the file can't be read.
    pub fn resolve(&self) -> Result<Secret> {
        match (&self.value, &self.value_file) {
            (Some(v), None) => Ok(v.clone()),
            (None, Some(path)) => {
                read_secret_file(path).map_err(|e| e.context(format!("token {:?}", self.name)))
            }
            _ => Err(Error::config(format!(
                "token {:?}: set exactly one of `value` and `value_file`",
                self.name
            ))),
        }
    }
}

/// Reads a secret from a file, trimming trailing whitespace.
///
/// # Errors
/// `Config` naming the file if it can't be read or is empty.
pub fn read_secret_file(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read secret file {}: {e}", path.display())))?;
    let value = text.trim_end().to_string();
    if value.is_empty() {
        return Err(Error::config(format!(
            "secret file {} is empty",
            path.display()
        )));
    }
    Ok(Secret(value))
}

/// A secret string: `Debug` and `Display` show `<redacted>`.
#[derive(Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret value; never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One app.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    /// Environments by id.
    #[serde(default)]
    pub envs: BTreeMap<EnvId, EnvConfig>,
}

/// One environment: where its live configuration is, when to back it up, what to keep.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvConfig {
    /// The live configuration that backup reads and restore writes.
    pub live: Option<LiveConfig>,
    /// A cron expression (with seconds: `sec min hour day month weekday`) for scheduled
    /// backups.
    pub schedule: Option<String>,
    /// What prune keeps.
    pub retention: Option<RetentionPolicy>,
}

/// Where a live configuration is.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum LiveConfig {
    /// A local file, written atomically (temp file and rename).
    File {
        /// The file.
        path: PathBuf,
    },
    /// An HTTP endpoint: GET exports the configuration, PUT (or `write_method`) imports it.
    Http {
        /// The export URL.
        url: String,
        /// The import URL, when it differs from `url`.
        write_url: Option<String>,
        /// The import method: `PUT` (default) or `POST`.
        write_method: Option<String>,
        /// Extra request headers.
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// An environment variable that holds a bearer token.
        bearer_token_env: Option<String>,
        /// A file that holds a bearer token.
        bearer_token_file: Option<PathBuf>,
        /// Request timeout.
        #[serde(default, with = "humantime_serde")]
        timeout: Option<Duration>,
    },
    /// An object in any S3 bucket (credentials from the AWS chain).
    S3 {
        /// The bucket.
        bucket: String,
        /// The object key.
        key: String,
        /// Endpoint, when not the store's or AWS's.
        endpoint: Option<String>,
        /// Region.
        region: Option<String>,
        /// Path-style addressing.
        #[serde(default)]
        force_path_style: bool,
    },
}

/// What prune keeps; a version kept by any rule is kept.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// The newest N versions.
    pub keep_last: Option<u32>,
    /// The newest version of each of the last N days that have one.
    pub keep_daily: Option<u32>,
    /// The newest version of each of the last N weeks that have one.
    pub keep_weekly: Option<u32>,
    /// The newest version of each of the last N months that have one.
    pub keep_monthly: Option<u32>,
    /// Every version younger than this.
    #[serde(default, with = "humantime_serde")]
    pub keep_within: Option<Duration>,
}

/// A byte count that reads `1048576`, `"64MiB"`, `"512 KB"` and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| Error::invalid(format!("invalid size {s:?}: expected e.g. 64MiB")))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "kib" => 1024,
            "m" | "mb" => 1_000_000,
            "mib" => 1024 * 1024,
            "g" | "gb" => 1_000_000_000,
            "gib" => 1024 * 1024 * 1024,
            other => {
                return Err(Error::invalid(format!(
                    "invalid size {s:?}: unknown unit {other:?} (use B, KB, KiB, MB, MiB, GB, GiB)"
                )));
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| Error::invalid(format!("size {s:?} is too large")))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n >= 1024 * 1024 && n.is_multiple_of(1024 * 1024) {
            write!(f, "{}MiB", n / (1024 * 1024))
        } else if n >= 1024 && n.is_multiple_of(1024) {
            write!(f, "{}KiB", n / 1024)
        } else {
            write!(f, "{n}B")
        }
    }
}

impl Config {
    /// Reads and checks a config file.
    ///
    /// # Errors
    /// `Config` naming the file and, for unknown keys or bad values, the key and line.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read config file {}: {e}", path.display()))
        })?;
        let mut config =
            Self::parse(&text).map_err(|e| e.context(format!("config file {}", path.display())))?;
        if let Some(dir) = path.parent() {
            config.resolve_paths(dir);
        }
        Ok(config)
    }

    /// Makes relative file paths in the config (live files, token files) relative to
    /// `dir`, the config file's directory, so a config works from any working directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        for t in &mut self.server.tokens {
            if let Some(p) = &mut t.value_file {
                fix(p);
            }
        }
        for app in self.apps.values_mut() {
            for env in app.envs.values_mut() {
                match &mut env.live {
                    Some(LiveConfig::File { path }) => fix(path),
                    Some(LiveConfig::Http {
                        bearer_token_file: Some(p),
                        ..
                    }) => fix(p),
                    _ => {}
                }
            }
        }
    }

    /// Parses and checks config text.
    ///
    /// # Errors
    /// `Config` describing the first problem (unknown key, bad value, bad cron).
    pub fn parse(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text)
            .map_err(|e| Error::config(e.to_string().trim_end().to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde can't: ranges, cron syntax, token sources, the store URL.
    ///
    /// # Errors
    /// `Config` naming the setting.
    pub fn validate(&self) -> Result<()> {
        if let Some(url) = &self.store {
            StoreUrl::parse(url).map_err(|e| Error::config(format!("store: {e}")))?;
        }
        let level = self.snapshots.compression_level;
        if !(1..=19).contains(&level) {
            return Err(Error::config(format!(
                "snapshots.compression_level = {level}: use 1 to 19 (3 is the default)"
            )));
        }
        if self.s3.sse == Some(Sse::Kms) && self.s3.sse_kms_key_id.is_none() {
            // Allowed: S3 then uses the AWS-managed key.
        }
        if self.s3.sse_kms_key_id.is_some() && self.s3.sse != Some(Sse::Kms) {
            return Err(Error::config(
                "s3.sse_kms_key_id is set but s3.sse is not \"aws:kms\"",
            ));
        }
        for t in &self.server.tokens {
            if t.value.is_some() == t.value_file.is_some() {
                return Err(Error::config(format!(
                    "server.tokens {:?}: set exactly one of `value` and `value_file`",
                    t.name
                )));
            }
        }
        for (env_ref, env) in self.envs() {
            if let Some(cron) = &env.schedule {
                check_cron(cron).map_err(|e| {
                    Error::config(format!(
                        "apps.{}.envs.{}.schedule: {e}",
                        env_ref.app, env_ref.env
                    ))
                })?;
            }
            if let Some(LiveConfig::Http {
                url,
                write_url,
                write_method,
                bearer_token_env,
                bearer_token_file,
                ..
            }) = &env.live
            {
                let at = format!("apps.{}.envs.{}.live", env_ref.app, env_ref.env);
                for u in std::iter::once(url).chain(write_url) {
                    if !(u.starts_with("http://") || u.starts_with("https://")) {
                        return Err(Error::config(format!(
                            "{at}: {u:?} is not an http:// or https:// URL"
                        )));
                    }
                }
                if let Some(m) = write_method
                    && !matches!(m.as_str(), "PUT" | "POST" | "PATCH")
                {
                    return Err(Error::config(format!(
                        "{at}.write_method = {m:?}: use PUT, POST or PATCH"
                    )));
                }
                if bearer_token_env.is_some() && bearer_token_file.is_some() {
                    return Err(Error::config(format!(
                        "{at}: set at most one of bearer_token_env and bearer_token_file"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every configured environment, in id order.
    pub fn envs(&self) -> impl Iterator<Item = (EnvRef, &EnvConfig)> {
        self.apps.iter().flat_map(|(app, a)| {
            a.envs.iter().map(move |(env, e)| {
                (
                    EnvRef {
                        app: app.clone(),
                        env: env.clone(),
                    },
                    e,
                )
            })
        })
    }

    /// The configuration of one environment, if configured.
    #[must_use]
    pub fn env(&self, env_ref: &EnvRef) -> Option<&EnvConfig> {
        self.apps.get(&env_ref.app)?.envs.get(&env_ref.env)
    }

    /// The store URL to use: the configured one, else the embedded default
    /// (`file://<cwd>/jetvault-data`).
    #[must_use]
    pub fn store_url(&self) -> String {
        self.store.clone().unwrap_or_else(|| {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/tmp"));
            format!("file://{}", cwd.join(DEFAULT_STORE_DIR).display())
        })
    }
}

/// Checks a cron expression the way the scheduler will read it.
///
/// # Errors
/// `Config` with the parser's reason.
pub fn check_cron(expr: &str) -> Result<()> {
    let fields = expr.split_whitespace().count();
    if !(6..=7).contains(&fields) {
        return Err(Error::config(format!(
            "cron expression {expr:?} has {fields} fields; use 6 (sec min hour day month \
             weekday), e.g. \"0 */15 * * * *\" for every 15 minutes"
        )));
    }
    // The scheduler (tokio-cron-scheduler) parses with croner, seconds required and
    // day-of-month and day-of-week both applied; the same parser here.
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map(drop)
        .map_err(|e| Error::config(format!("invalid cron expression {expr:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let c = Config::parse(
            r#"
store = "s3://bucket/prefix"
[s3]
endpoint = "http://127.0.0.1:4566"
force_path_style = true
sse = "aws:kms"
sse_kms_key_id = "k"
[snapshots]
compression_level = 5
max_size = "8MiB"
[server]
listen = "0.0.0.0:9000"
pointer_ttl = "2s"
[[server.tokens]]
name = "ci"
role = "operate"
value = "s3cret"
[apps.crm.envs.production]
schedule = "0 */15 * * * *"
live = { kind = "http", url = "https://x/export", bearer_token_env = "TOK", timeout = "10s" }
retention = { keep_last = 10, keep_daily = 7, keep_within = "2days" }
[apps.crm.envs.staging.live]
kind = "file"
path = "/tmp/staging.json"
"#,
        )
        .unwrap();
        assert_eq!(c.snapshots.max_size, ByteSize(8 * 1024 * 1024));
        assert_eq!(c.server.pointer_ttl, Duration::from_secs(2));
        assert_eq!(c.envs().count(), 2);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cret"), "secrets must be redacted: {dbg}");
    }

    #[test]
    fn unknown_keys_are_named() {
        for (text, key) in [
            ("stor = \"x\"", "stor"),
            ("[server]\nlisten_addr = \"x\"", "listen_addr"),
            (
                "[apps.crm.envs.p.live]\nkind = \"file\"\npath = \"/x\"\nmode = 1",
                "mode",
            ),
            ("[apps.crm.envs.p]\nretention = { keep = 1 }", "keep"),
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(e.to_string().contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        for text in [
            "[apps.\"Bad App\".envs.p]",
            "[snapshots]\ncompression_level = 30",
            "[apps.crm.envs.p]\nschedule = \"every day\"",
            "[apps.crm.envs.p]\nschedule = \"0 0 99 * * *\"",
            "store = \"ftp://x\"",
            "[[server.tokens]]\nname = \"a\"\nrole = \"read\"",
            "[[server.tokens]]\nname = \"a\"\nrole = \"admin\"\nvalue = \"x\"",
        ] {
            assert!(Config::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[apps.crm.envs.p.live]\nkind = \"file\"\npath = \"live/p.json\"\n\
             [apps.crm.envs.q.live]\nkind = \"file\"\npath = \"/abs/q.json\"\n",
        )
        .unwrap();
        let c = Config::load(&path).unwrap();
        let paths: Vec<_> = c
            .envs()
            .map(|(_, e)| match &e.live {
                Some(LiveConfig::File { path }) => path.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            paths,
            vec![dir.path().join("live/p.json"), PathBuf::from("/abs/q.json")]
        );
        let e = Config::load(&dir.path().join("missing.toml")).unwrap_err();
        assert!(e.to_string().contains("missing.toml"), "{e}");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!("64MiB".parse::<ByteSize>().unwrap(), ByteSize(64 << 20));
        assert_eq!("10 KB".parse::<ByteSize>().unwrap(), ByteSize(10_000));
        assert_eq!("5".parse::<ByteSize>().unwrap(), ByteSize(5));
        assert!("5XB".parse::<ByteSize>().is_err());
        assert_eq!(ByteSize(64 << 20).to_string(), "64MiB");
    }
}
