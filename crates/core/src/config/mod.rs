//! The configuration: one typed struct read from a TOML file, `JETVAULT_*` environment
//! variables and the caller's overrides, each layer winning over the one before (see
//! [`layers`]). Unknown keys are refused, naming the key and where it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{AppId, EnvRef};

mod apps;
mod diff;
mod discovery;
mod encryption;
mod filter;
pub mod layers;
mod live_auth;
mod live_create;
mod notify;
mod parts;
mod scheduler;
mod schema;
mod secret;
mod size;
#[cfg(test)]
mod tests;
mod validate;

pub use crate::store::s3::{S3Options, Sse};
pub use apps::{AppConfig, EnvConfig, LiveConfig, RetentionPolicy, WriteMethod};
pub use diff::DiffConfig;
pub use discovery::{DEFAULT_REFRESH, DiscoveryConfig};
pub use encryption::EncryptionConfig;
pub use filter::{FilterConfig, FilterSource};
pub use live_auth::{ClientAuth, OAuthConfig, OAuthGrant, SecretSource, live_secrets};
pub use live_create::{CreateConfig, ID_PLACEHOLDER};
pub use notify::{NotifyConfig, WebhookConfig};
pub use parts::{PartConfig, part_key, parts_of};
pub use scheduler::SchedulerConfig;
pub use schema::{OnBackup, SchemaConfig};
pub use secret::{Secret, TokenConfig, read_secret_file, secret_file_warning};
pub use size::ByteSize;
pub use validate::{check_cron, next_run, parse_cron};

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
    /// How `serve` runs the schedules (tick claims across replicas, spread).
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    /// Apps by id, each with its environments.
    #[serde(default)]
    pub apps: BTreeMap<AppId, AppConfig>,
    /// Webhook notifications.
    #[serde(default)]
    pub notify: NotifyConfig,
    /// Environments listed by the platform (see [`crate::discovery`]).
    pub discovery: Option<DiscoveryConfig>,
    /// The age recipients every environment's new snapshots are encrypted to.
    pub encryption: Option<EncryptionConfig>,
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
    /// How long a client may take to send a request head (slow clients are closed).
    #[serde(with = "humantime_serde")]
    pub head_timeout: Duration,
    /// How long a kept-alive connection may stay idle between requests.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long writing a response may wait for the client to take bytes.
    #[serde(with = "humantime_serde")]
    pub write_timeout: Duration,
    /// The most connections open at once; the service also keeps it under the
    /// open-files limit (less the descriptors it needs for itself). 0: that limit alone.
    pub max_connections: usize,
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
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            max_connections: 10_000,
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

impl Config {
    /// Reads and checks a config file alone, without the environment.
    ///
    /// # Errors
    /// `Config` naming the file and, for unknown keys or bad values, the key and line.
    pub fn load(path: &Path) -> Result<Self> {
        let layers = layers::Layers::new().toml(Some(path), read_file(path)?)?;
        let mut config = layers.config()?;
        config.finish(Some(path))?;
        Ok(config)
    }

    /// Reads the layered settings: the file (if any), then the `JETVAULT_*` environment,
    /// then `overrides` (only the keys it sets; named `origin` in errors), and checks
    /// the result.
    ///
    /// # Errors
    /// `Config` naming the bad setting and the layer it came from.
    pub fn layered(file: Option<&Path>, origin: &str, overrides: &impl Serialize) -> Result<Self> {
        let mut layers = layers::Layers::new();
        if let Some(path) = file {
            layers = layers.toml(Some(path), read_file(path)?)?;
        }
        let layers = layers
            .env(layers::EnvVars::process())
            .overrides(origin, overrides);
        let mut config = layers.config()?;
        config.finish(file)?;
        Ok(config)
    }

    /// Parses and checks config text.
    ///
    /// # Errors
    /// `Config` describing the first problem (unknown key, bad value, bad cron).
    pub fn parse(text: &str) -> Result<Self> {
        let layers = layers::Layers::new().toml(None, text.to_string())?;
        let config = layers.config()?;
        config.validate()?;
        Ok(config)
    }

    /// Resolves relative paths against the file's directory and validates.
    fn finish(&mut self, file: Option<&Path>) -> Result<()> {
        let Some(path) = file else {
            return self.validate();
        };
        if let Some(dir) = path.parent() {
            self.resolve_paths(dir);
        }
        self.validate()
            .map_err(|e| e.context(format!("config file {}", path.display())))
    }

    /// Makes relative file paths in the config (live files, token files, jq files) relative to
    /// `dir`, the config file's directory, so a config works from any working directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        };
        if let Some(d) = &mut self.discovery {
            d.resolve_paths(dir);
        }
        for t in &mut self.server.tokens {
            if let Some(p) = &mut t.value_file {
                fix(p);
            }
        }
        self.notify.resolve_paths(dir);
        for app in self.apps.values_mut() {
            for env in app.envs.values_mut() {
                env.resolve_paths(dir);
            }
        }
    }

    /// The files holding secrets: server token files, live targets' bearer token,
    /// secret header and OAuth secret files, and the discovery source's, each once.
    #[must_use]
    pub fn secret_files(&self) -> Vec<&Path> {
        let mut files: Vec<&Path> = Vec::new();
        let tokens = self
            .server
            .tokens
            .iter()
            .filter_map(|t| t.value_file.as_deref());
        let live = self
            .envs()
            .filter_map(|(_, e)| e.live.as_ref())
            .flat_map(|live| match parts_of(live) {
                Some(parts) => parts.values().map(|p| &p.live).collect(),
                None => vec![live],
            })
            .flat_map(|live| match live {
                LiveConfig::Http {
                    bearer_token_file,
                    secret_headers,
                    oauth,
                    ..
                } => {
                    let oauth_files = oauth
                        .iter()
                        .flat_map(|o| [&o.client_secret_file, &o.password_file]);
                    let header_files = secret_headers.values().map(|s| &s.file);
                    std::iter::once(bearer_token_file)
                        .chain(header_files)
                        .chain(oauth_files)
                        .filter_map(|p| p.as_deref())
                        .collect()
                }
                _ => Vec::new(),
            });
        let discovery = self.discovery.iter().flat_map(|d| {
            d.bearer_token_file
                .iter()
                .chain(d.secret_headers.values().filter_map(|s| s.file.as_ref()))
                .map(PathBuf::as_path)
        });
        for p in tokens
            .chain(live)
            .chain(self.notify.secret_files())
            .chain(discovery)
        {
            if !files.contains(&p) {
                files.push(p);
            }
        }
        files
    }

    /// A warning for each secret file its group or anyone may read (see
    /// [`secret_file_warning`]).
    #[must_use]
    pub fn secret_file_warnings(&self) -> Vec<String> {
        self.secret_files()
            .into_iter()
            .filter_map(secret_file_warning)
            .collect()
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
                    &**e,
                )
            })
        })
    }

    /// The configuration of one environment, if configured.
    #[must_use]
    pub fn env(&self, env_ref: &EnvRef) -> Option<&EnvConfig> {
        self.apps
            .get(&env_ref.app)?
            .envs
            .get(&env_ref.env)
            .map(|e| &**e)
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

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read config file {}: {e}", path.display())))
}
