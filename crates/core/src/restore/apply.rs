//! Restoring: save what is live, push, confirm, record what live now holds as the
//! newest snapshot, publish if asked, record the event; and the copy to a file that
//! changes nothing else.

use super::failure::{NoSnapshot, impossible};
use super::{
    PreRestore, Published, Recorded, Recreated, RestoreReport, RestoreRequest, Undo, Verification,
};
use crate::codec;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Action, Actor, Event};
use crate::filter;
use crate::id::EnvRef;
use crate::live::LiveTarget;
use crate::meta::{SnapshotMeta, Trigger};
use crate::release::{ReleaseKind, ReleaseRequest};
use crate::selector::Selector;
use crate::snapshot::{BackupOutcome, BackupRequest};
use crate::vault::Vault;

impl Vault {
    /// Restores a snapshot to `target`, the environment's live configuration: checks
    /// the snapshot, saves what is live first, pushes, reads back, records an event.
    /// See the module documentation for the steps and what each failure leaves behind.
    ///
    /// # Errors
    /// - `NotFound` (nearest named) or `Corrupt` for the snapshot: nothing written;
    /// - `PreconditionFailed` if live is missing or can't be snapshotted and
    ///   `allow_missing_live` is off: nothing written;
    /// - store errors while saving the pre-restore snapshot: nothing pushed;
    /// - the target's error if the push fails, and `Corrupt` if what is read back is
    ///   not what was pushed: the message says what live holds now and the command that
    ///   undoes the restore.
    pub async fn restore(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        req: RestoreRequest,
    ) -> Result<RestoreReport> {
        let source = &req.source;
        let (snapshot, raw) = self.checked_snapshot(env, source).await.map_err(|e| {
            e.context(format!(
                "refusing to restore {source} of {env} (nothing was pushed)"
            ))
        })?;
        let v = snapshot.version;
        let schema_overridden = match self
            .options()
            .schemas
            .check_blocking(env, raw.clone())
            .await?
        {
            Some(found) if !req.skip_schema_check => {
                return Err(found.refusal(
                    &format!("to restore v{v} of {env} (nothing was pushed)"),
                    env,
                ));
            }
            found => found,
        };
        let where_ = target.describe();

        // 2. Save what is live now (reading it again while it fails).
        let pre_restore = match self.read_live_retrying(target, req.live_retry).await {
            Ok(current) if codec::sha256_hex(&current) == snapshot.sha256 => PreRestore::NotNeeded,
            // Equal but for ignored paths (a version counter): nothing worth pushing.
            Ok(current)
                if filter::equal_ignoring(target.filters(), current.clone(), raw.clone())
                    .await
                    .unwrap_or(false) =>
            {
                PreRestore::NotNeeded
            }
            Ok(current) if req.save_live_to.is_some() => {
                self.save_live_copy(env, &req, current).await?
            }
            Ok(current) => {
                let mut backup = BackupRequest::new(current, Trigger::PreRestore);
                backup.known_latest = req.latest.clone();
                backup.filters = target.filters();
                backup.actor = req.actor.clone();
                backup.source = Some(where_.clone());
                backup.message = Some(format!("live configuration before restoring v{v}"));
                match self.backup(env, backup).await {
                    Ok(BackupOutcome::Created(m)) => PreRestore::Saved { snapshot: m },
                    Ok(BackupOutcome::Unchanged(m)) => PreRestore::Reused { snapshot: m },
                    Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::TooLarge) => {
                        impossible(env, &req, &where_, NoSnapshot::Unsnapshottable(e))?
                    }
                    Err(e) => {
                        return Err(e
                            .context(format!(
                                "cannot save the live configuration of {env} before \
                                 restoring; nothing was pushed"
                            ))
                            .with_next(super::save_copy::store_unwritable_hint()));
                    }
                }
            }
            Err(e) if e.is_live_missing() => {
                impossible(env, &req, &where_, NoSnapshot::Missing(e.report()))?
            }
            Err(e) => impossible(env, &req, &where_, NoSnapshot::Unreadable(e))?,
        };
        let mut undo: Vec<Undo> = pre_restore
            .snapshot()
            .map(|m| Undo::Restore { version: m.version })
            .into_iter()
            .collect();

