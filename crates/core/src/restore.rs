//! Restore: pushes a stored snapshot back to an environment's live target, safely.
//!
//! One code path for the CLI and the HTTP API: [`Vault::plan_restore`] (what a restore
//! would do, the dry run) and [`Vault::restore`] (do it). A restore
//! 1. resolves and reads the snapshot, checking its size, sha256 and that it is JSON
//!    (any failure: nothing is written anywhere);
//! 2. saves what is live now as a `pre-restore` snapshot, or reuses the latest snapshot
//!    when live holds exactly its bytes (immutable, identical: nothing can be lost);
//!    when live is missing or can't be snapshotted it goes on only if the caller allows;
//! 3. pushes the snapshot to the live target, reads it back and compares sha256 (or,
//!    for a target that reformats what it stores, JSON equality);
//! 4. records an audit event, and reports what was done and the commands that undo it.
//!
//! A failure after the pre-restore snapshot says what state live is in (read back
//! after the failure) and the command that undoes it.

use std::fmt;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::diff::{Change, Diff};
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Action, Actor, Event};
use crate::id::{EnvRef, Label};
use crate::live::LiveTarget;
use crate::release::{ReleaseKind, ReleaseRequest};
use crate::snapshot::{BackupOutcome, BackupRequest, SnapshotMeta, Trigger, no_snapshots};
use crate::vault::Vault;

/// Which snapshot to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestoreSource {
    /// A version number.
    Version(u64),
    /// The newest snapshot.
    Latest,
    /// The snapshot the current release names.
    CurrentRelease,
    /// The snapshot a release label names.
    Release(Label),
    /// The newest snapshot taken at or before this time.
    At(DateTime<Utc>),
}

impl fmt::Display for RestoreSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version(v) => write!(f, "v{v}"),
            Self::Latest => f.write_str("the latest snapshot"),
            Self::CurrentRelease => f.write_str("the current release"),
            Self::Release(l) => write!(f, "release {l}"),
            Self::At(t) => write!(f, "the snapshot as of {}", t.to_rfc3339()),
        }
    }
}

impl std::str::FromStr for RestoreSource {
    type Err = Error;

    /// Parses a version as typed on the command line: `12`, `v12`, `latest` or
    /// `release`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "latest" => Ok(Self::Latest),
            "release" => Ok(Self::CurrentRelease),
            _ => match s.parse::<crate::snapshot::Selector>() {
                Ok(crate::snapshot::Selector::Version(v)) => Ok(Self::Version(v)),
                _ => Err(Error::invalid(format!(
                    "{s:?} is not a version: use a number such as 12 (or v12), latest or \
                     release"
                ))),
            },
        }
    }
}

/// Parses a `--at` time: RFC 3339 (`2024-05-01T12:00:00Z`, offsets allowed), or a
/// date and time without an offset, taken as UTC.
///
/// # Errors
/// `InvalidInput` naming the value and the accepted forms.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc());
        }
    }
    Err(Error::invalid(format!(
        "invalid time {s:?}: use RFC 3339, e.g. 2024-05-01T12:00:00Z or \
         2024-05-01T14:00:00+02:00"
    )))
}

/// What the live target holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LiveState {
    /// It answered with content.
    Present {
        /// sha256 of what it holds.
        sha256: String,
        /// Its size in bytes.
        size: u64,
        /// Whether it is valid JSON.
        json: bool,
    },
    /// It holds nothing (a deleted file, a 404).
    Missing {
        /// What the target said.
        reason: String,
    },
    /// It could not be read.
    Unreadable {
        /// Why.
        reason: String,
        /// The error kind's code.
        code: String,
    },
}

/// What a restore would do: the dry run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RestorePlan {
    /// The environment.
    pub env: EnvRef,
    /// The snapshot that would be pushed (already checked).
    pub snapshot: SnapshotMeta,
    /// Where it would go.
    pub target: String,
    /// What is there now.
    pub live: LiveState,
    /// Whether live already holds exactly the snapshot's bytes (nothing to push).
    pub already_live: bool,
    /// The changes from live to the snapshot, when both are JSON.
    pub changes: Option<Vec<Change>>,
    /// The same as a readable diff (`None` when live is missing or not JSON).
    #[serde(skip)]
    pub diff: Option<Diff>,
    /// The configuration that would be pushed.
    #[serde(skip)]
    pub raw: Bytes,
}

/// A restore to carry out.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The snapshot.
    pub source: RestoreSource,
    /// Who restores, through which front end.
    pub actor: Actor,
    /// Go on when live is missing or can't be read or snapshotted, so that no
    /// pre-restore snapshot is possible (the disaster case). Off: such a restore fails
    /// with `PreconditionFailed` and nothing is pushed.
    pub allow_missing_live: bool,
    /// Also publish the restored snapshot as the environment's release.
    pub publish: bool,
    /// Why (kept in the event, and the release notes when publishing).
    pub message: Option<String>,
}

