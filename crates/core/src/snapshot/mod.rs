//! Snapshots: immutable, numbered, zstd-compressed copies of one environment's
//! configuration, with their metadata (see [`crate::meta`]) in the object's user
//! metadata.
//!
//! One file per job: [`backup`] takes snapshots, [`list`] lists them and finds the
//! latest or the one as of a time, [`read`] reads one.

mod backup;
mod list;
mod read;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::codec;
use crate::error::{Error, Hint, Result, Step};
use crate::events::Actor;
use crate::filter::EnvFilters;
use crate::id::EnvRef;
pub use crate::meta::{SnapshotMeta, Trigger};

/// A new snapshot to take.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// The raw configuration.
    pub raw: Bytes,
    /// What asked for it.
    pub trigger: Trigger,
    /// Who asked, through which front end (the snapshot's author is `actor.who`).
    pub actor: Actor,
    /// Why.
    pub message: Option<String>,
    /// Where the bytes came from.
    pub source: Option<String>,
    /// Write a snapshot even if the content equals the latest.
    pub force: bool,
    /// The live target's filters: with ignore paths, content that equals the latest
    /// once they are left out is unchanged.
    pub filters: Option<Arc<EnvFilters>>,
    /// For trigger `restore`: the version restored (kept in the metadata).
    pub restored_from: Option<u64>,
    /// The sha256 of `raw` without the ignore paths of `filters`, when the caller has
    /// it already ([`crate::live::LiveTarget::read_for_backup`]); computed otherwise.
    pub ignoring_sha256: Option<String>,
    /// Store a configuration that fails the environment's schema although its
    /// `on_backup` is `refuse` (flagged in the metadata, recorded in the event).
    pub skip_schema_check: bool,
    /// The latest snapshot as the caller has just read or written it (a restore's
    /// first check, or the pre-restore snapshot): the first attempt compares with it and
    /// claims the version after it instead of listing. Safe when stale: a newer
    /// snapshot makes the create-only claim fail, and the latest is then read.
    pub known_latest: Option<SnapshotMeta>,
}

impl BackupRequest {
    /// A request with just the content and trigger.
    #[must_use]
    pub fn new(raw: impl Into<Bytes>, trigger: Trigger) -> Self {
        Self {
            raw: raw.into(),
            trigger,
            actor: Actor::default(),
            message: None,
            source: None,
            force: false,
            filters: None,
            restored_from: None,
            ignoring_sha256: None,
            skip_schema_check: false,
            known_latest: None,
        }
    }
}

/// What a backup did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum BackupOutcome {
    /// A new snapshot was written.
    Created(SnapshotMeta),
    /// The content equals the latest snapshot's; nothing was written.
    Unchanged(SnapshotMeta),
}

impl BackupOutcome {
    /// The snapshot written, or the unchanged latest.
    #[must_use]
    pub fn snapshot(&self) -> &SnapshotMeta {
        match self {
            Self::Created(m) | Self::Unchanged(m) => m,
        }
    }
}

/// How many HEAD requests a listing sends at once.
pub(crate) const HEAD_CONCURRENCY: usize = 16;

/// The error for an environment with no snapshot at all.
pub fn no_snapshots(env: &EnvRef) -> Error {
    Error::not_found(format!("{env} has no snapshots")).with_next(Hint::steps(
        "check the app and env names, or take a snapshot",
        [Step::Backup(env.into())],
    ))
}

/// Decompresses a stored snapshot and checks its size and sha256 against its metadata.
///
/// # Errors
/// `Corrupt` naming the snapshot and what failed.
pub async fn decode_snapshot(
    env: &EnvRef,
    meta: &SnapshotMeta,
    stored: Bytes,
    limit: u64,
) -> Result<Bytes> {
    let what = format!("snapshot v{} of {env}", meta.version);
    let expected_sha = meta.sha256.clone();
    let expected_size = meta.size;
    tokio::task::spawn_blocking(move || {
        let raw = codec::decompress(&stored, limit, &what)?;
        if raw.len() as u64 != expected_size {
            return Err(Error::corrupt(format!(
                "{what} decompresses to {} bytes, but its metadata says {expected_size}",
                raw.len()
            )));
        }
        let sha = codec::sha256_hex(&raw);
        if sha != expected_sha {
            return Err(Error::corrupt(format!(
                "{what} fails its checksum: sha256 is {sha}, metadata says {expected_sha}"
            )));
        }
        // Stored bytes that are not JSON are the store's fault, never the caller's.
        codec::check_json(&raw, &what).map_err(|e| Error::corrupt(e.message().to_string()))?;
        Ok(Bytes::from(raw))
    })
    .await
    .map_err(|e| Error::internal(format!("decompression task failed: {e}")))?
}
