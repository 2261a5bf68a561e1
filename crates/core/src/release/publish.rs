//! Publishing: moves the release pointer by compare-and-swap (release, rollback), then
//! records the release's immutable history entry and label key.

use bytes::Bytes;
use chrono::Utc;

use super::{
    Release, ReleaseKind, ReleasePointer, ReleaseRequest, check_if_match, check_notes, no_release,
};
use crate::error::{Error, ErrorKind, Hint, Result, Step};
use crate::events::{Action, Actor, Event};
use crate::id::{EnvRef, Label};
use crate::layout;
use crate::meta::SnapshotMeta;
use crate::schema::Violations;
use crate::store::{Metadata, PutMode};
use crate::vault::Vault;

/// How many numbers past the release number a default label may skip over when
/// numbers were taken by hand.
const MAX_LABEL_SKIP: u64 = 1000;

/// What `publish` needs beyond the pointer it read.
pub(super) struct Publish {
    pub(super) meta: SnapshotMeta,
    pub(super) label: Option<Label>,
    pub(super) notes: Option<String>,
    pub(super) actor: Actor,
    pub(super) kind: ReleaseKind,
    /// For a rollback: the base of the release gone back to.
    pub(super) base: Option<Option<u64>>,
    /// The schema violations the caller overrode (`skip_schema_check`).
    pub(super) schema_overridden: Option<Violations>,
}

