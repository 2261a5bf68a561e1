//! Releases: which snapshot an environment publishes, under a unique label.
//!
//! The release pointer (`release.json`, see [`layout::release_pointer_key`]) holds the
//! current [`Release`] and is the source of truth. It is the only object in the store
//! that is ever rewritten, and only by compare-and-swap on its etag (create-only for
//! the first release): a writer that loses the race gets `PreconditionFailed`, never an
//! overwrite, and is never retried behind the caller's back.
//!
//! Each release also gets an immutable history entry and an immutable label key, both
//! created *after* the pointer moved. A crash in between is repaired by the next
//! release, which first makes sure the current release's history entry and label key
//! exist; readers merge the pointer into the history so the newest release is never
//! missing. Hence, whenever the pointer holds release `n`, releases `1..n` all have
//! their history entry and label key, and label uniqueness only needs the label keys
//! plus the pointer itself.

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::etag;
use crate::events::{Action, Actor, Event};
use crate::id::{AppId, EnvId, EnvRef, Label};
use crate::layout;
use crate::snapshot::{BackupOutcome, BackupRequest, Selector, SnapshotMeta, Trigger};
use crate::store::{Conditional, Metadata, Object, PutMode};
use crate::vault::Vault;

/// The longest release notes accepted, in bytes: the pointer is read on every poll,
/// so it stays small.
pub const MAX_NOTES_LEN: usize = 4096;
/// How many numbers past the release number a default label may skip over when
/// numbers were taken by hand.
const MAX_LABEL_SKIP: u64 = 1000;
/// How many history entries are read at once.
const GET_CONCURRENCY: usize = 16;

/// How a release came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReleaseKind {
    /// A snapshot published with `release`.
    Release,
    /// A return to an earlier release with `rollback`.
    Rollback,
    /// A snapshot copied from another environment and published with `promote --release`.
    Promote,
    /// A snapshot published as part of a restore.
    Restore,
}

impl ReleaseKind {
    /// The name stored and shown to people.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Release => "release",
            Self::Rollback => "rollback",
            Self::Promote => "promote",
            Self::Restore => "restore",
        }
    }
}

impl fmt::Display for ReleaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A short reference to a release: its number, label and snapshot version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleaseRef {
    /// The release number.
    pub seq: u64,
    /// Its label.
    pub label: Label,
    /// The snapshot it published.
    pub version: u64,
}

impl fmt::Display for ReleaseRef {
    /// `1.4.0 (r3, v12)`, or `r3 (v12)` when the label is the release number.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.label.as_str() == self.seq.to_string() {
            write!(f, "r{} (v{})", self.seq, self.version)
        } else {
            write!(f, "{} (r{}, v{})", self.label, self.seq, self.version)
        }
    }
}

/// One release of an environment, as stored in the pointer and, immutably, in the
/// history and the label index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Release {
    /// The release number: 1, 2, 3 ... per environment.
    pub seq: u64,
    /// The label, unique in the environment.
    pub label: Label,
    /// The snapshot published.
    pub version: u64,
    /// sha256 of the snapshot's raw configuration.
    pub sha256: String,
    /// Raw size of the configuration in bytes.
    pub size: u64,
    /// Stored (compressed) size in bytes.
    pub stored_size: u64,
    /// When it was published (UTC).
    pub released_at: DateTime<Utc>,
    /// Who published it.
    pub released_by: Option<String>,
    /// Release notes.
    pub notes: Option<String>,
    /// How it came about.
    pub kind: ReleaseKind,
    /// The release it replaced, if any.
    pub previous: Option<ReleaseRef>,
    /// The release number that `rollback` returns to from this one: the one it replaced,
    /// or for a rollback, the base of the release it went back to.
    pub base: Option<u64>,
}

impl Release {
    /// The short reference to this release.
    #[must_use]
    pub fn reference(&self) -> ReleaseRef {
        ReleaseRef {
            seq: self.seq,
            label: self.label.clone(),
            version: self.version,
        }
    }

    fn encode(&self) -> Result<Bytes> {
        serde_json::to_vec_pretty(self)
            .map(Bytes::from)
            .map_err(|e| Error::internal(format!("cannot encode release r{}: {e}", self.seq)))
    }

    fn decode(obj: &Object) -> Result<Self> {
        serde_json::from_slice(&obj.bytes).map_err(|e| {
            Error::corrupt(format!(
                "release record {} is unreadable: {e}",
                obj.info.key
            ))
            .with_hint("inspect it in the store; `jetvault releases` lists the history")
        })
    }
}

/// The current release with the etag of the pointer that holds it: the etag to pass as
/// `if_match` to publish only over this release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReleasePointer {
    /// The release.
    pub release: Release,
    /// The store's etag of the pointer object, as the store gives it (S3 quotes it).
    pub etag: String,
}

