//! Notifications: what happened that a person may want to hear about, and the sink a
//! [`Vault`](crate::vault::Vault) hands it to.
//!
//! This module sits beside [`Vault`](crate::vault::Vault) (layer 2); the mapping from
//! audit events is `Event::notice` in `events.rs`.
//!
//! The vault turns each audit event it records into a [`Notice`] (a snapshot written,
//! a release, a rollback, a restore, a prune); the front ends add the failures they see
//! (a backup that failed, scheduled backups failing several times in a row, a problem
//! `verify` found). Delivery (webhooks, retries, signatures) is the sink's business: a
//! sink queues and returns at once, so an operation is never slowed or failed by it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::id::EnvRef;

/// The kinds of notice; a webhook's `events` filter names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::Display)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum NoticeKind {
    /// A backup wrote a new snapshot.
    SnapshotWritten,
    /// A backup failed (any front end).
    BackupFailed,
    /// A scheduled backup failed `notify.failures_in_a_row` times in a row.
    ScheduledBackupFailing,
    /// A snapshot was published as the release.
    Released,
    /// The release went back to an earlier one.
    RolledBack,
    /// A snapshot was pushed to the live target (or saved to a file).
    Restored,
    /// A restore failed.
    RestoreFailed,
    /// `verify` found a problem.
    VerifyProblem,
    /// Retention deleted snapshots.
    Pruned,
}

impl NoticeKind {
    /// Every kind, in the documented order.
    pub const ALL: [Self; 9] = [
        Self::SnapshotWritten,
        Self::BackupFailed,
        Self::ScheduledBackupFailing,
        Self::Released,
        Self::RolledBack,
        Self::Restored,
        Self::RestoreFailed,
        Self::VerifyProblem,
        Self::Pruned,
    ];
}

/// Who did it, through which front end, from where: an audit event's actor (a name,
/// never a token).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeActor {
    /// The person or token name.
    pub who: Option<String>,
    /// The front end: `cli`, `api`, `schedule`.
    pub via: String,
    /// The host (CLI, scheduler) or client address (API).
    pub from: Option<String>,
}

/// One thing to notify: what, where, who, and a sentence for a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// What happened.
    pub kind: NoticeKind,
    /// The environment.
    pub env: EnvRef,
    /// The snapshot version concerned, if one.
    pub version: Option<u64>,
    /// When.
    pub at: DateTime<Utc>,
    /// Who, through which front end, from where (an audit event's actor).
    pub actor: NoticeActor,
    /// One sentence for a person (no secrets: error reports name files and variables,
    /// never their values).
    pub message: String,
}

impl Notice {
    /// A notice happening now.
    #[must_use]
    pub fn now(
        kind: NoticeKind,
        env: &EnvRef,
        actor: impl Into<NoticeActor>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            env: env.clone(),
            version: None,
            at: Utc::now(),
            actor: actor.into(),
            message: message.into(),
        }
    }

    /// A backup of `env` that failed with `error`.
    #[must_use]
    pub fn backup_failed(env: &EnvRef, actor: impl Into<NoticeActor>, error: &Error) -> Self {
        Self::now(
            NoticeKind::BackupFailed,
            env,
            actor,
            format!("backup of {env} failed: {}", error.report()),
        )
    }
}

/// Where notices go. [`EventSink::notify`] must return at once (queue, never wait on
/// the network): it runs inside the operation being reported.
pub trait EventSink: Send + Sync + fmt::Debug {
    /// Takes a notice for delivery.
    fn notify(&self, notice: Notice);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_kebab_case_in_config_and_payloads() {
        for kind in NoticeKind::ALL {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json.as_str().unwrap(), kind.to_string());
        }
        assert_eq!(
            NoticeKind::ScheduledBackupFailing.to_string(),
            "scheduled-backup-failing"
        );
    }
}