/// Creates an immutable object unless it exists; an existing one is left as it is.
async fn create_if_missing(vault: &Vault, key: &str, body: Bytes) -> Result<()> {
    match vault
        .store()
        .put(key, body, &Metadata::new(), PutMode::Create)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl Vault {
    /// Checks snapshot `meta` against the environment's schema before it is published:
    /// `None` if it passes (or there is no schema), the violations if it fails and
    /// `skip` overrides the check.
    ///
    /// # Errors
    /// `InvalidInput` naming the violations if it fails and `skip` is off; the errors of
    /// reading the snapshot.
    async fn check_schema_for(
        &self,
        env: &EnvRef,
        meta: &SnapshotMeta,
        skip: bool,
    ) -> Result<Option<Violations>> {
        if self.options().schemas.get(env).is_none() {
            return Ok(None);
        }
        let (_, raw) = self.get(env, meta.version).await?;
        match self.options().schemas.check_blocking(env, raw).await? {
            Some(v) if !skip => Err(v.refusal(
                &format!(
                    "to release v{} of {env} (nothing was changed)",
                    meta.version
                ),
                env,
            )),
            found => Ok(found),
        }
    }

    /// Publishes snapshot `req.version` as the environment's release.
    ///
    /// Moves the pointer by compare-and-swap on the etag read (create-only for the first
    /// release), then writes the immutable history entry and label key.
    ///
    /// # Errors
    /// `NotFound` if the version does not exist; `AlreadyExists` if the label is taken
    /// (checked before anything is written); `PreconditionFailed` if `req.if_match` is
    /// not the pointer's etag (or there is no pointer) or another release won the race;
    /// `InvalidInput` for bad notes, or a snapshot that fails the environment's JSON
    /// Schema without `skip_schema_check`; store errors otherwise.
    pub async fn release(&self, env: &EnvRef, req: ReleaseRequest) -> Result<ReleasePointer> {
        check_notes(req.notes.as_deref())?;
        if !(1..=layout::MAX_ORDINAL).contains(&req.version) {
            return Err(Error::invalid(format!(
                "v{} is not a snapshot version; versions start at 1",
                req.version
            )));
        }
        self.ensure_marker().await?;
        let (current, meta) = futures::try_join!(
            self.current_release(env),
            self.snapshot_meta(env, req.version)
        )?;
        check_if_match(env, req.if_match.as_deref(), current.as_ref())?;
        let schema_overridden = self
            .check_schema_for(env, &meta, req.skip_schema_check)
            .await?;
        self.publish(
            env,
            current,
            Publish {
                meta,
                label: req.label,
                notes: req.notes,
                actor: req.actor,
                kind: req.kind,
                base: None,
                schema_overridden,
            },
        )
        .await
    }

    /// Goes back to the release before the current one (its `base`), recorded as a new
    /// release of kind `rollback`; rolling back again goes one more step back.
    ///
    /// # Errors
    /// `NotFound` if there is no release or none before it; `PreconditionFailed` as for
    /// [`Vault::release`]; `Corrupt` if the history entry to return to is missing.
    pub async fn rollback(
        &self,
        env: &EnvRef,
        if_match: Option<String>,
        actor: Actor,
        notes: Option<String>,
    ) -> Result<ReleasePointer> {
        check_notes(notes.as_deref())?;
        let current = self
            .current_release(env)
            .await?
            .ok_or_else(|| no_release(env).context("nothing to roll back"))?;
        check_if_match(env, if_match.as_deref(), Some(&current))?;
        let cur = &current.release;
        let Some(base) = cur.base else {
            return Err(Error::not_found(format!(
                "{env} has no release before {} to roll back to",
                cur.reference()
            ))
            .with_next(Hint::steps(
                "publish the version you want",
                [Step::Release(env.into(), None)],
            )));
        };
        let target = self.history_entry(env, base).await?.ok_or_else(|| {
            Error::corrupt(format!(
                "the history entry of release r{base} of {env}, which rollback returns to, \
                 is missing ({})",
                layout::release_key(env, base)
            ))
            .with_next(Hint::steps(
                "release the version you want",
                [Step::Release(env.into(), None)],
            ))
        })?;
        let meta = self
            .snapshot_meta(env, target.version)
            .await
            .map_err(|e| e.context(format!("rolling back to release {}", target.reference())))?;
        let notes = notes.or_else(|| Some(format!("rollback to {}", target.reference())));
        self.publish(
            env,
            Some(current),
            Publish {
                meta,
                label: None,
                notes,
                actor,
                kind: ReleaseKind::Rollback,
                schema_overridden: None,
                base: Some(target.base),
            },
        )
        .await
    }

    /// Moves the pointer from `current` to a new release and records it.
    pub(super) async fn publish(
        &self,
        env: &EnvRef,
        current: Option<ReleasePointer>,
        p: Publish,
    ) -> Result<ReleasePointer> {
        let previous = match &current {
            Some(cur) => {
                self.repair_history(env, &cur.release).await?;
                Some(cur.release.reference())
            }
            None => {
                // No pointer: normally the first release. If a history exists, the
                // pointer was deleted by hand; continue its numbering so history keys
                // stay unique.
                let orphan = self.releases_page(env, None, 1).await?.into_iter().next();
                if let Some(o) = &orphan {
                    tracing::warn!(%env, seq = o.seq, "release pointer missing but history \
                        exists; continuing the numbering");
                }
                orphan.map(|o| o.reference())
            }
        };
        let seq = previous.as_ref().map_or(1, |p| p.seq + 1);
        if seq > layout::MAX_ORDINAL {
            return Err(Error::invalid(format!(
                "{env} has reached the largest release number"
            )));
        }
        let cur_label = current.as_ref().map(|c| &c.release.label);
        let label = match p.label {
            Some(label) => {
                self.check_label_free(env, &label, cur_label).await?;
                label
            }
            None => self.default_label(env, seq, cur_label).await?,
        };
        let release = Release {
            seq,
            label,
            version: p.meta.version,
            sha256: p.meta.sha256,
            size: p.meta.size,
            stored_size: p.meta.stored_size,
            released_at: Utc::now(),
            released_by: p.actor.who.clone(),
            notes: p.notes,
            kind: p.kind,
            base: p.base.unwrap_or_else(|| previous.as_ref().map(|p| p.seq)),
            previous,
        };
        let mode = match &current {
            Some(cur) => PutMode::Update {
                etag: cur.etag.clone(),
            },
            None => PutMode::Create,
        };
        let etag = match self
            .store()
            .put(
                &layout::release_pointer_key(env),
                release.encode()?,
                &Metadata::new(),
                mode,
            )
            .await
        {
            Ok(etag) => etag,
            Err(e) if e.is_conflict() || e.kind() == ErrorKind::NotFound => {
                return Err(Error::precondition(format!(
                    "another release of {env} was published while r{seq} was being \
                     published (the pointer changed since it was read); nothing was written"
                ))
                .with_next(Hint::steps(
                    "check the releases and retry if still wanted",
                    [Step::ListReleases(env.into())],
                ))
                .with_source(e));
            }
            Err(e) => return Err(e.context(format!("publishing release r{seq} of {env}"))),
        };
        tracing::info!(%env, seq, label = %release.label, version = release.version,
            kind = %release.kind, "release published");
        // The release has happened: a failure from here on is repaired by the next one.
        if let Err(e) = self.repair_history(env, &release).await {
            tracing::warn!(%env, seq, error = %e.report(),
                "could not write the release's history entry; the next release repairs it");
        }
        let action = match release.kind {
            ReleaseKind::Rollback => Action::Rollback,
            _ => Action::Release,
        };
        let event = Event::now(action, env, &p.actor)
            .version(release.version)
            .details(serde_json::json!({
                "seq": release.seq,
                "label": release.label,
                "kind": release.kind,
                "previous": release.previous,
                "base": release.base,
                "etag": etag,
                "schema_check_skipped": p.schema_overridden.is_some(),
                "schema_violations": p.schema_overridden,
            }));
        self.record_event_or_log(&event).await;
        Ok(ReleasePointer { release, etag })
    }

    /// Makes sure `release` has its history entry and label key (create-only).
    pub(crate) async fn repair_history(&self, env: &EnvRef, release: &Release) -> Result<()> {
        let body = release.encode()?;
        let (history_key, label_key) = (
            layout::release_key(env, release.seq),
            layout::label_key(env, &release.label),
        );
        futures::try_join!(
            create_if_missing(self, &history_key, body.clone()),
            create_if_missing(self, &label_key, body),
        )
        .map(drop)
        .map_err(|e| {
            e.context(format!(
                "recording release r{} of {env} in its history",
                release.seq
            ))
        })
    }

    /// Fails with `AlreadyExists` if `label` is the current release's or was used before.
    pub(crate) async fn check_label_free(
        &self,
        env: &EnvRef,
        label: &Label,
        current: Option<&Label>,
    ) -> Result<()> {
        let used_by = if current == Some(label) {
            Some("the current release".to_string())
        } else {
            match self.store().get(&layout::label_key(env, label)).await {
                Ok(obj) => Some(match Release::decode(&obj) {
                    Ok(r) => format!("release r{} (v{})", r.seq, r.version),
                    Err(_) => "an earlier release".to_string(),
                }),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            }
        };
        match used_by {
            None => Ok(()),
            Some(by) => Err(Error::already_exists(format!(
                "label {label} is taken in {env} by {by}; labels are unique per environment"
            ))
            .with_hint("choose another label, or leave it out to get the next number")),
        }
    }

    /// The release number as a label, or the next free number if it was taken by hand.
    async fn default_label(
        &self,
        env: &EnvRef,
        seq: u64,
        current: Option<&Label>,
    ) -> Result<Label> {
        for n in seq..seq.saturating_add(MAX_LABEL_SKIP) {
            let label = Label::new(n.to_string())?;
            if current == Some(&label) {
                continue;
            }
            match self.store().head(&layout::label_key(env, &label)).await {
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(label),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Err(Error::already_exists(format!(
            "labels {seq} to {} of {env} are all taken; no default label is free",
            seq.saturating_add(MAX_LABEL_SKIP - 1)
        ))
        .with_next(Hint::steps("give a label", [Step::Label])))
    }
}
