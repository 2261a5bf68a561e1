//! Audit events: one immutable object per backup, release, rollback, restore, prune
//! and pin, saying who did what, when and from where.

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::EnvRef;
use crate::layout;
use crate::notify::{Notice, NoticeActor, NoticeKind};
use crate::store::{Metadata, PutMode};
use crate::vault::Vault;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// A snapshot was taken.
    Backup,
    /// A snapshot was published as the release.
    Release,
    /// The release went back to an earlier one.
    Rollback,
    /// A snapshot was copied from another environment.
    Promote,
    /// A snapshot was pushed to the live target.
    Restore,
    /// Snapshots were deleted by retention.
    Prune,
    /// A snapshot was pinned.
    Pin,
    /// A snapshot was unpinned.
    Unpin,
    /// Encrypted snapshots were re-encrypted to the current age recipients.
    Rekey,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        f.write_str(&s)
    }
}

/// Who and where an action came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// The person or token name.
    pub who: Option<String>,
    /// The front end: `cli`, `api`, `schedule`.
    pub via: String,
    /// The host (CLI, scheduler) or client address (API).
    pub from: Option<String>,
}

impl Actor {
    /// An actor on this machine: `from` is its host name.
    pub fn on_this_host(who: impl Into<String>, via: impl Into<String>) -> Self {
        Self {
            who: Some(who.into()),
            via: via.into(),
            from: hostname(),
        }
    }
}

/// This machine's name, recorded in audit events as where an action came from.
#[must_use]
pub fn hostname() -> Option<String> {
    gethostname::gethostname()
        .into_string()
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub action: Action,
    /// The environment.
    pub env: EnvRef,
    /// Who, through which front end, from where.
    pub actor: Actor,
    /// The snapshot version concerned, if one.
    pub version: Option<u64>,
    /// Action-specific details (labels, counts, targets, outcomes).
    #[serde(default)]
    pub details: serde_json::Value,
}

impl Event {
    /// A new event happening now.
    #[must_use]
    pub fn now(action: Action, env: &EnvRef, actor: &Actor) -> Self {
        Self {
            at: Utc::now(),
            action,
            env: env.clone(),
            actor: actor.clone(),
            version: None,
            details: serde_json::Value::Null,
        }
    }

    /// Sets the version.
    #[must_use]
    pub fn version(mut self, v: u64) -> Self {
        self.version = Some(v);
        self
    }