impl RestoreRequest {
    /// A request for `source` with every option off.
    #[must_use]
    pub fn new(source: RestoreSource, actor: Actor) -> Self {
        Self {
            source,
            actor,
            allow_missing_live: false,
            publish: false,
            message: None,
        }
    }
}

/// What happened to the configuration that was live before the restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PreRestore {
    /// It was saved as a new snapshot (trigger `pre-restore`).
    Saved {
        /// The new snapshot.
        snapshot: SnapshotMeta,
    },
    /// It equals the latest snapshot byte for byte; that snapshot is the undo point.
    Reused {
        /// The latest snapshot.
        snapshot: SnapshotMeta,
    },
    /// Live was missing or could not be snapshotted; the caller allowed going on.
    Impossible {
        /// Why.
        reason: String,
    },
    /// Nothing was overwritten (live already held the snapshot, or a copy to a file).
    NotNeeded,
}

impl PreRestore {
    /// The snapshot that holds what was live before, if there is one.
    #[must_use]
    pub fn snapshot(&self) -> Option<&SnapshotMeta> {
        match self {
            Self::Saved { snapshot } | Self::Reused { snapshot } => Some(snapshot),
            Self::Impossible { .. } | Self::NotNeeded => None,
        }
    }
}

/// How the pushed configuration was confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// Read back with the same sha256.
    Sha256,
    /// Read back as equal JSON with other bytes (the target reformats what it stores).
    EquivalentJson,
    /// Nothing was pushed.
    NotPushed,
}

/// What was published with `publish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Published {
    /// The release label.
    pub label: String,
    /// The version released.
    pub version: u64,
    /// Whether a new release was made (false: the snapshot already was the release).
    pub changed: bool,
    /// The version the release named before, if there was a release.
    pub previous_version: Option<u64>,
}

/// What a restore did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RestoreReport {
    /// The environment.
    pub env: EnvRef,
    /// The snapshot restored.
    pub restored: SnapshotMeta,
    /// Where it went.
    pub target: String,
    /// Whether anything was written to the target.
    pub pushed: bool,
    /// What became of the configuration that was live before.
    pub pre_restore: PreRestore,
    /// How the result was confirmed.
    pub verified: Verification,
    /// The release published, with `publish`.
    pub published: Option<Published>,
    /// Why publishing failed, when the restore itself succeeded.
    pub publish_error: Option<String>,
    /// Commands that undo the restore (empty when there is nothing to undo).
    pub undo: Vec<String>,
}

/// The command that restores `version` of `env` again.
#[must_use]
pub fn restore_command(env: &EnvRef, version: u64) -> String {
    format!("jetvault restore {} {} {version} --yes", env.app, env.env)
}

impl Vault {
    /// Finds the snapshot a restore source names.
    ///
    /// # Errors
    /// `NotFound` naming the nearest versions, labels or times that exist; store
    /// errors.
    pub async fn resolve_source(
        &self,
        env: &EnvRef,
        source: &RestoreSource,
    ) -> Result<SnapshotMeta> {
        match source {
            RestoreSource::Version(v) => self.snapshot_meta(env, *v).await,
            RestoreSource::Latest => self.latest(env).await?.ok_or_else(|| no_snapshots(env)),
            RestoreSource::CurrentRelease => {
                let pointer = self
                    .current_release(env)
                    .await?
                    .ok_or_else(|| crate::release::no_release(env))?;
                let r = &pointer.release;
                self.snapshot_meta(env, r.version)
                    .await
                    .map_err(|e| e.context(format!("release {} of {env}", r.reference())))
            }
            RestoreSource::Release(label) => {
                let r = self.find_label(env, label).await?;
                self.snapshot_meta(env, r.version)
                    .await
                    .map_err(|e| e.context(format!("release {} of {env}", r.reference())))
            }
            RestoreSource::At(at) => self.snapshot_at(env, *at).await,
        }
    }

