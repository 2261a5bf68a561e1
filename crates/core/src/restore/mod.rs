//! Restore: pushes a stored snapshot back to an environment's live target, safely.
//!
//! One code path for the CLI and the HTTP API: [`Vault::plan_restore`] (what a restore
//! would do, the dry run) and [`Vault::restore`] (do it). A restore
//! 1. resolves and reads the snapshot, checking its size, sha256, that it is JSON and
//!    that it passes the environment's JSON Schema unless `skip_schema_check` (any
//!    failure: nothing is written anywhere);
//! 2. saves what is live now as a `pre-restore` snapshot, or reuses the latest snapshot
//!    when live holds exactly its bytes (immutable, identical: nothing can be lost);
//!    live that can't be read is read again (see [`LiveRetry`]); when live is missing
//!    it goes on only if the caller allows it (`allow_missing_live`), and when it can't
//!    be read or snapshotted only with the explicit `allow_unreadable_live`;
//! 3. pushes the snapshot to the live target, reads it back and compares sha256 (or,
//!    for a target that reformats what it stores, JSON equality);
//! 4. records what live now holds as the newest snapshot (trigger `restore`, naming
//!    the version restored), unless the latest snapshot already holds it, so that
//!    `latest` is what is live and the next unchanged backup writes nothing;
//! 5. records an audit event, and reports what was done and what undoes it.
//!
//! A failure after the pre-restore snapshot says what state live is in (read back
//! after the failure) and, as a hint, the restore that undoes it.
//!
//! One file per job: [`plan`] checks the snapshot and reads live (the dry run),
//! [`apply`] restores, [`failure`] names what live holds after a failed push.

mod apply;
mod failure;
#[cfg(test)]
mod history_tests;
mod plan;
mod recreate;
#[cfg(test)]
mod request_tests;
mod save_copy;
#[cfg(test)]
mod tests;

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::diff::{Change, Diff};
use crate::error::Step;
use crate::events::Actor;
use crate::id::EnvRef;
use crate::meta::SnapshotMeta;
use crate::schema::Violations;
use crate::selector::Selector;

/// What the live target holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LiveState {
    /// It answered with content.
    Present {
        /// sha256 of what it holds.
        sha256: String,
        /// Its size in bytes.
        size: u64,
        /// Whether it is valid JSON.
        json: bool,
    },
    /// It holds nothing (a deleted file, a 404).
    Missing {
        /// What the target said.
        reason: String,
    },
    /// It could not be read.
    Unreadable {
        /// Why.
        reason: String,
        /// The error kind's code.
        code: String,
    },
}

/// What a restore would do: the dry run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RestorePlan {
    /// The environment.
    pub env: EnvRef,
    /// The snapshot that would be pushed (already checked).
    pub snapshot: SnapshotMeta,
    /// Where it would go.
    pub target: String,
    /// What is there now.
    pub live: LiveState,
    /// Whether live already holds exactly the snapshot's bytes (nothing to push).
    pub already_live: bool,
    /// The changes from live to the snapshot, when both are JSON.
    pub changes: Option<Vec<Change>>,
    /// The snapshot's violations of the environment's JSON Schema: a restore refuses
    /// it unless the check is skipped explicitly (absent: it passes, or no schema).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema_violations: Option<Violations>,
    /// The same as a readable diff (`None` when live is missing or not JSON).
    #[serde(skip)]
    pub diff: Option<Diff>,
    /// The configuration that would be pushed.
    #[serde(skip)]
    pub raw: Bytes,
}

