//! Restore-all: many environments back to one point in time, in one run.
//!
//! Built on the single-environment restore ([`Vault::plan_restore`],
//! [`Vault::restore`]), which it does not change: every environment still gets its
//! pre-restore snapshot, its push, its read-back and its audit event.
//!
//! 1. [`select`]: which environments (by app, by env name pattern, or all in the store
//!    and the config) and which version each goes to for a [`Point`] (the snapshot at a
//!    time, the current release, or the release current at a time);
//! 2. [`plan`]: per environment, the version, whether live differs and by how much, or
//!    why it is skipped (no snapshot that old, no live target, already equal, live
//!    unreadable): the dry run;
//! 3. [`run`]: each planned environment through [`Vault::restore`] with bounded
//!    parallelism and a per-host limit ([`crate::host_limits`]); a failure in one never
//!    stops the others. The run is recorded in the store ([`record`]), updated with
//!    compare-and-swap as environments finish, so that it can be resumed (done ones
//!    skipped, failed ones retried) and undone (every restored environment back to the
//!    pre-restore snapshot the restore saved).

pub mod events;
pub mod lease;
pub mod list;
pub mod plan;
pub mod record;
#[cfg(test)]
mod request_tests;
pub mod run;
pub mod select;
#[cfg(test)]
mod tests;

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::restore::LiveState;

pub use events::{RunEvent, RunPhase};
pub use lease::{DEFAULT_LEASE, RunLease};
pub use list::{RunPage, RunSummary, StatusCounts};
pub use record::{EnvRun, RunKind, RunRecord, Selection, Status};
pub use run::{RunOptions, RunReport};
pub use select::{EnvFilter, EnvTarget};

/// The point every environment goes back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Point {
    /// The newest snapshot taken at or before this time, per environment.
    At(DateTime<Utc>),
    /// Each environment's current release.
    CurrentRelease,
    /// The release that was current at this time, per environment (from its release
    /// history).
    ReleaseAt(DateTime<Utc>),
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::At(t) => write!(f, "the snapshots as of {}", t.to_rfc3339()),
            Self::CurrentRelease => f.write_str("the current releases"),
            Self::ReleaseAt(t) => write!(f, "the releases current at {}", t.to_rfc3339()),
        }
    }
}

/// Why an environment is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// No snapshot at or before the time (or none at all).
    NoSnapshot,
    /// No release (current, or at the time).
    NoRelease,
    /// No live target is configured (or it can't be built).
    NoLiveTarget,
    /// Live can't be read: restoring would overwrite it unsaved.
    LiveUnreadable,
    /// Nothing was live before the run (undo only): nothing to put back.
    NothingBefore,
}

impl SkipReason {
    /// A short text for tables.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSnapshot => "no snapshot",
            Self::NoRelease => "no release",
            Self::NoLiveTarget => "no live target",
            Self::LiveUnreadable => "live unreadable",
            Self::NothingBefore => "nothing was live before",
        }
    }
}

/// What the run would do to one environment.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Push `version`: live differs from it.
    Restore {
        /// The version it goes to.
        version: u64,
        /// What live holds now.
        live: LiveState,
        /// How many changes from live to the snapshot (`None`: live missing or not JSON).
        changes: Option<usize>,
        /// The snapshot's size in bytes.
        size: u64,
    },
    /// Live already holds exactly `version`: nothing to push.
    Unchanged {
        /// The version.
        version: u64,
    },
    /// To restore to `version`; live was not read in advance (the plan of a confirmed
    /// run): the restore itself reads it once, finds it already equal (unchanged) or
    /// refuses an unreadable one (failed, retried by a resume).
    Resolved {
        /// The version it goes to.
        version: u64,
    },
    /// Left alone.
    Skip {
        /// Why.
        reason: SkipReason,
        /// The details.
        detail: String,
    },
    /// The plan itself failed (the store, a corrupt snapshot): counted as failed.
    Fail {
        /// What failed.
        error: String,
        /// The error kind's code.
        code: String,
        /// The version, when it was found.
        version: Option<u64>,
    },
}

/// The plan for one environment.
#[derive(Debug, Clone, Serialize)]
pub struct EnvPlan {
    /// The environment (`app/env`).
    pub env: String,
    /// Where its live configuration is, when it has a target.
    pub target: Option<String>,
    /// What would be done.
    #[serde(flatten)]
    pub decision: Decision,
    /// The environment's latest snapshot, when resolving the point listed it: the
    /// run's restore compares live with it instead of listing again
    /// ([`RunOptions::latest`]).
    #[serde(skip)]
    pub latest: Option<crate::meta::SnapshotMeta>,
}

/// The latest snapshots the plans found, by `app/env`: what [`RunOptions::latest`]
/// takes.
#[must_use]
pub fn latest_of(
    plans: &[EnvPlan],
) -> std::collections::HashMap<String, crate::meta::SnapshotMeta> {
    plans
        .iter()
        .filter_map(|p| Some((p.env.clone(), p.latest.clone()?)))
        .collect()
}

impl EnvPlan {
    /// The version the environment goes to, if any.
    #[must_use]
    pub fn version(&self) -> Option<u64> {
        match &self.decision {
            Decision::Restore { version, .. }
            | Decision::Unchanged { version }
            | Decision::Resolved { version } => Some(*version),
            Decision::Fail { version, .. } => *version,
            Decision::Skip { .. } => None,
        }
    }
}
