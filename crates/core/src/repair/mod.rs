//! Crash consistency: what a writer killed between two of its writes leaves missing,
//! found ([`Vault::find_gaps`], which `verify` reports) and put back
//! ([`Vault::repair_env`]).
//!
//! Every write command writes its truth first (a snapshot, the release pointer, a pin,
//! a deletion) and the records that follow from it afterwards: index entries, release
//! history entries and label keys, audit events. A kill in between leaves the truth
//! without its records, never the other way round, so every gap can be rebuilt from
//! what is there (ARCHITECTURE.md, "Crash consistency"):
//! - a snapshot without its listing index entry: rebuilt from the snapshot's metadata;
//! - an index entry whose snapshot is gone: deleted;
//! - the current release without its history entry or label key: written from the
//!   pointer;
//! - a snapshot, release, pre-restore snapshot, pin or deleted range of versions
//!   without its audit event: the event is written, marked as reconstructed by repair
//!   and naming what it was reconstructed from;
//! - temporary files and orphaned metadata of the directory store: deleted.
//!
//! Repair never deletes a snapshot, a release or an event. What it writes is
//! create-only with keys that depend only on what they describe, so running it twice,
//! or twice at once, writes each record once. Anything younger than the grace period is
//! left alone: a running writer may be about to write it.

mod find;
#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Serialize;

use crate::error::{ErrorKind, Result};
use crate::events::{Actor, Event};
use crate::id::EnvRef;
use crate::layout;
use crate::meta::SnapshotMeta;
use crate::release::Release;
use crate::store::{Leftover, PutMode};
use crate::vault::Vault;

/// How old a gap must be before it is named or repaired, by default: longer than any
/// write command takes between its first and last write (a restore retries live and
/// waits on a slow target), so that a running writer's records are never taken for
/// missing ones.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10 * 60);

/// What kind of gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// A snapshot without its listing index entry.
    MissingIndexEntry,
    /// A listing index entry whose snapshot is gone.
    DanglingIndexEntry,
    /// The current release without its history entry or label key.
    MissingReleaseRecord,
    /// A snapshot, release, restore, prune or pin without its audit event.
    MissingEvent,
    /// A temporary file or orphaned metadata a killed writer left in the store.
    LeftoverFile,
}

impl GapKind {
    /// The name shown and counted (as in JSON).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingIndexEntry => "missing_index_entry",
            Self::DanglingIndexEntry => "dangling_index_entry",
            Self::MissingReleaseRecord => "missing_release_record",
            Self::MissingEvent => "missing_event",
            Self::LeftoverFile => "leftover_file",
        }
    }
}

/// One gap: what is missing or left over, and where.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Gap {
    /// What kind.
    pub kind: GapKind,
    /// The key (or, for a leftover file, the path) concerned.
    pub key: String,
    /// The snapshot version concerned, if one.
    pub version: Option<u64>,
    /// What is missing, in words.
    pub detail: String,
    #[serde(skip)]
    fix: Fix,
}

/// How a gap is repaired.
#[derive(Debug, Clone)]
enum Fix {
    WriteIndexEntry(Box<SnapshotMeta>),
    DeleteIndexEntry { entry: String, version: u64 },
    WriteReleaseRecords(Box<Release>),
    WriteEvent { key: String, event: Box<Event> },
    RemoveLeftover(Leftover),
}

/// How to repair.
#[derive(Debug, Clone)]
pub struct RepairOptions {
    /// Leave alone what is younger than this ([`DEFAULT_GRACE`]).
    pub grace: Duration,
    /// Name what would be repaired; write nothing.
    pub dry_run: bool,
    /// Who repairs (recorded in each reconstructed event).
    pub actor: Actor,
}

impl RepairOptions {
    /// Options with the default grace period, for `actor`.
    #[must_use]
    pub fn new(actor: Actor) -> Self {
        Self {
            grace: DEFAULT_GRACE,
            dry_run: false,
            actor,
        }
    }
}

/// A gap repair could not close.
#[derive(Debug, Clone, Serialize)]
pub struct Unrepaired {
    /// The gap.
    #[serde(flatten)]
    pub gap: Gap,
    /// Why.
    pub error: String,
}

/// What `repair` did in one environment.
#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    /// The environment.
    pub env: EnvRef,
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// The gaps closed (with `dry_run`: the gaps found).
    pub repaired: Vec<Gap>,
    /// Gaps found closed by someone else meanwhile (a writer or another repair).
    pub already_closed: usize,
    /// The gaps that could not be closed, with why.
    pub failed: Vec<Unrepaired>,
}

impl Vault {
    /// Finds the gaps of `env` older than `opts.grace` and closes them (see the module
    /// documentation); with `dry_run`, only names them.
    ///
    /// # Errors
    /// Store errors while looking for gaps; a failure to close one gap is reported in
    /// [`RepairReport::failed`] and the others are still closed.
    pub async fn repair_env(&self, env: &EnvRef, opts: &RepairOptions) -> Result<RepairReport> {
        let gaps = self.gaps(env, opts.grace, Some(&opts.actor)).await?;
        let mut report = RepairReport {
            env: env.clone(),
            dry_run: opts.dry_run,
            repaired: Vec::new(),
            already_closed: 0,
            failed: Vec::new(),
        };
        if opts.dry_run {
            report.repaired = gaps;
            return Ok(report);
        }
        for gap in gaps {
            match self.close(env, &gap.fix, opts.grace).await {
                Ok(true) => {
                    tracing::info!(%env, kind = gap.kind.as_str(), key = %gap.key, "repaired");
                    report.repaired.push(gap);
                }
                Ok(false) => report.already_closed += 1,
                Err(e) => report.failed.push(Unrepaired {
                    gap,
                    error: e.report(),
                }),
            }
        }
        Ok(report)
    }

    /// Closes one gap; `false` if it was found closed already.
    async fn close(&self, env: &EnvRef, fix: &Fix, grace: Duration) -> Result<bool> {
        let store = self.store();
        match fix {
            Fix::WriteIndexEntry(meta) => {
                // Still there with the same metadata (a prune may have deleted it).
                match self.snapshot_meta(env, meta.version).await {
                    Ok(m) if m == **meta => {}
                    Ok(_) => return Ok(false),
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
                    Err(e) => return Err(e),
                }
                let key = crate::index::encode(meta)
                    .and_then(|p| layout::index_key(env, meta.version, &p))
                    .ok_or_else(|| crate::error::Error::internal("index entry no longer fits"))?;
                created(
                    store
                        .put(
                            &key,
                            bytes::Bytes::new(),
                            &Default::default(),
                            PutMode::Create,
                        )
                        .await,
                )
            }
            Fix::DeleteIndexEntry { entry, version } => {
                match store.head(&layout::snapshot_key(env, *version)).await {
                    Ok(_) => return Ok(false), // Written meanwhile: the entry is good.
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                store.delete(entry).await.map(|()| true)
            }
            Fix::WriteReleaseRecords(release) => {
                self.repair_history(env, release).await.map(|()| true)
            }
            Fix::WriteEvent { key, event } => {
                let body = serde_json::to_vec(event).map_err(|e| {
                    crate::error::Error::internal(format!("cannot encode event: {e}"))
                })?;
                created(
                    store
                        .put(key, body.into(), &Default::default(), PutMode::Create)
                        .await,
                )
            }
            Fix::RemoveLeftover(l) => store.remove_leftover(l, grace).await,
        }
    }
}

/// A create-only write: `true` if it wrote, `false` if the object was there already.
fn created(result: Result<String>) -> Result<bool> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}