/// A restore to carry out.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The snapshot.
    pub source: Selector,
    /// Who restores, through which front end.
    pub actor: Actor,
    /// Go on when live is truly missing (a 404 or 410, no file, no object), so that
    /// there is nothing to save (the disaster case). Off: such a restore fails with
    /// `PreconditionFailed` and nothing is pushed.
    pub allow_missing_live: bool,
    /// Go on when live can't be read (after [`RestoreRequest::live_retry`]: a 5xx, a
    /// timeout, a refused connection, a 401 or 403) or holds something that can't be
    /// snapshotted (not JSON, too large): what it holds would be overwritten unsaved.
    /// Off: such a restore fails with the read's error and nothing is pushed. Recorded
    /// in the audit event when it is what let the restore go on.
    pub allow_unreadable_live: bool,
    /// How often live is read before it is called unreadable.
    pub live_retry: LiveRetry,
    /// Also publish the restored snapshot as the environment's release.
    pub publish: bool,
    /// Restore even if the snapshot fails the environment's JSON Schema (recorded in
    /// the audit event). Off: such a restore fails with `InvalidInput` and nothing is
    /// written anywhere.
    pub skip_schema_check: bool,
    /// Why (kept in the event, and the release notes when publishing).
    pub message: Option<String>,
    /// Save what is live to this target (a new file) instead of as a `pre-restore`
    /// snapshot in the store: for a store that can't be written, such as a read-only
    /// copy used for disaster recovery. The copy is read back and checked before
    /// anything is pushed.
    pub save_live_to: Option<std::sync::Arc<dyn crate::live::LiveTarget>>,
    /// When the write answers that the live object does not exist (404 or 410) and the
    /// live target says how to create it (`[...live.create]`): create it anew. The
    /// platform gives it a new identity; the report names it and the config change
    /// that points the environment at it. Implies going on without a pre-restore
    /// snapshot when live is missing. Off: such a restore fails with `LiveMissing`,
    /// saying it can be created.
    pub create_if_missing: bool,
    /// The environment's latest snapshot as the caller read it a moment ago (a
    /// restore-all's resolution of its point): the pre-restore check compares live with
    /// it instead of listing the history again. Lossless when stale: live equal to it
    /// is held by that immutable snapshot, and a snapshot written since makes the
    /// create-only claim of the next version fail, after which the latest is read.
    pub latest: Option<SnapshotMeta>,
}

impl RestoreRequest {
    /// A request for `source` with every option off.
    #[must_use]
    pub fn new(source: Selector, actor: Actor) -> Self {
        Self {
            source,
            actor,
            allow_missing_live: false,
            allow_unreadable_live: false,
            live_retry: LiveRetry::default(),
            publish: false,
            skip_schema_check: false,
            message: None,
            save_live_to: None,
            create_if_missing: false,
            latest: None,
        }
    }
}

/// How a restore reads live before calling it unreadable: `attempts` reads, the
/// first pause `backoff`, doubled after each failed read. A missing live is not
/// retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveRetry {
    /// Reads in all (at least one).
    pub attempts: u32,
    /// The pause after the first failed read; doubled after each next one.
    pub backoff: Duration,
}

impl Default for LiveRetry {
    /// Three reads, 250 ms then 500 ms apart: a restarting platform gets most of a
    /// second, a CLI user waits less than one.
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_millis(250),
        }
    }
}

impl LiveRetry {
    /// No retry: one read.
    #[must_use]
    pub fn once() -> Self {
        Self {
            attempts: 1,
            backoff: Duration::ZERO,
        }
    }
}

/// What happened to the configuration that was live before the restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PreRestore {
    /// It was saved as a new snapshot (trigger `pre-restore`).
    Saved {
        /// The new snapshot.
        snapshot: SnapshotMeta,
    },
    /// It equals the latest snapshot byte for byte; that snapshot is the undo point.
    Reused {
        /// The latest snapshot.
        snapshot: SnapshotMeta,
    },
    /// Live was missing or could not be read or snapshotted; the caller allowed going
    /// on.
    Impossible {
        /// Why.
        reason: String,
        /// Whether live was unreadable (or not snapshottable) and the explicit override
        /// (`allow_unreadable_live`) let the restore go on, rather than live missing.
        overridden_unreadable: bool,
    },
    /// Nothing was overwritten (live already held the snapshot, or a copy to a file).
    NotNeeded,
    /// It was saved outside the store, where the caller asked
    /// ([`RestoreRequest::save_live_to`]), and read back.
    SavedElsewhere {
        /// Where.
        target: String,
        /// sha256 of what was saved (what was live).
        sha256: String,
        /// Its size in bytes.
        size: u64,
    },
}