    /// The newest snapshot of `env` taken at or before `at`.
    ///
    /// Keys sort by version and versions are claimed in time order, so a binary search
    /// over the listed keys finds it with about log2(n) HEADs (one LIST per 1000
    /// versions); the listing's write times are not trusted, since a copied bucket
    /// rewrites them.
    ///
    /// # Errors
    /// `NotFound` naming the oldest snapshot when none is that old; store errors.
    pub async fn snapshot_at(&self, env: &EnvRef, at: DateTime<Utc>) -> Result<SnapshotMeta> {
        let mut keys = self.list_keys(env, None, usize::MAX).await?;
        if keys.is_empty() {
            return Err(no_snapshots(env));
        }
        keys.reverse(); // oldest first
        let head = |i: usize| {
            let key = keys[i].clone();
            async move { SnapshotMeta::from_object(&self.store().head(&key).await?) }
        };
        // Invariant: keys[..lo] were taken at or before `at`, keys[hi..] after it.
        let (mut lo, mut hi) = (0, keys.len());
        let mut best: Option<SnapshotMeta> = None;
        let mut oldest: Option<SnapshotMeta> = None;
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let meta = head(mid).await?;
            if meta.created_at <= at {
                lo = mid + 1;
                best = Some(meta);
            } else {
                hi = mid;
                if mid == 0 {
                    oldest = Some(meta);
                }
            }
        }
        if let Some(best) = best.filter(|b| b.key == keys[lo - 1]) {
            return Ok(best);
        }
        if lo > 0 {
            return head(lo - 1).await;
        }
        let oldest = match oldest {
            Some(m) => m,
            None => head(0).await?,
        };
        Err(Error::not_found(format!(
            "no snapshot of {env} was taken at or before {}; the nearest is the oldest, \
             v{} taken {}",
            at.to_rfc3339(),
            oldest.version,
            oldest.created_at.to_rfc3339()
        ))
        .with_hint(format!(
            "pass a later --at, or run `jetvault list {} {}`",
            env.app, env.env
        )))
    }

    /// Reads the snapshot `source` names and checks it: size and sha256 against its
    /// metadata, and that it parses as JSON.
    async fn checked_snapshot(
        &self,
        env: &EnvRef,
        source: &RestoreSource,
    ) -> Result<(SnapshotMeta, Bytes)> {
        let meta = self.resolve_source(env, source).await?;
        let (meta, raw) = self.get(env, meta.version).await?;
        let what = format!("snapshot v{} of {env}", meta.version);
        let check = raw.clone();
        tokio::task::spawn_blocking(move || codec::check_json(&check, &what))
            .await
            .map_err(|e| Error::internal(format!("JSON check task failed: {e}")))?
            .map_err(|e| Error::corrupt(e.message().to_string()))?;
        Ok((meta, raw))
    }

    /// What restoring `source` to `target` would do, changing nothing: the snapshot
    /// (checked), what live holds now, and the diff between them.
    ///
    /// # Errors
    /// `NotFound` naming the nearest versions, labels or times; `Corrupt` if the
    /// snapshot fails a check; store errors. A live target that can't be read is not
    /// an error: the plan says so.
    pub async fn plan_restore(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        source: &RestoreSource,
    ) -> Result<RestorePlan> {
        let (snapshot, raw) = self.checked_snapshot(env, source).await.map_err(|e| {
            e.context(format!(
                "refusing to restore {source} of {env} (nothing was pushed)"
            ))
        })?;
        let (live, live_raw) = self.read_live(target).await;
        let already_live =
            matches!(&live, LiveState::Present { sha256, .. } if *sha256 == snapshot.sha256);
        let diff = match &live_raw {
            Some(current) if matches!(live, LiveState::Present { json: true, .. }) => {
                let (current, new) = (current.clone(), raw.clone());
                tokio::task::spawn_blocking(move || {
                    Diff::between(&current, &new, "live", "snapshot")
                })
                .await
                .ok()
                .and_then(Result::ok)
            }
            _ => None,
        };
        Ok(RestorePlan {
            env: env.clone(),
            target: target.describe(),
            live,
            already_live,
            changes: diff.as_ref().map(|d| d.changes().to_vec()),
            diff,
            snapshot,
            raw,
        })
    }

    async fn read_live(&self, target: &dyn LiveTarget) -> (LiveState, Option<Bytes>) {
        match target.read(self.options().max_size).await {
            Ok(raw) => {
                let json = codec::check_json(&raw, "live").is_ok();
                (
                    LiveState::Present {
                        sha256: codec::sha256_hex(&raw),
                        size: raw.len() as u64,
                        json,
                    },
                    Some(raw),
                )
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {
                (LiveState::Missing { reason: e.report() }, None)
            }
            Err(e) => (
                LiveState::Unreadable {
                    reason: e.report(),
                    code: e.kind().code().into(),
                },
                None,
            ),
        }
    }

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
        let where_ = target.describe();

        // 2. Save what is live now.
        let (live, live_raw) = self.read_live(target).await;
        let pre_restore = match (&live, live_raw) {
            (LiveState::Present { sha256, .. }, _) if *sha256 == snapshot.sha256 => {
                PreRestore::NotNeeded
            }
            (LiveState::Present { .. }, Some(current)) => {
                let mut backup = BackupRequest::new(current, Trigger::PreRestore);
                backup.actor = req.actor.clone();
                backup.source = Some(where_.clone());
                backup.message = Some(format!("live configuration before restoring v{v}"));
                match self.backup(env, backup).await {
                    Ok(BackupOutcome::Created(m)) => PreRestore::Saved { snapshot: m },
                    Ok(BackupOutcome::Unchanged(m)) => PreRestore::Reused { snapshot: m },
                    Err(e) if matches!(e.kind(), ErrorKind::InvalidInput | ErrorKind::TooLarge) => {
                        impossible(
                            env,
                            &req,
                            &where_,
                            format!("it can't be snapshotted: {}", e.report()),
                        )?
                    }
                    Err(e) => {
                        return Err(e.context(format!(
                            "cannot save the live configuration of {env} before restoring; \
                             nothing was pushed"
                        )));
                    }
                }
            }
            (LiveState::Missing { reason }, _) => {
                impossible(env, &req, &where_, format!("it is missing ({reason})"))?
            }
            (LiveState::Unreadable { reason, .. }, _) => {
                impossible(env, &req, &where_, format!("it can't be read ({reason})"))?
            }
            (LiveState::Present { .. }, None) => {
                return Err(Error::internal("live content read but not kept"));
            }
        };
        let mut undo: Vec<String> = pre_restore
            .snapshot()
            .map(|m| restore_command(env, m.version))
            .into_iter()
            .collect();

        // 3. Push and read back, unless live already holds the snapshot.
        let pushed = pre_restore != PreRestore::NotNeeded;
        let verified = if pushed {
            self.push_and_confirm(env, target, &snapshot, raw, &pre_restore, &req)
                .await?
        } else {
            Verification::NotPushed
        };

        // 4. Publish, if asked; the restore stands whatever happens here.
        let (mut published, mut publish_error) = (None, None);
        if req.publish {
            match self.publish_restored(env, &snapshot, &req).await {
                Ok(p) => {
                    if p.changed && p.previous_version.is_some() {
                        undo.push(format!("jetvault rollback {} {}", env.app, env.env));
                    }
                    published = Some(p);
                }
                Err(e) => {
                    publish_error = Some(
                        e.with_hint(format!(
                            "the restore itself succeeded; publish with `jetvault release {} \
                             {} {v}`",
                            env.app, env.env
                        ))
                        .report(),
                    );
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
            undo,
        };
        let event = Event::now(Action::Restore, env, &req.actor)
            .version(v)
            .details(serde_json::json!({
                "outcome": if pushed { "restored" } else { "already-live" },
                "source": req.source,
                "target": report.target,
                "sha256": report.restored.sha256,
                "pre_restore": report.pre_restore,
                "verified": report.verified,
                "published": report.published,
                "publish_error": report.publish_error,
                "message": req.message,
                "undo": report.undo,
            }));
        self.record_event_or_log(&event).await;
        tracing::info!(%env, version = v, target = %report.target, pushed, "restored");
        Ok(report)
    }

    /// Writes the snapshot to `target`, reads it back and compares. On failure, reads
    /// live again to say what state it is in, records a failed-restore event, and
    /// returns an error that names the state and the undo command.
    async fn push_and_confirm(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        snapshot: &SnapshotMeta,
        raw: Bytes,
        pre_restore: &PreRestore,
        req: &RestoreRequest,
    ) -> Result<Verification> {
        let v = snapshot.version;
        let where_ = target.describe();
        if let Err(e) = target.write(raw.clone()).await {
            let state = self
                .state_after_failure(env, target, snapshot, pre_restore)
                .await;
            self.record_failure(env, snapshot, pre_restore, req, "push", &e, &state)
                .await;
            return Err(Error::new(
                e.kind(),
                format!(
                    "restoring v{v} of {env}: pushing it to {where_} failed ({}); {}",
                    e.report(),
                    state.text
                ),
            )
            .with_source(e));
        }
        let back = match target.read(self.options().max_size).await {
            Ok(back) => back,
            Err(e) => {
                let state = LiveAfter {
                    text: format!(
                        "v{v} was pushed but can't be read back to confirm it ({}): live \
                         may hold v{v} or be partially written; {}",
                        e.report(),
                        undo_text(env, pre_restore)
                    ),
                    code: "unknown",
                };
                self.record_failure(env, snapshot, pre_restore, req, "read-back", &e, &state)
                    .await;
                return Err(Error::new(e.kind(), state.text.clone()).with_source(e));
            }
        };
        if codec::sha256_hex(&back) == snapshot.sha256 {
            return Ok(Verification::Sha256);
        }
        let expected = raw;
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
            return Ok(Verification::EquivalentJson);
        }
        let state = LiveAfter {
            text: format!(
                "after pushing v{v} to {where_}, live holds something else (neither the \
                 same bytes nor the same JSON): the target changed or refused part of it; \
                 {}",
                undo_text(env, pre_restore)
            ),
            code: "other",
        };
        let e = Error::corrupt(state.text.clone());
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
                }
            }
            LiveState::Present { sha256, .. } if sha256 == snapshot.sha256 => LiveAfter {
                text: format!(
                    "live holds v{v} nonetheless (the write took effect); {}",
                    undo_text(env, pre_restore)
                ),
                code: "restored",
            },
            LiveState::Present { sha256, .. } => LiveAfter {
                text: format!(
                    "live now holds something else (sha256 {}): it may be partially \
                     written; {}",
                    &sha256[..12],
                    undo_text(env, pre_restore)
                ),
                code: "partial",
            },
            LiveState::Missing { .. } if before.is_none() => LiveAfter {
                text: "live is still missing, as it was before".into(),
                code: "unchanged",
            },
            LiveState::Missing { .. } => LiveAfter {
                text: format!("live is now missing; {}", undo_text(env, pre_restore)),
                code: "missing",
            },
            LiveState::Unreadable { reason, .. } => LiveAfter {
                text: format!(
                    "live can't be read back ({reason}): it may be partially written; {}",
                    undo_text(env, pre_restore)
                ),
                code: "unknown",
            },
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_failure(
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
        source: &RestoreSource,
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
            undo: Vec::new(),
        })
    }
}

