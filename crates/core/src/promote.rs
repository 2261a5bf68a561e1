//! Promotion: copies a snapshot of one environment into another as a new snapshot,
//! and may publish it there.

use serde::Serialize;

use crate::error::{Error, Hint, Result, Step};
use crate::events::{Action, Actor, Event};
use crate::id::{AppId, EnvId, EnvRef, Label};
use crate::meta::{SnapshotMeta, Trigger};
use crate::release::{ReleaseKind, ReleasePointer, ReleaseRequest, check_if_match, check_notes};
use crate::selector::Selector;
use crate::snapshot::{BackupOutcome, BackupRequest};
use crate::vault::Vault;

/// What to copy from one environment into another.
#[derive(Debug, Clone)]
pub struct PromoteRequest {
    /// The source snapshot; default: the source's release, else its latest snapshot.
    pub version: Option<Selector>,
    /// Also publish the copy as the target's release.
    pub release: bool,
    /// The label of that release (default: the target's next number).
    pub label: Option<Label>,
    /// Release notes.
    pub notes: Option<String>,
    /// The copy's snapshot message (default: says where it came from).
    pub message: Option<String>,
    /// Release only if the target's pointer etag is still this one.
    pub if_match: Option<String>,
    /// Write a new snapshot even if the target's latest has the same content.
    pub force: bool,
    /// Who promotes, through which front end.
    pub actor: Actor,
    /// Copy (and release) even if the snapshot fails the target's JSON Schema
    /// (recorded in the audit event).
    pub skip_schema_check: bool,
}

impl PromoteRequest {
    /// A copy of the default source snapshot, not released.
    #[must_use]
    pub fn new(actor: Actor) -> Self {
        Self {
            version: None,
            release: false,
            label: None,
            notes: None,
            message: None,
            if_match: None,
            force: false,
            actor,
            skip_schema_check: false,
        }
    }
}

/// What a promotion did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PromoteOutcome {
    /// The source snapshot that was copied.
    pub source: SnapshotMeta,
    /// The snapshot in the target (new, or the unchanged latest).
    pub snapshot: BackupOutcome,
    /// The target's new release, when asked for.
    pub release: Option<ReleasePointer>,
}