/// A snapshot to publish.
#[derive(Debug, Clone)]
pub struct ReleaseRequest {
    /// The snapshot version.
    pub version: u64,
    /// The label; default: the release number, or the next free number.
    pub label: Option<Label>,
    /// Release notes.
    pub notes: Option<String>,
    /// Publish only if the pointer's etag is still this one (quoted or not; `*`: only
    /// if there is a release).
    pub if_match: Option<String>,
    /// Who publishes, through which front end.
    pub actor: Actor,
    /// What kind of release this is.
    pub kind: ReleaseKind,
}

impl ReleaseRequest {
    /// A plain release of `version` by `actor`, with a default label.
    #[must_use]
    pub fn new(version: u64, actor: Actor) -> Self {
        Self {
            version,
            label: None,
            notes: None,
            if_match: None,
            actor,
            kind: ReleaseKind::Release,
        }
    }
}

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

/// What `publish` needs beyond the pointer it read.
struct Publish {
    meta: SnapshotMeta,
    label: Option<Label>,
    notes: Option<String>,
    actor: Actor,
    kind: ReleaseKind,
    /// For a rollback: the base of the release gone back to.
    base: Option<Option<u64>>,
}

/// The error for an environment without a release.
pub fn no_release(env: &EnvRef) -> Error {
    Error::not_found(format!("{env} has no release")).with_hint(format!(
        "publish one with `jetvault release {} {} <version>`",
        env.app, env.env
    ))
}

fn check_notes(notes: Option<&str>) -> Result<()> {
    match notes {
        Some(n) if n.len() > MAX_NOTES_LEN => Err(Error::invalid(format!(
            "release notes are {} bytes, over the {MAX_NOTES_LEN}-byte limit; shorten them",
            n.len()
        ))),
        _ => Ok(()),
    }
}

