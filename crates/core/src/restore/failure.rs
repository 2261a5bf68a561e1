//! A failed push: what live holds afterwards, the failed-restore event, and the
//! refusal when no pre-restore snapshot is possible.

use bytes::Bytes;

use super::{LiveState, PreRestore, RestoreRequest, Verification, recreate};
use crate::codec;
use crate::error::{Error, ErrorKind, Hint, Result, Step};
use crate::events::{Action, Event};
use crate::filter;
use crate::id::EnvRef;
use crate::live::LiveTarget;
use crate::live::http::Created;
use crate::meta::SnapshotMeta;
use crate::vault::Vault;

impl Vault {
    /// Writes the snapshot to `target`, reads it back and compares. On failure, reads
    /// live again to say what state it is in, records a failed-restore event, and
    /// returns an error that names the state, with the restore that undoes it as a hint.
    /// On success, also returns what was read back: what live holds now.
    pub(super) async fn push_and_confirm(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        snapshot: &SnapshotMeta,
        raw: Bytes,
        pre_restore: &PreRestore,
        req: &RestoreRequest,
    ) -> Result<(Verification, Bytes, Option<Created>)> {
        let v = snapshot.version;
        let mut created = None;
        if let Err(e) = target.write(raw.clone()).await {
            if e.is_live_missing() && req.create_if_missing && target.creates().is_some() {
                created = Some(
                    self.create_missing(env, target, snapshot, raw.clone(), pre_restore, req, e)
                        .await?,
                );
            } else {
                let state = self
                    .state_after_failure(env, target, snapshot, pre_restore)
                    .await;
                self.record_failure(env, snapshot, pre_restore, req, "push", &e, &state)
                    .await;
                let message = format!(
                    "restoring v{v} of {env}: pushing it to {} failed ({}); {}",
                    target.describe(),
                    e.report(),
                    state.text
                );
                let missing = e.is_live_missing();
                let err = state.error(e.kind(), message).with_source(e);
                return Err(if missing {
                    recreate::explain_missing(env, target, err)
                } else {
                    err
                });
            }
        }
        // A new object is read back where it now is.
        let target = created.as_ref().map_or(target, |c| c.target.as_ref());
        let confirmed = self
            .confirm(env, target, snapshot, raw, pre_restore, req)
            .await;
        match confirmed {
            Ok((verified, back)) => Ok((verified, back, created)),
            Err(e) => Err(match &created {
                Some(c) => recreate::created_but(e, c),
                None => e,
            }),
        }
    }

    /// Reads back what was pushed and compares it with the snapshot.
    async fn confirm(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        snapshot: &SnapshotMeta,
        raw: Bytes,
        pre_restore: &PreRestore,
        req: &RestoreRequest,
    ) -> Result<(Verification, Bytes)> {
        let v = snapshot.version;
        let where_ = target.describe();
        let back = match target.read(self.options().max_size).await {
            Ok(back) => back,
            Err(e) => {
                let state = LiveAfter {
                    text: format!(
                        "v{v} was pushed but can't be read back to confirm it ({}): live \
                         may hold v{v} or be partially written; {}",
                        e.report(),
                        undo_text(pre_restore)
                    ),
                    code: "unknown",
                    undo: undo_over_partial(env, pre_restore),
                };
                self.record_failure(env, snapshot, pre_restore, req, "read-back", &e, &state)
                    .await;
                return Err(state.error(e.kind(), state.text.clone()).with_source(e));
            }
        };
        if codec::sha256_hex(&back) == snapshot.sha256 {
            return Ok((Verification::Sha256, back));
        }
        let (expected, live_now) = (raw, back.clone());
        let (back_, expected_) = (back.clone(), expected.clone());
        let equal = tokio::task::spawn_blocking(move || {
            match (
                serde_json::from_slice::<serde_json::Value>(&back),
                serde_json::from_slice::<serde_json::Value>(&expected),
            ) {
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            }
        })
        .await
        .unwrap_or(false);
        if equal {
            return Ok((Verification::EquivalentJson, live_now));
        }
        if target.holds_written(&expected_, &back_) {
            return Ok((Verification::OptionalPartsKept, live_now));
        }
        if filter::equal_ignoring(target.filters(), back_, expected_)
            .await
            .unwrap_or(false)
        {
            return Ok((Verification::EqualIgnoring, live_now));
        }
        let state = LiveAfter {
            text: format!(
                "after pushing v{v} to {where_}, live holds something else (neither the \
                 same bytes nor the same JSON): the target changed or refused part of it; \
                 {}",
                undo_text(pre_restore)
            ),
            code: "other",
            undo: undo_hint(env, pre_restore),
        };
        let e = state.error(crate::error::ErrorKind::Corrupt, state.text.clone());
        self.record_failure(env, snapshot, pre_restore, req, "verify", &e, &state)
            .await;
        Err(e)
    }