        // 3. Push and read back, unless live already holds the snapshot.
        let pushed = pre_restore != PreRestore::NotNeeded;
        let (verified, live_now, created) = if pushed {
            self.push_and_confirm(env, target, &snapshot, raw, &pre_restore, &req)
                .await?
        } else {
            (Verification::NotPushed, raw, None)
        };
        // Created anew (the platform had deleted it): it is somewhere else now.
        let recreated = created.map(|c| Recreated {
            id: c.id,
            target: c.target.describe(),
            config_change: c.change,
        });
        let where_ = recreated.as_ref().map_or(where_, |r| r.target.clone());

        // 4. What live holds now becomes the newest snapshot; the restore stands
        //    whatever happens here.
        let recorded = if matches!(pre_restore, PreRestore::SavedElsewhere { .. }) {
            // The store can't be written (that is why live was saved to a file).
            Recorded::NotRecorded
        } else {
            self.record_restored(env, &snapshot, live_now, &where_, &req, &pre_restore)
                .await
        };

        // 5. Publish, if asked; the restore stands whatever happens here.
        let (mut published, mut publish_error) = (None, None);
        if req.publish {
            match self.publish_restored(env, &snapshot, &req).await {
                Ok(p) => {
                    if p.changed && p.previous_version.is_some() {
                        undo.push(Undo::Rollback);
                    }
                    published = Some(p);
                }
                Err(e) => {
                    publish_error = Some(e.with_hint("the restore itself succeeded").report());
                }
            }
        }