/// What live holds after a failure, in words and as a code for the event.
struct LiveAfter {
    text: String,
    code: &'static str,
}

/// "to undo: `jetvault restore ...`", or why there is nothing to go back to.
fn undo_text(env: &EnvRef, pre_restore: &PreRestore) -> String {
    match pre_restore.snapshot() {
        Some(m) => format!(
            "to put back what was live before, run `{}`",
            restore_command(env, m.version)
        ),
        None => "live was missing or unreadable before the restore, so there is no earlier \
                 state to go back to"
            .into(),
    }
}

/// The decision when no pre-restore snapshot is possible: go on if allowed, else
/// refuse with `PreconditionFailed`.
fn impossible(env: &EnvRef, req: &RestoreRequest, target: &str, why: String) -> Result<PreRestore> {
    let reason = format!("the live configuration of {env} at {target}: {why}");
    if req.allow_missing_live {
        tracing::info!(%env, %reason, "restoring without a pre-restore snapshot");
        Ok(PreRestore::Impossible { reason })
    } else {
        Err(Error::precondition(format!(
            "{reason}; no pre-restore snapshot is possible, so nothing was pushed"
        ))
        .with_hint("confirm to restore anyway (--yes, or allow_missing_live over HTTP)"))
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::layout;
    use crate::live::file::FileTarget;
    use crate::store::LocalStore;
    use crate::testutil::corpus;
    use crate::vault::VaultOptions;

    const A: &str = "nodered-http-endpoint-example.json";
    const B: &str = "appsmith-import-app-all-access.json";
    const C: &str = "grafana-k8s-views-nodes.json";

    struct Fixture {
        dir: tempfile::TempDir,
        store: Arc<LocalStore>,
        vault: Vault,
        env: EnvRef,
        live: PathBuf,
    }

    impl Fixture {
        /// v1 = A, v2 = B, v3 = C; live holds C.
        async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let store = Arc::new(LocalStore::open(dir.path().join("store")).unwrap());
            let vault = Vault::new(store.clone(), VaultOptions::default());
            let env = EnvRef::parse("crm", "production").unwrap();
            for name in [A, B, C] {
                vault
                    .backup(&env, BackupRequest::new(corpus(name), Trigger::Manual))
                    .await
                    .unwrap();
            }
            let live = dir.path().join("live.json");
            std::fs::write(&live, corpus(C)).unwrap();
            Self {
                dir,
                store,
                vault,
                env,
                live,
            }
        }

        fn target(&self) -> FileTarget {
            FileTarget::new(self.live.clone())
        }

        fn actor() -> Actor {
            Actor {
                who: Some("tester".into()),
                via: "test".into(),
                from: None,
            }
        }

        async fn versions(&self) -> usize {
            self.vault.all_versions(&self.env).await.unwrap().len()
        }

        fn live_sha(&self) -> Option<String> {
            std::fs::read(&self.live)
                .ok()
                .map(|b| codec::sha256_hex(&b))
        }
    }

    fn req(source: RestoreSource) -> RestoreRequest {
        RestoreRequest::new(source, Fixture::actor())
    }

    #[tokio::test]
    async fn restores_reusing_the_latest_when_live_equals_it() {
        let f = Fixture::new().await;
        let plan = f
            .vault
            .plan_restore(&f.env, &f.target(), &RestoreSource::Version(1))
            .await
            .unwrap();
        assert!(!plan.already_live);
        assert!(plan.diff.as_ref().is_some_and(|d| !d.is_empty()));
        assert_eq!(f.versions().await, 3, "a plan writes nothing");

        let report = f
            .vault
            .restore(&f.env, &f.target(), req(RestoreSource::Version(1)))
            .await
            .unwrap();
        assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(A)));
        assert_eq!(report.verified, Verification::Sha256);
        assert!(report.pushed);
        let pre = report.pre_restore.snapshot().unwrap();
        assert!(matches!(report.pre_restore, PreRestore::Reused { .. }));
        assert_eq!(pre.version, 3);
        assert_eq!(f.versions().await, 3, "no duplicate of v3");
        assert_eq!(report.undo, vec!["jetvault restore crm production 3 --yes"]);
        let events = f.vault.events(&f.env, 10).await.unwrap();
        let restore = events.iter().find(|e| e.action == Action::Restore).unwrap();
        assert_eq!(restore.version, Some(1));
        assert_eq!(restore.details["outcome"], "restored");
        assert_eq!(restore.details["pre_restore"]["kind"], "reused");
        assert_eq!(restore.actor.who.as_deref(), Some("tester"));
    }

    #[tokio::test]
    async fn saves_a_changed_live_configuration_first() {
        let f = Fixture::new().await;
        let edited = corpus(B);
        let mut edited: serde_json::Value = serde_json::from_slice(&edited).unwrap();
        edited["edited-live"] = serde_json::json!(true);
        let edited = serde_json::to_vec(&edited).unwrap();
        std::fs::write(&f.live, &edited).unwrap();
        let report = f
            .vault
            .restore(&f.env, &f.target(), req(RestoreSource::Latest))
            .await
            .unwrap();
        let PreRestore::Saved { snapshot } = &report.pre_restore else {
            panic!("{:?}", report.pre_restore)
        };
        assert_eq!(snapshot.version, 4);
        assert_eq!(snapshot.trigger, Trigger::PreRestore);
        assert_eq!(snapshot.sha256, codec::sha256_hex(&edited));
        assert_eq!(
            report.restored.version, 3,
            "latest was resolved before the save"
        );
        assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(C)));
        assert_eq!(report.undo, vec!["jetvault restore crm production 4 --yes"]);
        // Undoing puts the edited configuration back, byte for byte.
        f.vault
            .restore(&f.env, &f.target(), req(RestoreSource::Version(4)))
            .await
            .unwrap();
        assert_eq!(std::fs::read(&f.live).unwrap(), edited);
    }

    #[tokio::test]
    async fn publish_moves_the_release_and_says_how_to_undo() {
        let f = Fixture::new().await;
        let mut r = req(RestoreSource::Version(1));
        r.publish = true;
        let report = f.vault.restore(&f.env, &f.target(), r).await.unwrap();
        let p = report.published.unwrap();
        assert_eq!((p.version, p.changed, p.previous_version), (1, true, None));
        assert_eq!(
            report.undo.len(),
            1,
            "no release before: nothing to roll back to"
        );
        let mut r = req(RestoreSource::Version(2));
        r.publish = true;
        let report = f.vault.restore(&f.env, &f.target(), r).await.unwrap();
        let p = report.published.unwrap();
        assert_eq!((p.version, p.previous_version), (2, Some(1)));
        assert_eq!(report.undo[1], "jetvault rollback crm production");
        let cur = f.vault.current_release(&f.env).await.unwrap().unwrap();
        assert_eq!(
            (cur.release.version, cur.release.kind),
            (2, ReleaseKind::Restore)
        );
        // Already the release: nothing published again.
        let mut r = req(RestoreSource::Version(2));
        r.publish = true;
        let report = f.vault.restore(&f.env, &f.target(), r).await.unwrap();
        assert!(!report.published.unwrap().changed);
        assert!(!report.pushed);
    }

    #[tokio::test]
    async fn already_live_pushes_nothing() {
        let f = Fixture::new().await;
        let report = f
            .vault
            .restore(&f.env, &f.target(), req(RestoreSource::Version(3)))
            .await
            .unwrap();
        assert!(!report.pushed);
        assert_eq!(report.pre_restore, PreRestore::NotNeeded);
        assert_eq!(report.verified, Verification::NotPushed);
        assert!(report.undo.is_empty());
        assert_eq!(f.versions().await, 3);
    }

    #[tokio::test]
    async fn missing_live_needs_consent() {
        let f = Fixture::new().await;
        std::fs::remove_file(&f.live).unwrap();
        let plan = f
            .vault
            .plan_restore(&f.env, &f.target(), &RestoreSource::Version(2))
            .await
            .unwrap();
        assert!(matches!(plan.live, LiveState::Missing { .. }));
        assert!(plan.diff.is_none());
        let e = f
            .vault
            .restore(&f.env, &f.target(), req(RestoreSource::Version(2)))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
        assert!(e.to_string().contains("missing"), "{e}");
        assert!(e.to_string().contains("nothing was pushed"), "{e}");
        assert!(!f.live.exists());

        let mut r = req(RestoreSource::Version(2));
        r.allow_missing_live = true;
        let report = f.vault.restore(&f.env, &f.target(), r).await.unwrap();
        assert!(matches!(report.pre_restore, PreRestore::Impossible { .. }));
        assert!(report.undo.is_empty());
        assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(B)));
        assert_eq!(f.versions().await, 3);
    }

    #[tokio::test]
    async fn live_that_is_not_json_needs_consent() {
        let f = Fixture::new().await;
        std::fs::write(&f.live, b"<html>502 Bad Gateway</html>").unwrap();
        let e = f
            .vault
            .restore(&f.env, &f.target(), req(RestoreSource::Version(1)))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PreconditionFailed);
        assert!(e.to_string().contains("can't be snapshotted"), "{e}");
        assert_eq!(
            std::fs::read(&f.live).unwrap(),
            b"<html>502 Bad Gateway</html>"
        );
        let mut r = req(RestoreSource::Version(1));
        r.allow_missing_live = true;
        f.vault.restore(&f.env, &f.target(), r).await.unwrap();
        assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(A)));
    }

    fn flip_byte(root: &Path, key: &str) {
        let path = root.join(key);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
    }

    #[tokio::test]
    async fn a_corrupt_snapshot_is_refused_and_nothing_is_written() {
        let f = Fixture::new().await;
        std::fs::write(&f.live, corpus(B)).unwrap();
        flip_byte(f.store.root(), &layout::snapshot_key(&f.env, 1));
        let before = std::fs::read(&f.live).unwrap();
        let e = f
            .vault
            .plan_restore(&f.env, &f.target(), &RestoreSource::Version(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        let mut r = req(RestoreSource::Version(1));
        r.allow_missing_live = true;
        let e = f.vault.restore(&f.env, &f.target(), r).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(e.to_string().contains("v1"), "{e}");
        assert!(e.to_string().contains("nothing was pushed"), "{e}");
        assert_eq!(std::fs::read(&f.live).unwrap(), before);
        assert_eq!(f.versions().await, 3, "no pre-restore snapshot either");
    }

    /// A file target whose writes fail the way a live platform's can: before writing
    /// anything (a 500), after writing part of the bytes (a timeout mid-import), or by
    /// storing something other than what was sent.
    #[derive(Debug)]
    struct Faulty {
        inner: FileTarget,
        path: PathBuf,
        fault: Fault,
    }

    #[derive(Debug, Clone, Copy)]
    enum Fault {
        RefuseWrite,
        PartialWrite,
        Reformat,
        DropKey,
    }

    #[async_trait]
    impl LiveTarget for Faulty {
        fn describe(&self) -> String {
            format!("faulty {}", self.inner.describe())
        }
        async fn read(&self, limit: u64) -> Result<Bytes> {
            self.inner.read(limit).await
        }
        async fn write(&self, bytes: Bytes) -> Result<()> {
            match self.fault {
                Fault::RefuseWrite => Err(Error::unavailable("PUT answered 500")),
                Fault::PartialWrite => {
                    std::fs::write(&self.path, &bytes[..bytes.len() / 2]).unwrap();
                    Err(Error::unavailable("PUT timed out after 30s"))
                }
                Fault::Reformat | Fault::DropKey => {
                    let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    if matches!(self.fault, Fault::DropKey) {
                        v = serde_json::json!({"imported": "partly"});
                    }
                    self.inner
                        .write(serde_json::to_vec_pretty(&v).unwrap().into())
                        .await
                }
            }
        }
    }

    async fn restore_with(f: &Fixture, fault: Fault) -> Result<RestoreReport> {
        let t = Faulty {
            inner: f.target(),
            path: f.live.clone(),
            fault,
        };
        f.vault
            .restore(&f.env, &t, req(RestoreSource::Version(1)))
            .await
    }

    #[tokio::test]
    async fn a_refused_push_leaves_live_unchanged_and_says_so() {
        let f = Fixture::new().await;
        std::fs::write(&f.live, corpus(B)).unwrap();
        let e = restore_with(&f, Fault::RefuseWrite).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        let text = e.to_string();
        assert!(text.contains("500"), "{text}");
        assert!(text.contains("live is unchanged"), "{text}");
        assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(B)));
        // The pre-restore snapshot exists.
        let latest = f.vault.latest(&f.env).await.unwrap().unwrap();
        assert_eq!((latest.version, latest.trigger), (4, Trigger::PreRestore));
        let events = f.vault.events(&f.env, 10).await.unwrap();
        assert!(events.iter().any(|e| e.action == Action::Restore
            && e.details["outcome"] == "failed"
            && e.details["live_after"] == "unchanged"));
    }

    #[tokio::test]
    async fn a_partial_push_names_the_state_and_the_undo_command() {
        let f = Fixture::new().await;
        std::fs::write(&f.live, corpus(B)).unwrap();
        let e = restore_with(&f, Fault::PartialWrite).await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains("partially written"), "{text}");
        assert!(
            text.contains("jetvault restore crm production 4 --yes"),
            "{text}"
        );
        // The undo command (its --yes allows the half-written live, which can't be
        // snapshotted) does what it says.
        let mut undo = req(RestoreSource::Version(4));
        undo.allow_missing_live = true;
        let report = f.vault.restore(&f.env, &f.target(), undo).await.unwrap();
        assert!(matches!(report.pre_restore, PreRestore::Impossible { .. }));
        assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(B)));
    }

    #[tokio::test]
    async fn read_back_accepts_equal_json_and_refuses_a_changed_document() {
        let f = Fixture::new().await;
        let report = restore_with(&f, Fault::Reformat).await.unwrap();
        assert_eq!(report.verified, Verification::EquivalentJson);
        let e = restore_with(&f, Fault::DropKey).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(e.to_string().contains("live holds something else"), "{e}");
        assert!(
            e.to_string().contains("jetvault restore crm production"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn restore_copy_writes_a_file_and_leaves_live_alone() {
        let f = Fixture::new().await;
        let out = f.dir.path().join("out.json");
        let report = f
            .vault
            .restore_copy(
                &f.env,
                &FileTarget::new(out.clone()),
                &RestoreSource::Version(2),
                &Fixture::actor(),
            )
            .await
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), corpus(B));
        assert_eq!(report.pre_restore, PreRestore::NotNeeded);
        assert_eq!(f.live_sha().unwrap(), codec::sha256_hex(&corpus(C)));
        assert_eq!(f.versions().await, 3);
    }

    #[tokio::test]
    async fn at_finds_the_newest_snapshot_at_or_before_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(dir.path()).unwrap());
        let vault = Vault::new(store.clone(), VaultOptions::default());
        let env = EnvRef::parse("crm", "production").unwrap();
        // Written now, long after their created_at (as a copied bucket would be).
        for (v, at) in [
            (1, "2024-01-01T10:00:00Z"),
            (2, "2024-01-02T10:00:00Z"),
            (3, "2024-01-03T10:00:00Z"),
        ] {
            crate::testutil::put_snapshot_at(store.as_ref(), &env, v, parse_time(at).unwrap())
                .await;
        }
        let at = |s: &str| RestoreSource::At(parse_time(s).unwrap());
        let found = |s: &'static str| {
            let vault = vault.clone();
            let env = env.clone();
            let src = at(s);
            async move { vault.resolve_source(&env, &src).await }
        };
        assert_eq!(found("2024-01-02T10:00:00Z").await.unwrap().version, 2);
        assert_eq!(found("2024-01-02T23:59:59+02:00").await.unwrap().version, 2);
        assert_eq!(found("2030-01-01T00:00:00Z").await.unwrap().version, 3);
        let e = found("2023-12-31T00:00:00Z").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(
            e.to_string()
                .contains("the oldest, v1 taken 2024-01-01T10:00:00"),
            "{e}"
        );
        assert!(parse_time("2024-01-02 10:00:00").is_ok());
        assert_eq!(
            parse_time("yesterday").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        for v in 4..=30 {
            let day = format!("2024-02-{:02}T00:00:00Z", v - 3);
            crate::testutil::put_snapshot_at(store.as_ref(), &env, v, parse_time(&day).unwrap())
                .await;
        }
        assert_eq!(found("2024-02-10T12:00:00Z").await.unwrap().version, 13);
        assert_eq!(found("2024-02-10T00:00:00Z").await.unwrap().version, 13);
        assert_eq!(found("2024-01-31T00:00:00Z").await.unwrap().version, 3);
        let empty = EnvRef::parse("crm", "empty").unwrap();
        let e = vault
            .resolve_source(&empty, &at("2024-01-01T00:00:00Z"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("has no snapshots"), "{e}");
    }

    #[tokio::test]
    async fn labels_resolve_and_a_missing_one_names_the_recent_releases() {
        let f = Fixture::new().await;
        let label = Label::new("1.4.0").unwrap();
        let mut r = ReleaseRequest::new(2, Fixture::actor());
        r.label = Some(label.clone());
        f.vault.release(&f.env, r).await.unwrap();
        let meta = f
            .vault
            .resolve_source(&f.env, &RestoreSource::Release(label))
            .await
            .unwrap();
        assert_eq!(meta.version, 2);
        let e = f
            .vault
            .resolve_source(
                &f.env,
                &RestoreSource::Release(Label::new("1.5.0").unwrap()),
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("1.4.0"), "{e}");
        let meta = f
            .vault
            .resolve_source(&f.env, &RestoreSource::CurrentRelease)
            .await
            .unwrap();
        assert_eq!(meta.version, 2);
        let e = f
            .vault
            .resolve_source(&f.env, &RestoreSource::Version(7))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("the latest is v3"), "{e}");
    }

    #[test]
    fn sources_serialize_for_the_http_api() {
        let s: RestoreSource = serde_json::from_str(r#"{"version":12}"#).unwrap();
        assert_eq!(s, RestoreSource::Version(12));
        let s: RestoreSource = serde_json::from_str(r#"{"release":"1.4.0"}"#).unwrap();
        assert_eq!(s, RestoreSource::Release(Label::new("1.4.0").unwrap()));
        let s: RestoreSource = serde_json::from_str(r#"{"at":"2024-01-01T00:00:00Z"}"#).unwrap();
        assert!(matches!(s, RestoreSource::At(_)));
        let s: RestoreSource = serde_json::from_str(r#""latest""#).unwrap();
        assert_eq!(s, RestoreSource::Latest);
    }
}