    /// Reads live after a failed push and says what it holds.
    async fn state_after_failure(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        snapshot: &SnapshotMeta,
        pre_restore: &PreRestore,
    ) -> LiveAfter {
        let v = snapshot.version;
        let before = pre_restore.snapshot();
        match self.read_live(target).await.0 {
            LiveState::Present { sha256, .. } if before.is_some_and(|b| b.sha256 == sha256) => {
                LiveAfter {
                    text: format!(
                        "live is unchanged: it still holds what it held before (saved as \
                         v{}); nothing to undo",
                        before.map_or(0, |b| b.version)
                    ),
                    code: "unchanged",
                    undo: None,
                }
            }
            LiveState::Present { sha256, .. } if sha256 == snapshot.sha256 => LiveAfter {
                text: format!(
                    "live holds v{v} nonetheless (the write took effect); {}",
                    undo_text(pre_restore)
                ),
                code: "restored",
                undo: undo_hint(env, pre_restore),
            },
            LiveState::Present { sha256, .. } => LiveAfter {
                text: format!(
                    "live now holds something else (sha256 {}): it may be partially \
                     written; {}",
                    &sha256[..12],
                    undo_text(pre_restore)
                ),
                code: "partial",
                undo: undo_over_partial(env, pre_restore),
            },
            LiveState::Missing { .. } if before.is_none() => LiveAfter {
                text: "live is still missing, as it was before".into(),
                code: "unchanged",
                undo: None,
            },
            LiveState::Missing { .. } => LiveAfter {
                text: format!("live is now missing; {}", undo_text(pre_restore)),
                code: "missing",
                undo: undo_hint(env, pre_restore),
            },
            LiveState::Unreadable { reason, .. } => LiveAfter {
                text: format!(
                    "live can't be read back ({reason}): it may be partially written; {}",
                    undo_text(pre_restore)
                ),
                code: "unknown",
                undo: undo_over_partial(env, pre_restore),
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn record_failure(
        &self,
        env: &EnvRef,
        snapshot: &SnapshotMeta,
        pre_restore: &PreRestore,
        req: &RestoreRequest,
        stage: &str,
        error: &Error,
        state: &LiveAfter,
    ) {
        let event = Event::now(Action::Restore, env, &req.actor)
            .version(snapshot.version)
            .details(serde_json::json!({
                "outcome": "failed",
                "stage": stage,
                "error": error.report(),
                "live_after": state.code,
                "live_state": state.text,
                "source": req.source,
                "pre_restore": pre_restore,
                "message": req.message,
            }));
        self.record_event_or_log(&event).await;
    }
}

/// What live holds after a failure, in words and as a code for the event.
pub(super) struct LiveAfter {
    pub(super) text: String,
    pub(super) code: &'static str,
    /// The restore that puts back what was live before, when the state calls for it.
    pub(super) undo: Option<Hint>,
}

impl LiveAfter {
    /// The error for this state: `kind`, the message, the undo as a hint.
    pub(super) fn error(&self, kind: crate::error::ErrorKind, message: String) -> Error {
        let e = Error::new(kind, message);
        match &self.undo {
            Some(hint) => e.with_next(hint.clone()),
            None => e,
        }
    }
}

/// Where what was live before is kept, or why there is nothing to go back to.
fn undo_text(pre_restore: &PreRestore) -> String {
    if let PreRestore::SavedElsewhere { target, .. } = pre_restore {
        return format!("what was live before is saved in {target}");
    }
    match pre_restore.snapshot() {
        Some(m) => format!("what was live before is saved as v{}", m.version),
        None => "live was missing or unreadable before the restore, so there is no earlier \
                 state to go back to"
            .into(),
    }
}

/// The undo when live may hold a partial write: that can't be read as JSON, so the
/// undo must overwrite it unsaved, which needs the explicit override.
fn undo_over_partial(env: &EnvRef, pre_restore: &PreRestore) -> Option<Hint> {
    pre_restore.snapshot().map(|m| {
        Hint::steps(
            "to put back what was live before (a partial write can't be saved first, so \
             override)",
            [
                Step::Restore(env.into(), m.version),
                Step::OverrideUnreadableLive,
            ],
        )
    })
}

/// The restore that puts back what was live before, if it was saved.
fn undo_hint(env: &EnvRef, pre_restore: &PreRestore) -> Option<Hint> {
    pre_restore.snapshot().map(|m| {
        Hint::steps(
            "to put back what was live before",
            [Step::Restore(env.into(), m.version)],
        )
    })
}

/// Why no pre-restore snapshot is possible.
pub(super) enum NoSnapshot {
    /// Live holds nothing (a 404 or 410, no file, no object).
    Missing(String),
    /// Live can't be read, after the retries; the read's error.
    Unreadable(Error),
    /// Live holds something that can't be snapshotted (not JSON, too large).
    Unsnapshottable(Error),
}

/// The decision when no pre-restore snapshot is possible: a missing live goes on with
/// `allow_missing_live`, else `PreconditionFailed`; an unreadable or unsnapshottable
/// one only with `allow_unreadable_live`, else the read's (or the check's) error kind,
/// so a 503 stays "unavailable". Either refusal pushes nothing.
pub(super) fn impossible(
    env: &EnvRef,
    req: &RestoreRequest,
    target: &str,
    why: NoSnapshot,
) -> Result<PreRestore> {
    let whose = format!("the live configuration of {env} at {target}");
    match why {
        NoSnapshot::Missing(reason) => {
            let reason = format!("{whose}: it is missing ({reason})");
            if req.allow_missing_live || req.create_if_missing {
                tracing::info!(%env, %reason, "restoring without a pre-restore snapshot");
                return Ok(PreRestore::Impossible {
                    reason,
                    overridden_unreadable: false,
                });
            }
            Err(Error::precondition(format!(
                "{reason}; no pre-restore snapshot is possible, so nothing was pushed"
            ))
            .with_next(Hint::steps("confirm to restore anyway", [Step::Confirm])))
        }
        NoSnapshot::Unreadable(e) | NoSnapshot::Unsnapshottable(e) => {
            let tries = req.live_retry.attempts.max(1);
            let what = if e.kind() == ErrorKind::InvalidInput || e.kind() == ErrorKind::TooLarge {
                format!("it can't be snapshotted: {}", e.report())
            } else if tries > 1 {
                format!("it can't be read ({} reads): {}", tries, e.report())
            } else {
                format!("it can't be read: {}", e.report())
            };
            let reason = format!("{whose}: {what}");
            if req.allow_unreadable_live {
                tracing::warn!(%env, %reason,
                    "restoring over an unreadable live configuration: the override was given");
                return Ok(PreRestore::Impossible {
                    reason,
                    overridden_unreadable: true,
                });
            }
            // A 503 stays "unavailable" (retry later), a 401 a config error; content
            // that can't be snapshotted is the restore's precondition, not bad input.
            let kind = match e.kind() {
                ErrorKind::InvalidInput | ErrorKind::TooLarge => ErrorKind::PreconditionFailed,
                ErrorKind::NotFound => ErrorKind::Unavailable,
                k => k,
            };
            Err(Error::new(
                kind,
                format!(
                    "refusing to restore: {reason}; what it holds can't be saved first, so \
                     nothing was pushed and live is unchanged"
                ),
            )
            .with_next(Hint::steps(
                "retry when live answers; to overwrite it unsaved anyway, override explicitly",
                [Step::OverrideUnreadableLive],
            )))
        }
    }
}
