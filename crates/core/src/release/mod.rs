//! Releases: which snapshot an environment publishes, under a unique label.
//!
//! The release pointer (`release.json`, see [`layout::release_pointer_key`]) holds the
//! current [`Release`] and is the source of truth. It is the only object in the store
//! that is ever rewritten, and only by compare-and-swap on its etag (create-only for
//! the first release): a writer that loses the race gets `PreconditionFailed`, never an
//! overwrite, and is never retried behind the caller's back.
//!
//! Each release also gets an immutable history entry and an immutable label key, both
//! created *after* the pointer moved. A crash in between is repaired by the next
//! release, which first makes sure the current release's history entry and label key
//! exist; readers merge the pointer into the history so the newest release is never
//! missing. Hence, whenever the pointer holds release `n`, releases `1..n` all have
//! their history entry and label key, and label uniqueness only needs the label keys
//! plus the pointer itself.
//!
//! One file per job: [`publish`] moves the pointer (release, rollback), [`read`] reads
//! the pointer, the history and labels. Promotion, which copies a snapshot and may
//! release it, is [`crate::promote`].

pub(crate) mod publish;
mod read;
#[cfg(test)]
pub(crate) mod tests;

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Hint, Result, Step};
use crate::etag;
use crate::events::Actor;
use crate::id::{EnvRef, Label};
use crate::store::Object;

/// The longest release notes accepted, in bytes: the pointer is read on every poll,
/// so it stays small.
pub const MAX_NOTES_LEN: usize = 4096;
/// How many history entries are read at once.
pub(crate) const GET_CONCURRENCY: usize = 16;

/// How a release came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseKind {
    /// A snapshot published with `release`.
    Release,
    /// A return to an earlier release with `rollback`.
    Rollback,
    /// A snapshot copied from another environment and published with `promote --release`.
    Promote,
    /// A snapshot published as part of a restore.
    Restore,
}

impl ReleaseKind {
    /// The name stored and shown to people.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Rollback => "rollback",
            Self::Promote => "promote",
            Self::Restore => "restore",
        }
    }
}

impl fmt::Display for ReleaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A short reference to a release: its number, label and snapshot version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseRef {
    /// The release number.
    pub seq: u64,
    /// Its label.
    pub label: Label,
    /// The snapshot it published.
    pub version: u64,
}

impl fmt::Display for ReleaseRef {
    /// `1.4.0 (r3, v12)`, or `r3 (v12)` when the label is the release number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.label.as_str() == self.seq.to_string() {
            write!(f, "r{} (v{})", self.seq, self.version)
        } else {
            write!(f, "{} (r{}, v{})", self.label, self.seq, self.version)
        }
    }
}

/// One release of an environment, as stored in the pointer and, immutably, in the
/// history and the label index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Release {
    /// The release number: 1, 2, 3 ... per environment.
    pub seq: u64,
    /// The label, unique in the environment.
    pub label: Label,
    /// The snapshot published.
    pub version: u64,
    /// sha256 of the snapshot's raw configuration.
    pub sha256: String,
    /// Raw size of the configuration in bytes.
    pub size: u64,
    /// Stored (compressed) size in bytes.
    pub stored_size: u64,
    /// When it was published (UTC).
    pub released_at: DateTime<Utc>,
    /// Who published it.
    pub released_by: Option<String>,
    /// Release notes.
    pub notes: Option<String>,
    /// How it came about.
    pub kind: ReleaseKind,
    /// The release it replaced, if any.
    pub previous: Option<ReleaseRef>,
    /// The release number that `rollback` returns to from this one: the one it replaced,
    /// or for a rollback, the base of the release it went back to.
    pub base: Option<u64>,
}

impl Release {
    /// The short reference to this release.
    #[must_use]
    pub fn reference(&self) -> ReleaseRef {
        ReleaseRef {
            seq: self.seq,
            label: self.label.clone(),
            version: self.version,
        }
    }

    pub(crate) fn encode(&self) -> Result<Bytes> {
        serde_json::to_vec_pretty(self)
            .map(Bytes::from)
            .map_err(|e| Error::internal(format!("cannot encode release r{}: {e}", self.seq)))
    }

    pub(crate) fn decode(obj: &Object) -> Result<Self> {
        serde_json::from_slice(&obj.bytes).map_err(|e| {
            Error::corrupt(format!(
                "release record {} is unreadable: {e}",
                obj.info.key
            ))
            .with_next(Hint::text(
                "inspect it in the store; the release history lists the others",
            ))
        })
    }
}

/// The current release with the etag of the pointer that holds it: the etag to pass as
/// `if_match` to publish only over this release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleasePointer {
    /// The release.
    pub release: Release,
    /// The store's etag of the pointer object, as the store gives it (S3 quotes it).
    pub etag: String,
}

/// A snapshot to publish.
#[derive(Debug, Clone)]
pub struct ReleaseRequest {
    /// The snapshot version.
    pub version: u64,
    /// The label; default: the release number, or the next free number.
    pub label: Option<Label>,
    /// Release notes.
    pub notes: Option<String>,
    /// Publish only if the pointer's etag is still this one (quoted or not; `*`: only
    /// if there is a release).
    pub if_match: Option<String>,
    /// Who publishes, through which front end.
    pub actor: Actor,
    /// What kind of release this is.
    pub kind: ReleaseKind,
    /// Publish even if the snapshot fails the environment's JSON Schema (recorded in
    /// the audit event).
    pub skip_schema_check: bool,
}

impl ReleaseRequest {
    /// A plain release of `version` by `actor`, with a default label.
    #[must_use]
    pub fn new(version: u64, actor: Actor) -> Self {
        Self {
            version,
            label: None,
            notes: None,
            if_match: None,
            actor,
            kind: ReleaseKind::Release,
            skip_schema_check: false,
        }
    }
}

/// The error for an environment without a release.
pub fn no_release(env: &EnvRef) -> Error {
    Error::not_found(format!("{env} has no release")).with_next(Hint::steps(
        "publish one",
        [Step::Release(env.into(), None)],
    ))
}

pub(crate) fn check_notes(notes: Option<&str>) -> Result<()> {
    match notes {
        Some(n) if n.len() > MAX_NOTES_LEN => Err(Error::invalid(format!(
            "release notes are {} bytes, over the {MAX_NOTES_LEN}-byte limit; shorten them",
            n.len()
        ))),
        _ => Ok(()),
    }
}

pub(crate) fn check_if_match(
    env: &EnvRef,
    if_match: Option<&str>,
    current: Option<&ReleasePointer>,
) -> Result<()> {
    match (if_match, current) {
        (None, _) => Ok(()),
        (Some("*"), Some(_)) => Ok(()),
        (Some(want), Some(cur)) if etag::if_match(want, &cur.etag) => Ok(()),
        (Some(want), Some(cur)) => Err(Error::precondition(format!(
            "the release of {env} changed: its pointer's etag is {}, not {want} (now \
             release {}); nothing was written",
            cur.etag,
            cur.release.reference()
        ))
        .with_next(Hint::steps(
            "check the releases and retry naming the current pointer",
            [
                Step::ListReleases(env.into()),
                Step::IfMatch(cur.etag.clone()),
            ],
        ))),
        (Some(want), None) => Err(Error::precondition(format!(
            "{env} has no release, so its pointer cannot have etag {want}; nothing was written"
        ))
        .with_next(Hint::steps(
            "publish the first release without naming a pointer",
            [Step::NoIfMatch],
        ))),
    }
}
