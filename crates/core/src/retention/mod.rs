//! Retention: which snapshots prune keeps and which it deletes.
//!
//! The policy itself is a pure function ([`decide`]) from the versions, their creation
//! times and the protected set to a keep/delete decision with the reasons for each. A
//! protected version (the latest, the released one, any in the release history, a
//! pinned one, one whose metadata can't be read) is always kept, whatever the policy.
//! [`Vault::apply_retention`] gathers the inputs from the store, re-checks the
//! protected set just before deleting, and deletes.
//!
//! One file per job: [`policy`] describes policies, [`decide`](mod@decide) is the pure
//! decision, [`apply`] gathers the inputs and deletes.

mod apply;
mod decide;
mod policy;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::RetentionPolicy;
use crate::error::{Error, Result};
use crate::events::Actor;
use crate::id::EnvRef;

pub use decide::decide;
pub use policy::{describe_policy, policy_is_empty};

/// One snapshot as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Its version.
    pub version: u64,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
}

/// Versions that are kept whatever the policy says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Protected {
    /// The version the release pointer names.
    pub release: Option<u64>,
    /// Every version named in the release history.
    pub history: BTreeSet<u64>,
    /// Pinned versions.
    pub pinned: BTreeSet<u64>,
    /// Versions whose metadata could not be read (kept for `verify` to report).
    pub unreadable: BTreeSet<u64>,
}

impl Protected {
    /// Whether `v` is protected by anything other than being the latest.
    #[must_use]
    pub fn contains(&self, v: u64) -> bool {
        self.release == Some(v)
            || self.history.contains(&v)
            || self.pinned.contains(&v)
            || self.unreadable.contains(&v)
    }

    /// What protects `v` (empty if nothing does; being the latest is not known here).
    #[must_use]
    pub fn reasons(&self, v: u64) -> Vec<KeepReason> {
        let mut r = Vec::new();
        if self.release == Some(v) {
            r.push(KeepReason::Released);
        }
        if self.history.contains(&v) {
            r.push(KeepReason::ReleaseHistory);
        }
        if self.pinned.contains(&v) {
            r.push(KeepReason::Pinned);
        }
        if self.unreadable.contains(&v) {
            r.push(KeepReason::Unreadable);
        }
        r
    }
}

/// Why a version is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    /// The newest snapshot.
    Latest,
    /// The current release.
    Released,
    /// Named in the release history.
    ReleaseHistory,
    /// Pinned.
    Pinned,
    /// Its metadata is unreadable: never deleted blindly.
    Unreadable,
    /// Among the newest `keep_last`.
    Last,
    /// The newest of one of the last `keep_daily` days.
    Daily,
    /// The newest of one of the last `keep_weekly` weeks.
    Weekly,
    /// The newest of one of the last `keep_monthly` months.
    Monthly,
    /// Younger than `keep_within`.
    Within,
}

impl KeepReason {
    /// Whether the reason is a protection rather than a policy rule.
    #[must_use]
    pub fn is_protection(self) -> bool {
        matches!(
            self,
            Self::Latest | Self::Released | Self::ReleaseHistory | Self::Pinned | Self::Unreadable
        )
    }

    /// The name shown to people.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Latest => "latest",
            Self::Released => "released",
            Self::ReleaseHistory => "release-history",
            Self::Pinned => "pinned",
            Self::Unreadable => "unreadable",
            Self::Last => "last",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Within => "within",
        }
    }
}

/// The decision for one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    /// The version.
    pub version: u64,
    /// When it was taken (`None` if its metadata is unreadable).
    pub created_at: Option<DateTime<Utc>>,
    /// Whether it is kept.
    pub keep: bool,
    /// Why it is kept (empty for a deleted version: no rule keeps it).
    pub reasons: Vec<KeepReason>,
}

/// How `apply_retention` runs.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Decide and report, delete nothing.
    pub dry_run: bool,
    /// Who prunes (for the audit event).
    pub actor: Actor,
    /// The time the policy is evaluated at (now if `None`).
    pub now: Option<DateTime<Utc>>,
}

/// Progress of a prune, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneProgress {
    /// `done` of `total` snapshots' metadata read.
    Reading {
        /// Read so far.
        done: u64,
        /// To read.
        total: u64,
    },
    /// `done` of `total` snapshots deleted.
    Deleting {
        /// Deleted so far.
        done: u64,
        /// To delete.
        total: u64,
    },
}

/// What a prune decided and did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PruneReport {
    /// The environment.
    pub env: EnvRef,
    /// The policy applied.
    pub policy: RetentionPolicy,
    /// Whether nothing was deleted on purpose.
    pub dry_run: bool,
    /// What protected versions from deletion.
    pub protected: Protected,
    /// How many versions are kept.
    pub kept: usize,
    /// How many versions were deleted (or would be, on a dry run).
    pub deleted: usize,
    /// Stored bytes freed (or that would be).
    pub freed_bytes: u64,
    /// Versions that became protected (pinned, released) while prune ran, and were
    /// therefore not deleted.
    pub spared: Vec<u64>,
    /// Every version, newest first, with its decision.
    pub decisions: Vec<Decision>,
    /// Scheduler tick claims older than a day deleted (or that would be), see
    /// [`crate::claim::sweep_stale`].
    pub claims_swept: usize,
}

/// Parses a keep-within duration such as `30d` or `12h`.
///
/// # Errors
/// `InvalidInput` naming the value.
pub fn parse_duration(s: &str) -> Result<Duration> {
    humantime::parse_duration(s).map_err(|e| {
        Error::invalid(format!(
            "invalid duration {s:?}: {e}; use e.g. 30d, 12h or 2weeks"
        ))
    })
}
