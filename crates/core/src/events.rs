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
        self.events_page(env, None, limit)
            .await
            .map(|(events, _)| events)
    }

    /// Up to `limit` events of `env`, newest first, from after the cursor `after` (the
    /// previous page's); with the cursor of the next page when there is one. A cursor
    /// is the name of an event object without `.json` (`0000000001234-abcdef012345`).
    ///
    /// # Errors
    /// `InvalidInput` for a cursor that is no event's name; store errors; `Corrupt` for
    /// an unreadable event.
    pub async fn events_page(
        &self,
        env: &EnvRef,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<Event>, Option<String>)> {
        use futures::{StreamExt, TryStreamExt};
        let prefix = layout::events_prefix(env);
        if let Some(a) = after
            && !is_event_cursor(a)
        {
            return Err(Error::invalid(format!(
                "after={a:?} is not an events cursor: pass the `after` of a `Link: rel=\"next\"` \
                 header as it is"
            )));
        }
        let start = after.map(|a| format!("{prefix}{a}.json"));
        let page = self
            .store()
            .list(&prefix, start.as_deref(), limit.clamp(1, 1000))
            .await?;
        let next = page
            .truncated
            .then(|| page.objects.last())
            .flatten()
            .and_then(|o| o.key.strip_prefix(&prefix))
            .and_then(|name| name.strip_suffix(".json"))
            .map(str::to_string);
        let events = futures::stream::iter(page.objects)
            .map(|o| async move {
                let obj = self.store().get(&o.key).await?;
                serde_json::from_slice::<Event>(&obj.bytes)
                    .map_err(|e| Error::corrupt(format!("event {} is unreadable: {e}", o.key)))
            })
            .buffered(16)
            .try_collect()
            .await?;
        Ok((events, next))
    }
}

/// Whether `s` is an event object's name without `.json`: 13 digits, `-`, an id of 1
/// to 32 lowercase hex digits.
#[must_use]
pub fn is_event_cursor(s: &str) -> bool {
    s.split_once('-').is_some_and(|(ms, id)| {
        ms.len() == 13
            && ms.bytes().all(|b| b.is_ascii_digit())
            && (1..=32).contains(&id.len())
            && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
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

    #[test]
    fn a_cursor_is_an_event_name() {
        let key = layout::event_key(&env(), Utc::now(), "0123456789ab");
        let name = key
            .strip_prefix(&layout::events_prefix(&env()))
            .and_then(|k| k.strip_suffix(".json"))
            .unwrap();
        assert!(is_event_cursor(name), "{name}");
        for bad in [
            "",
            "1-a",
            "0000000000001-",
            "0000000000001-G",
            "../x",
            "0000000000001",
        ] {
            assert!(!is_event_cursor(bad), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn pages_of_events_follow_each_other_newest_first() {
        let (_dir, _store, vault, env) = crate::testutil::local_vault();
        let actor = Actor::on_this_host("ana", "cli");
        let t0 = Utc::now();
        for v in 1..=5_u64 {
            let mut e = Event::now(Action::Backup, &env, &actor).version(v);
            e.at = t0 + chrono::Duration::milliseconds(i64::try_from(v).unwrap());
            vault.record_event(&e).await.unwrap();
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, next) = vault.events_page(&env, after.as_deref(), 2).await.unwrap();
            assert!(page.len() <= 2);
            seen.extend(page.iter().map(|e| e.version.unwrap()));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, [5, 4, 3, 2, 1]);
        let err = vault.events_page(&env, Some("../x"), 2).await.unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::InvalidInput, "{err}");
    }
}