impl PreRestore {
    /// The snapshot that holds what was live before, if there is one.
    #[must_use]
    pub fn snapshot(&self) -> Option<&SnapshotMeta> {
        match self {
            Self::Saved { snapshot } | Self::Reused { snapshot } => Some(snapshot),
            Self::Impossible { .. } | Self::NotNeeded | Self::SavedElsewhere { .. } => None,
        }
    }
}

/// How the pushed configuration was confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// Read back with the same sha256.
    Sha256,
    /// Read back as equal JSON with other bytes (the target reformats what it stores).
    EquivalentJson,
    /// Read back equal once the environment's ignore paths are left out (the platform
    /// changed a version counter or a timestamp as it saved).
    EqualIgnoring,
    /// Read back as written, with the optional parts this version does not hold
    /// (`kind = "parts"`, `optional = true`) left as live had them.
    OptionalPartsKept,
    /// Nothing was pushed.
    NotPushed,
}

/// What was published with `publish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Published {
    /// The release label.
    pub label: String,
    /// The version released.
    pub version: u64,
    /// Whether a new release was made (false: the snapshot already was the release).
    pub changed: bool,
    /// The version the release named before, if there was a release.
    pub previous_version: Option<u64>,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RestoreReport {
    /// The environment.
    pub env: EnvRef,
    /// The snapshot restored.
    pub restored: SnapshotMeta,
    /// Where it went.
    pub target: String,
    /// Whether anything was written to the target.
    pub pushed: bool,
    /// What became of the configuration that was live before.
    pub pre_restore: PreRestore,
    /// How the result was confirmed.
    pub verified: Verification,
    /// The release published, with `publish`.
    pub published: Option<Published>,
    /// Why publishing failed, when the restore itself succeeded (publishing the
    /// restored version again is the step to offer).
    pub publish_error: Option<String>,
    /// How the history records what live holds after the restore.
    pub recorded: Recorded,
    /// What undoes the restore, in order (empty when there is nothing to undo).
    pub undo: Vec<Undo>,
    /// The live object was gone from the platform and was created anew
    /// (`create_if_missing`): its new identity and the config change to make.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recreated: Option<Recreated>,
}

/// A live object a restore created anew, the platform having deleted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Recreated {
    /// The identity the platform gave it.
    pub id: String,
    /// Where it is now (redacted).
    pub target: String,
    /// The config change that points the environment at it; jetvault never rewrites
    /// the config file, so until it is made, backups still read the old URL.
    pub config_change: crate::live::http::ConfigChange,
}

/// How the history records what live holds after a restore: as its newest snapshot,
/// so that `latest` is what is live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Recorded {
    /// A new snapshot holds it (trigger `restore`, `restored_from` the version
    /// restored).
    Saved {
        /// The new snapshot.
        snapshot: SnapshotMeta,
    },
    /// The latest snapshot already holds it byte for byte; nothing was written.
    Latest {
        /// The latest snapshot.
        snapshot: SnapshotMeta,
    },
    /// Writing the snapshot failed. The restore itself stands (live holds the restored
    /// configuration, verified), but the latest snapshot is still the one before the
    /// restore until a backup records live.
    Failed {
        /// Why.
        error: String,
    },
    /// Not recorded: a copy to a file, which leaves live alone; or a store this process
    /// can't write, live having been saved to a file instead (`save_live_to`).
    NotRecorded,
}

impl Recorded {
    /// The snapshot that holds what live holds now, if the history has one.
    #[must_use]
    pub fn snapshot(&self) -> Option<&SnapshotMeta> {
        match self {
            Self::Saved { snapshot } | Self::Latest { snapshot } => Some(snapshot),
            Self::Failed { .. } | Self::NotRecorded => None,
        }
    }
}

/// One thing that undoes a restore, in the restored environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Undo {
    /// Restore this version again: what was live before.
    Restore {
        /// The version that holds what was live before.
        version: u64,
    },
    /// Roll the release back to the one the restore replaced.
    Rollback,
}

impl Undo {
    /// The step a front end renders (a command line, a request).
    #[must_use]
    pub fn step(&self, env: &EnvRef) -> Step {
        match self {
            Self::Restore { version } => Step::Restore(env.into(), *version),
            Self::Rollback => Step::Rollback(env.into()),
        }
    }
}