impl Vault {
    /// Copies a snapshot of `app`/`from` into `app`/`to` as a new snapshot (trigger
    /// `promote`), and with `req.release` publishes it there.
    ///
    /// The copy goes through [`Vault::backup`]: same version claim, same dedup (an
    /// unchanged target writes nothing) and same metadata rules.
    ///
    /// # Errors
    /// `InvalidInput` if `from` and `to` are the same; `NotFound` if the source has no
    /// such snapshot; `AlreadyExists`/`PreconditionFailed` for the release (its label and
    /// `if_match` are checked before the copy, but the release can still lose a race
    /// after it: the error then names the snapshot written); `InvalidInput` if the
    /// snapshot fails the target's JSON Schema and `skip_schema_check` is off (nothing
    /// is written); errors of `backup`.
    pub async fn promote(
        &self,
        app: &AppId,
        from: &EnvId,
        to: &EnvId,
        req: PromoteRequest,
    ) -> Result<PromoteOutcome> {
        if from == to {
            return Err(Error::invalid(format!(
                "cannot promote {app}/{from} into itself; name another environment"
            )));
        }
        check_notes(req.notes.as_deref())?;
        let src = EnvRef {
            app: app.clone(),
            env: from.clone(),
        };
        let dst = EnvRef {
            app: app.clone(),
            env: to.clone(),
        };
        let source = match &req.version {
            Some(selector) => self.resolve(&src, selector).await?,
            None => match self.current_release(&src).await? {
                Some(p) => self.snapshot_meta(&src, p.release.version).await?,
                None => self.resolve(&src, &Selector::Latest).await?,
            },
        };
        if req.release {
            // Fail before copying when the release is bound to fail.
            let current = self.current_release(&dst).await?;
            check_if_match(&dst, req.if_match.as_deref(), current.as_ref())?;
            if let Some(label) = &req.label {
                let cur_label = current.as_ref().map(|c| &c.release.label);
                self.check_label_free(&dst, label, cur_label).await?;
            }
        }
        let (_, raw) = self.get(&src, source.version).await?;
        let schema_overridden = match self
            .options()
            .schemas
            .check_blocking(&dst, raw.clone())
            .await?
        {
            Some(v) if !req.skip_schema_check => {
                return Err(v.refusal(
                    &format!(
                        "to promote {src} v{} into {dst} (nothing was written)",
                        source.version
                    ),
                    &dst,
                ));
            }
            found => found,
        };
        let mut backup = BackupRequest::new(raw, Trigger::Promote);
        backup.actor = req.actor.clone();
        backup.source = Some(format!("promote:{src}@v{}", source.version));
        backup.message = Some(
            req.message
                .clone()
                .unwrap_or_else(|| format!("promoted from {src} v{}", source.version)),
        );
        backup.force = req.force;
        let snapshot = self.backup(&dst, backup).await?;
        let version = snapshot.snapshot().version;
        let release = if req.release {
            let rreq = ReleaseRequest {
                version,
                label: req.label.clone(),
                notes: req.notes.clone(),
                if_match: req.if_match.clone(),
                actor: req.actor.clone(),
                kind: ReleaseKind::Promote,
                skip_schema_check: req.skip_schema_check,
            };
            let pointer = self.release(&dst, rreq).await.map_err(|e| {
                e.context(format!(
                    "snapshot v{version} of {dst} holds the copy of {src} v{}, but releasing it \
                     failed",
                    source.version
                ))
                .with_next(Hint::steps(
                    "release it",
                    [Step::Release((&dst).into(), Some(version))],
                ))
            })?;
            Some(pointer)
        } else {
            None
        };
        let event = Event::now(Action::Promote, &dst, &req.actor)
            .version(version)
            .details(serde_json::json!({
                "from": src.to_string(),
                "from_version": source.version,
                "created": matches!(snapshot, BackupOutcome::Created(_)),
                "release": release.as_ref().map(|p| p.release.reference()),
                "schema_check_skipped": schema_overridden.is_some(),
                "schema_violations": schema_overridden,
            }));
        self.record_event_or_log(&event).await;
        Ok(PromoteOutcome {
            source,
            snapshot,
            release,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::tests::*;

    fn staging(f: &Fixture) -> EnvRef {
        EnvRef::parse(f.env.app.as_str(), "staging").unwrap()
    }

    #[tokio::test]
    async fn promote_copies_the_release_by_default() {
        let f = fixture().await;
        let src = staging(&f);
        // Source: v1 and v2; v1 is released, so it is what gets copied.
        for raw in &FIXTURES[..2] {
            f.vault
                .backup(&src, BackupRequest::new(*raw, Trigger::Manual))
                .await
                .unwrap();
        }
        f.vault.release(&src, req(1)).await.unwrap();
        let out = f
            .vault
            .promote(
                &f.env.app,
                &src.env,
                &f.env.env,
                PromoteRequest::new(actor()),
            )
            .await
            .unwrap();
        assert_eq!(out.source.version, 1);
        assert!(out.release.is_none());
        let BackupOutcome::Created(meta) = &out.snapshot else {
            panic!("expected a new snapshot, got {:?}", out.snapshot);
        };
        assert_eq!(meta.version, 4);
        assert_eq!(meta.trigger, Trigger::Promote);
        assert_eq!(meta.source.as_deref(), Some("promote:crm/staging@v1"));
        assert_eq!(meta.author.as_deref(), Some("ada"));
        let (_, raw) = f.vault.get(&f.env, 4).await.unwrap();
        assert_eq!(&raw[..], FIXTURES[0]);
        assert!(f.vault.current_release(&f.env).await.unwrap().is_none());

        // The same content again writes nothing.
        let again = f
            .vault
            .promote(
                &f.env.app,
                &src.env,
                &f.env.env,
                PromoteRequest::new(actor()),
            )
            .await
            .unwrap();
        assert!(matches!(again.snapshot, BackupOutcome::Unchanged(ref m) if m.version == 4));
        let events = f.vault.events(&f.env, 50).await.unwrap();
        assert_eq!(
            events
                .iter()
                .filter(|e| e.action == Action::Promote)
                .count(),
            2
        );
    }

    #[tokio::test]
    async fn promote_with_release() {
        let f = fixture().await;
        let src = staging(&f);
        for raw in FIXTURES.iter().rev() {
            f.vault
                .backup(&src, BackupRequest::new(*raw, Trigger::Manual))
                .await
                .unwrap();
        }
        f.vault.release(&f.env, labelled(3, "1.0.0")).await.unwrap();
        // No release in staging: its latest (v3, the node-red flow) is copied.
        let out = f
            .vault
            .promote(
                &f.env.app,
                &src.env,
                &f.env.env,
                PromoteRequest {
                    release: true,
                    label: Some(Label::new("1.1.0").unwrap()),
                    notes: Some("from staging".into()),
                    ..PromoteRequest::new(actor())
                },
            )
            .await
            .unwrap();
        assert_eq!(out.source.version, 3);
        assert_eq!(out.snapshot.snapshot().version, 4);
        let p = out.release.expect("released");
        assert_eq!(
            (p.release.label.as_str(), p.release.version, p.release.kind),
            ("1.1.0", 4, ReleaseKind::Promote)
        );
        let (_, raw) = f
            .vault
            .get(
                &f.env,
                f.vault
                    .resolve(&f.env, &Selector::CurrentRelease)
                    .await
                    .unwrap()
                    .version,
            )
            .await
            .unwrap();
        assert_eq!(&raw[..], FIXTURES[0]);

        // A taken label fails before anything is copied.
        let e = f
            .vault
            .promote(
                &f.env.app,
                &src.env,
                &f.env.env,
                PromoteRequest {
                    version: Some(Selector::Version(1)),
                    release: true,
                    label: Some(Label::new("1.0.0").unwrap()),
                    ..PromoteRequest::new(actor())
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}");
        assert_eq!(f.vault.latest_version(&f.env).await.unwrap(), Some(4));

        // So does a stale If-Match.
        let e = f
            .vault
            .promote(
                &f.env.app,
                &src.env,
                &f.env.env,
                PromoteRequest {
                    version: Some(Selector::Version(1)),
                    release: true,
                    if_match: Some("\"stale\"".into()),
                    ..PromoteRequest::new(actor())
                },
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
        assert_eq!(f.vault.latest_version(&f.env).await.unwrap(), Some(4));

        // Into itself: refused.
        let e = f
            .vault
            .promote(
                &f.env.app,
                &f.env.env,
                &f.env.env,
                PromoteRequest::new(actor()),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn promote_from_an_empty_env_is_not_found() {
        let f = fixture().await;
        let e = f
            .vault
            .promote(
                &f.env.app,
                &EnvId::new("nothing").unwrap(),
                &f.env.env,
                PromoteRequest::new(actor()),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    }
}