    /// Sets the details.
    #[must_use]
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

impl Event {
    /// The notice for this event, if its action is one people are told of (pins and
    /// promotions are not).
    #[must_use]
    pub fn notice(&self) -> Option<Notice> {
        let event = self;
        let env = &event.env;
        let v = event.version.map_or_else(String::new, |v| format!(" v{v}"));
        let detail = |key: &str| event.details.get(key).cloned();
        let (kind, message) = match event.action {
            Action::Backup => (
                NoticeKind::SnapshotWritten,
                format!("snapshot{v} of {env} written"),
            ),
            Action::Release => (NoticeKind::Released, format!("{env}{v} released")),
            Action::Rollback => (NoticeKind::RolledBack, format!("{env} rolled back to{v}")),
            Action::Restore => match detail("outcome").as_ref().and_then(|o| o.as_str()) {
                Some("failed") => (
                    NoticeKind::RestoreFailed,
                    format!(
                        "restore of{v} to {env} failed: {}",
                        detail("error")
                            .and_then(|e| e.as_str().map(str::to_string))
                            .unwrap_or_default()
                    ),
                ),
                _ => (NoticeKind::Restored, format!("{env}{v} restored")),
            },
            Action::Prune => {
                let deleted = detail("deleted").and_then(|d| d.as_u64()).unwrap_or(0);
                let failed = detail("failed").and_then(|d| d.as_u64()).unwrap_or(0);
                let tail = if failed > 0 {
                    format!(", {failed} deletions failed")
                } else {
                    String::new()
                };
                (
                    NoticeKind::Pruned,
                    format!("retention deleted {deleted} snapshots of {env}{tail}"),
                )
            }
            Action::Promote | Action::Pin | Action::Unpin | Action::Rekey => return None,
        };
        Some(Notice {
            kind,
            env: env.clone(),
            version: event.version,
            at: event.at,
            actor: NoticeActor::from(&event.actor),
            message,
        })
    }
}

impl From<&Actor> for NoticeActor {
    fn from(a: &Actor) -> Self {
        Self {
            who: a.who.clone(),
            via: a.via.clone(),
            from: a.from.clone(),
        }
    }
}

impl Vault {
    /// Writes an event as an immutable object, and hands its notice (if its action has
    /// one) to the vault's event sink first: the action has happened either way.
    ///
    /// # Errors
    /// Store errors.
    pub async fn record_event(&self, event: &Event) -> Result<()> {
        if let Some(notice) = event.notice() {
            self.notify(notice);
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let key = layout::event_key(&event.env, event.at, &id[..12]);
        let body = serde_json::to_vec(event)
            .map_err(|e| Error::internal(format!("cannot encode event: {e}")))?;
        self.store()
            .put(&key, Bytes::from(body), &Metadata::new(), PutMode::Create)
            .await
            .map(drop)
    }

    /// Writes an event, logging instead of failing: the action it records has already
    /// happened and must not be reported as failed.
    pub async fn record_event_or_log(&self, event: &Event) {
        if let Err(e) = self.record_event(event).await {
            tracing::warn!(env = %event.env, action = %event.action, error = %e.report(),
                "could not record the audit event");
        }
    }

    /// Up to `limit` events of `env`, newest first.
    ///
    /// # Errors
    /// Store errors; `Corrupt` for an unreadable event.
    pub async fn events(&self, env: &EnvRef, limit: usize) -> Result<Vec<Event>> {
        use futures::{StreamExt, TryStreamExt};
        let page = self
            .store()
            .list(&layout::events_prefix(env), None, limit.min(1000))
            .await?;
        futures::stream::iter(page.objects)
            .map(|o| async move {
                let obj = self.store().get(&o.key).await?;
                serde_json::from_slice::<Event>(&obj.bytes)
                    .map_err(|e| Error::corrupt(format!("event {} is unreadable: {e}", o.key)))
            })
            .buffered(16)
            .try_collect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> EnvRef {
        EnvRef::parse("crm", "production").unwrap()
    }

    #[test]
    fn audit_events_become_notices_of_the_matching_kind() {
        let actor = Actor::on_this_host("ana", "cli");
        let null = serde_json::Value::Null;
        let cases = [
            (
                Action::Backup,
                null.clone(),
                Some(NoticeKind::SnapshotWritten),
            ),
            (Action::Release, null.clone(), Some(NoticeKind::Released)),
            (Action::Rollback, null.clone(), Some(NoticeKind::RolledBack)),
            (
                Action::Restore,
                serde_json::json!({"outcome": "pushed"}),
                Some(NoticeKind::Restored),
            ),
            (
                Action::Restore,
                serde_json::json!({"outcome": "failed", "error": "live answered 503"}),
                Some(NoticeKind::RestoreFailed),
            ),
            (
                Action::Prune,
                serde_json::json!({"deleted": 4}),
                Some(NoticeKind::Pruned),
            ),
            (Action::Pin, null.clone(), None),
            (Action::Promote, null, None),
        ];
        for (action, details, kind) in cases {
            let event = Event::now(action, &env(), &actor)
                .version(7)
                .details(details);
            let notice = event.notice();
            assert_eq!(notice.as_ref().map(|n| n.kind), kind, "{action}");
            if let Some(n) = notice {
                assert_eq!(n.version, Some(7));
                assert_eq!(n.actor.who.as_deref(), Some("ana"));
                assert_eq!(n.actor.via, "cli");
                assert!(n.message.contains("crm/production"), "{}", n.message);
            }
        }
        let failed = Event::now(Action::Restore, &env(), &actor)
            .details(serde_json::json!({"outcome": "failed", "error": "live answered 503"}));
        assert!(
            failed
                .notice()
                .unwrap()
                .message
                .contains("live answered 503")
        );
        let pruned =
            Event::now(Action::Prune, &env(), &actor).details(serde_json::json!({"deleted": 4}));
        assert!(pruned.notice().unwrap().message.contains("deleted 4"));
    }
}
