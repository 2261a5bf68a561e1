//! Live targets: where an environment's configuration really lives. Backup reads it;
//! restore writes it and reads it back.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::{Config, LiveConfig, S3Options};
use crate::error::{Error, Hint, Result, Step};
use crate::filter::{self, EnvFilters};
use crate::id::EnvRef;

pub mod file;
pub mod filtered;
pub mod http;
pub mod parts;
pub mod s3;

/// A live configuration that can be read and written.
#[async_trait]
pub trait LiveTarget: Send + Sync + fmt::Debug {
    /// Where it is, for messages and snapshot sources (never contains secrets).
    fn describe(&self) -> String;

    /// Reads the live configuration, refusing more than `limit` bytes.
    async fn read(&self, limit: u64) -> Result<Bytes>;

    /// Replaces the live configuration with `bytes`.
    async fn write(&self, bytes: Bytes) -> Result<()>;

    /// The environment's filters, when this target applies them; comparisons of what
    /// it holds then leave the ignored paths out.
    fn filters(&self) -> Option<Arc<EnvFilters>> {
        None
    }

    /// What a backup reads: [`LiveTarget::read`], and, when the target's filters have
    /// ignore paths, the sha256 of the document without them
    /// ([`EnvFilters::ignoring_sha256`]), computed from the parse the read made.
    async fn read_for_backup(&self, limit: u64) -> Result<(Bytes, Option<String>)> {
        Ok((self.read(limit).await?, None))
    }

    /// Whether `back`, read from this target after writing `written` to it, holds what
    /// was written though it differs from it as a whole document: a `kind = "parts"`
    /// target whose optional parts absent from `written` were left as they were. False
    /// for other targets.
    fn holds_written(&self, written: &[u8], back: &[u8]) -> bool {
        let _ = (written, back);
        false
    }

    /// How this target creates its object anew when the platform has deleted it (`POST
    /// https://...`, from an HTTP target's `create` table), or `None` when it can't.
    fn creates(&self) -> Option<String> {
        None
    }

    /// Creates the object anew from `doc` (the stored document) and gives its new
    /// identity and the target at it. `body` is what to send unless the target shapes
    /// the request itself; callers pass `doc` for both. Only when
    /// [`LiveTarget::creates`] says how.
    async fn create(&self, doc: Bytes, body: Bytes) -> Result<http::Created> {
        let _ = (doc, body);
        Err(Error::internal(format!(
            "{} can't create its object",
            self.describe()
        )))
    }
}

/// Builds the live target an environment's config describes, without the environment's
/// filters ([`open_configured`] applies them). A `parts` target's parts each get their
/// own filter; their read-back is bounded by the default `snapshots.max_size`
/// ([`open_configured`] uses the configured one).
///
/// `store_s3` gives S3 targets the store's endpoint settings when they set none.
///
/// # Errors
/// `Config` for a target that can't be built (a bad URL, an unreadable token file).
pub async fn open(
    env: &EnvRef,
    config: &LiveConfig,
    store_s3: &S3Options,
) -> Result<Arc<dyn LiveTarget>> {
    let limit = crate::config::SnapshotOptions::default().max_size.0;
    open_limited(env, config, store_s3, limit).await
}

async fn open_limited(
    env: &EnvRef,
    config: &LiveConfig,
    store_s3: &S3Options,
    limit: u64,
) -> Result<Arc<dyn LiveTarget>> {
    match config {
        LiveConfig::Parts { parts } => Ok(Arc::new(
            parts::PartsTarget::open(env, parts, store_s3, limit).await?,
        )),
        leaf => open_leaf(env, leaf, store_s3).await,
    }
}

/// Builds a target that is not `parts` (a part can't have parts).
async fn open_leaf(
    env: &EnvRef,
    config: &LiveConfig,
    store_s3: &S3Options,
) -> Result<Arc<dyn LiveTarget>> {
    match config {
        LiveConfig::File { path } => Ok(Arc::new(file::FileTarget::new(path.clone()))),
        LiveConfig::Http { .. } => Ok(Arc::new(http::HttpTarget::from_config(env, config)?)),
        LiveConfig::S3 { .. } => Ok(Arc::new(s3::S3Target::from_config(config, store_s3).await?)),
        LiveConfig::Parts { .. } => Err(Error::config(format!(
            "{env}: a part of a kind = \"parts\" live target can't itself have parts"
        ))),
    }
}

/// Builds the live target of a configured environment, through its filters when it has
/// any (compiled here, once per target).
///
/// # Errors
/// `NotFound` if the environment is not in the config, `Config` if it has no live
/// target, the target can't be built or a filter does not compile.
pub async fn open_configured(config: &Config, env: &EnvRef) -> Result<Arc<dyn LiveTarget>> {
    let env_config = config.env(env).ok_or_else(|| {
        Error::not_found(format!("{env} is not in the config")).with_next(Hint::steps(
            format!(
                "add [apps.{}.envs.{}.live] to the config file, or give the configuration",
                env.app, env.env
            ),
            [Step::ConfigFile, Step::FromFile],
        ))
    })?;
    let live = env_config.live.as_ref().ok_or_else(|| {
        Error::config(format!("{env} has no live target")).with_next(Hint::steps(
            format!(
                "add [apps.{}.envs.{}.live] to the config, or give the configuration",
                env.app, env.env
            ),
            [Step::FromFile],
        ))
    })?;
    let target = open_limited(env, live, &config.s3, config.snapshots.max_size.0).await?;
    match &env_config.filter {
        None => Ok(target),
        Some(f) => {
            let filters = EnvFilters::compile(&filter::table_key(env), f)?;
            Ok(Arc::new(filtered::FilteredTarget::new(
                target,
                Arc::new(filters),
                config.snapshots.max_size.0,
            )))
        }
    }
}