fn check_if_match(
    env: &EnvRef,
    if_match: Option<&str>,
    current: Option<&ReleasePointer>,
) -> Result<()> {
    match (if_match, current) {
        (None, _) => Ok(()),
        (Some("*"), Some(_)) => Ok(()),
        (Some(want), Some(cur)) if etag::if_match(want, &cur.etag) => Ok(()),
        (Some(want), Some(cur)) => Err(Error::precondition(format!(
            "the release of {env} changed: its pointer's etag is {}, not {want} (now \
             release {}); nothing was written",
            cur.etag,
            cur.release.reference()
        ))
        .with_hint(format!(
            "check `jetvault releases {} {}` and retry with --if-match {}",
            env.app, env.env, cur.etag
        ))),
        (Some(want), None) => Err(Error::precondition(format!(
            "{env} has no release, so its pointer cannot have etag {want}; nothing was written"
        ))
        .with_hint("omit --if-match (If-Match) to publish the first release")),
    }
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
    /// Publishes snapshot `req.version` as the environment's release.
    ///
    /// Moves the pointer by compare-and-swap on the etag read (create-only for the first
    /// release), then writes the immutable history entry and label key.
    ///
    /// # Errors
    /// `NotFound` if the version does not exist; `AlreadyExists` if the label is taken
    /// (checked before anything is written); `PreconditionFailed` if `req.if_match` is
    /// not the pointer's etag (or there is no pointer) or another release won the race;
    /// `InvalidInput` for bad notes; store errors otherwise.
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
            .with_hint(format!(
                "publish the version you want with `jetvault release {} {} <version>`",
                env.app, env.env
            )));
        };
        let target = self.history_entry(env, base).await?.ok_or_else(|| {
            Error::corrupt(format!(
                "the history entry of release r{base} of {env}, which rollback returns to, \
                 is missing ({})",
                layout::release_key(env, base)
            ))
            .with_hint(format!(
                "release the version you want with `jetvault release {} {} <version>`",
                env.app, env.env
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
                base: Some(target.base),
            },
        )
        .await
    }

    /// Moves the pointer from `current` to a new release and records it.
    async fn publish(
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
                .with_hint(format!(
                    "check `jetvault releases {} {}` and retry if still wanted",
                    env.app, env.env
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
            }));
        self.record_event_or_log(&event).await;
        Ok(ReleasePointer { release, etag })
    }

    /// Makes sure `release` has its history entry and label key (create-only).
    async fn repair_history(&self, env: &EnvRef, release: &Release) -> Result<()> {
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
    async fn check_label_free(
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
        .with_hint("give a label with --label"))
    }

    /// The current release of `env` and its pointer's etag; `None` if it has none.
    ///
    /// # Errors
    /// Store errors; `Corrupt` if the pointer is unreadable.
    pub async fn current_release(&self, env: &EnvRef) -> Result<Option<ReleasePointer>> {
        match self.store().get(&layout::release_pointer_key(env)).await {
            Ok(obj) => Ok(Some(ReleasePointer {
                release: Release::decode(&obj)?,
                etag: obj.info.etag,
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The current release if the pointer's etag is no longer `etag`; `None` if it is
    /// unchanged (a conditional GET: nothing is transferred).
    ///
    /// # Errors
    /// `NotFound` if the pointer is gone; `Corrupt` if it is unreadable; store errors.
    pub async fn current_release_if_changed(
        &self,
        env: &EnvRef,
        etag: &str,
    ) -> Result<Option<ReleasePointer>> {
        let key = layout::release_pointer_key(env);
        match self.store().get_if_none_match(&key, etag).await {
            Ok(Conditional::NotModified) => Ok(None),
            Ok(Conditional::Modified(obj)) if etag::weak_eq(&obj.info.etag, etag) => Ok(None),
            Ok(Conditional::Modified(obj)) => Ok(Some(ReleasePointer {
                release: Release::decode(&obj)?,
                etag: obj.info.etag,
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(no_release(env)),
            Err(e) => Err(e),
        }
    }

    /// Up to `limit` releases of `env`, newest first, the current one included even if
    /// its history entry is not written yet.
    ///
    /// # Errors
    /// Store errors; `Corrupt` for an unreadable record.
    pub async fn releases(&self, env: &EnvRef, limit: usize) -> Result<Vec<Release>> {
        self.releases_page(env, None, limit).await
    }

    /// Up to `limit` releases of `env` numbered below `before` (all if `None`), newest
    /// first; the current release is included even before its history entry is written.
    ///
    /// # Errors
    /// Store errors; `Corrupt` for an unreadable record.
    pub async fn releases_page(
        &self,
        env: &EnvRef,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Release>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // The pointer's release may lack its history entry (see the module docs).
        let (pointer, keys) = futures::try_join!(
            self.current_release(env),
            self.release_keys(env, before, limit)
        )?;
        let mut releases: Vec<Release> = futures::stream::iter(keys)
            .map(|key| async move { Release::decode(&self.store().get(&key).await?) })
            .buffered(GET_CONCURRENCY)
            .try_collect()
            .await?;
        if let Some(p) = pointer
            && before.is_none_or(|b| p.release.seq < b)
            && !releases.iter().any(|r| r.seq == p.release.seq)
        {
            releases.push(p.release);
        }
        releases.sort_by_key(|r| std::cmp::Reverse(r.seq));
        releases.dedup_by_key(|r| r.seq);
        releases.truncate(limit);
        Ok(releases)
    }

    /// The keys of up to `limit` history entries below `before`, newest first.
    async fn release_keys(
        &self,
        env: &EnvRef,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<String>> {
        self.list_parsed_keys(
            &layout::releases_prefix(env),
            before.map(|b| layout::release_key(env, b)),
            limit,
            layout::parse_release_key,
        )
        .await
    }

    /// The history entry of release `seq`, if it exists.
    async fn history_entry(&self, env: &EnvRef, seq: u64) -> Result<Option<Release>> {
        match self.store().get(&layout::release_key(env, seq)).await {
            Ok(obj) => Release::decode(&obj).map(Some),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The release of `env` that carries `label` (the current one or an earlier one).
    ///
    /// # Errors
    /// `NotFound` naming labels near it; `Corrupt` for an unreadable record.
    pub async fn find_label(&self, env: &EnvRef, label: &Label) -> Result<Release> {
        match self.store().get(&layout::label_key(env, label)).await {
            Ok(obj) => return Release::decode(&obj),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // The current release's label key may not be written yet.
        let current = self.current_release(env).await?;
        if let Some(cur) = &current
            && &cur.release.label == label
        {
            return Ok(cur.release.clone());
        }
        let Some(cur) = current else {
            return Err(no_release(env).context(format!("no release labelled {label}")));
        };
        let near = self.labels_near(env, label, &cur.release.label).await;
        Err(Error::not_found(format!(
            "{env} has no release labelled {label}; {near}; the current release is {}",
            cur.release.reference()
        ))
        .with_hint(format!("run `jetvault releases {} {}`", env.app, env.env)))
    }

    /// A phrase naming the labels that sort nearest to `label` (up to 1000 are read).
    async fn labels_near(&self, env: &EnvRef, label: &Label, current: &Label) -> String {
        let prefix = format!("{}labels/", layout::env_prefix(env));
        let mut labels: Vec<String> = match self.store().list(&prefix, None, 1000).await {
            Ok(page) => page
                .objects
                .iter()
                .filter_map(|o| o.key.strip_prefix(&prefix)?.strip_suffix(".json"))
                .map(str::to_string)
                .collect(),
            Err(_) => Vec::new(),
        };
        if !labels.iter().any(|l| l == current.as_str()) {
            labels.push(current.to_string());
        }
        labels.sort();
        let at = labels.partition_point(|l| l.as_str() < label.as_str());
        let near: Vec<&str> = labels[at.saturating_sub(2)..(at + 2).min(labels.len())]
            .iter()
            .map(String::as_str)
            .collect();
        format!("labels near it: {}", near.join(", "))
    }

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
    /// after it: the error then names the snapshot written); errors of `backup`.
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
            };
            let pointer = self.release(&dst, rreq).await.map_err(|e| {
                e.context(format!(
                    "snapshot v{version} of {dst} holds the copy of {src} v{}, but releasing it \
                     failed",
                    source.version
                ))
                .with_hint(format!(
                    "release it with `jetvault release {app} {to} {version}`"
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
mod tests;