        let report = RestoreReport {
            env: env.clone(),
            restored: snapshot,
            target: where_,
            pushed,
            pre_restore,
            verified,
            published,
            publish_error,
            recorded,
            undo,
            recreated,
        };
        let event = Event::now(Action::Restore, env, &req.actor)
            .version(v)
            .details(serde_json::json!({
                "outcome": if pushed { "restored" } else { "already-live" },
                "source": req.source,
                "target": report.target,
                "sha256": report.restored.sha256,
                "pre_restore": report.pre_restore,
                "override_unreadable_live": matches!(
                    report.pre_restore,
                    PreRestore::Impossible { overridden_unreadable: true, .. }
                ),
                "verified": report.verified,
                "published": report.published,
                "publish_error": report.publish_error,
                "recorded": report.recorded,
                "schema_check_skipped": schema_overridden.is_some(),
                "schema_violations": schema_overridden,
                "message": req.message,
                "undo": report.undo,
                "recreated": report.recreated,
            }));
        self.record_event_or_log(&event).await;
        tracing::info!(%env, version = v, target = %report.target, pushed, "restored");
        Ok(report)
    }

    /// Saves what live holds after a restore (`live_now`, as read back) as the newest
    /// snapshot, trigger `restore`, unless the latest snapshot already holds it. A
    /// failure is reported, not returned: live is restored and verified, and the
    /// snapshots written before (the pre-restore one included) are untouched.
    ///
    /// The latest is what the pre-restore step found or wrote (no second listing): the
    /// version after it is claimed with create-only, so a snapshot written meanwhile
    /// makes the claim fail and the latest is read then. Equality with a latest that
    /// came from the caller ([`RestoreRequest::latest`], possibly stale) is confirmed
    /// with a listing before nothing is recorded.
    async fn record_restored(
        &self,
        env: &EnvRef,
        snapshot: &SnapshotMeta,
        live_now: bytes::Bytes,
        where_: &str,
        req: &RestoreRequest,
        pre_restore: &PreRestore,
    ) -> Recorded {
        let v = snapshot.version;
        let mut backup = BackupRequest::new(live_now, Trigger::Restore);
        backup.actor = req.actor.clone();
        backup.source = Some(where_.to_string());
        backup.message = Some(format!("restored v{v}"));
        backup.restored_from = Some(v);
        backup.known_latest = pre_restore.snapshot().cloned();
        let mut outcome = self.backup(env, backup.clone()).await;
        if matches!(outcome, Ok(BackupOutcome::Unchanged(_)))
            && backup.known_latest.is_some()
            && req.latest.is_some()
        {
            backup.known_latest = None;
            outcome = self.backup(env, backup).await;
        }
        match outcome {
            Ok(BackupOutcome::Created(m)) => Recorded::Saved { snapshot: m },
            Ok(BackupOutcome::Unchanged(m)) => Recorded::Latest { snapshot: m },
            Err(e) => {
                tracing::warn!(%env, version = v, error = %e.report(),
                    "restored, but cannot record the restored configuration as a snapshot");
                Recorded::Failed {
                    error: e
                        .context(format!(
                            "recording what {env} holds after restoring v{v} as its newest snapshot"
                        ))
                        .report(),
                }
            }
        }
    }

    /// Publishes the restored snapshot as the release (`publish`), unless it already
    /// is the release.
    async fn publish_restored(
        &self,
        env: &EnvRef,
        snapshot: &SnapshotMeta,
        req: &RestoreRequest,
    ) -> Result<Published> {
        let current = self.current_release(env).await?;
        if let Some(cur) = &current
            && cur.release.version == snapshot.version
        {
            return Ok(Published {
                label: cur.release.label.to_string(),
                version: cur.release.version,
                changed: false,
                previous_version: Some(cur.release.version),
            });
        }
        let mut release = ReleaseRequest::new(snapshot.version, req.actor.clone());
        release.kind = ReleaseKind::Restore;
        release.skip_schema_check = req.skip_schema_check;
        release.notes = Some(
            req.message
                .clone()
                .unwrap_or_else(|| format!("restored v{}", snapshot.version)),
        );
        let pointer = self.release(env, release).await?;
        Ok(Published {
            label: pointer.release.label.to_string(),
            version: pointer.release.version,
            changed: true,
            previous_version: current.map(|c| c.release.version),
        })
    }

    /// Writes a snapshot to `target` as a copy: no pre-restore snapshot, no release;
    /// checked before and read back after, like a restore. Used for `restore --to FILE`.
    ///
    /// # Errors
    /// As [`Vault::plan_restore`] for the snapshot; the target's errors; `Corrupt` if
    /// what is read back differs.
    pub async fn restore_copy(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        source: &Selector,
        actor: &Actor,
    ) -> Result<RestoreReport> {
        let (snapshot, raw) = self.checked_snapshot(env, source).await.map_err(|e| {
            e.context(format!(
                "refusing to restore {source} of {env} (nothing was written)"
            ))
        })?;
        let where_ = target.describe();
        target.write(raw).await.map_err(|e| {
            e.context(format!(
                "writing v{} of {env} to {where_}",
                snapshot.version
            ))
        })?;
        let back = target.read(self.options().max_size).await?;
        if codec::sha256_hex(&back) != snapshot.sha256 {
            return Err(Error::corrupt(format!(
                "wrote v{} of {env} to {where_}, but reading it back gives other bytes",
                snapshot.version
            )));
        }
        let event = Event::now(Action::Restore, env, actor)
            .version(snapshot.version)
            .details(serde_json::json!({
                "outcome": "copied",
                "source": source,
                "target": where_,
                "sha256": snapshot.sha256,
            }));
        self.record_event_or_log(&event).await;
        Ok(RestoreReport {
            env: env.clone(),
            restored: snapshot,
            target: where_,
            pushed: true,
            pre_restore: PreRestore::NotNeeded,
            verified: Verification::Sha256,
            published: None,
            publish_error: None,
            recorded: Recorded::NotRecorded,
            undo: Vec::new(),
            recreated: None,
        })
    }
}
