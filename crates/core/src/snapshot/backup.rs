//! Taking a snapshot: claims the next version with create-only, retrying after a lost
//! race, and skips content equal to the latest.

use bytes::Bytes;
use chrono::{SubsecRound, Utc};
use futures::future::{self, Either};

use super::{BackupOutcome, BackupRequest};
use crate::codec;
use crate::config::OnBackup;
use crate::crypt;
use crate::error::{Error, Result};
use crate::events::{Action, Event};
use crate::filter;
use crate::id::EnvRef;
use crate::layout;
use crate::live::LiveTarget;
use crate::meta::{
    M_IGNORING_SHA256, MAX_FREE_TEXT_METADATA, MAX_SCHEMA_ERROR_METADATA, SnapshotMeta, encode_text,
};
use crate::schema::{Doc, Violations};
use crate::store::PutMode;
use crate::vault::Vault;

/// How many times a backup re-reads the latest version after losing a race.
const MAX_CLAIM_ATTEMPTS: usize = 64;

impl Vault {
    /// Takes a snapshot of `req.raw` as the next version of `env`, unless it equals the
    /// latest snapshot (and `req.force` is off).
    ///
    /// The version is claimed by creating its key with create-only; a writer that loses
    /// the race re-reads the latest version and tries the next number, so versions have
    /// no gaps and no duplicates whatever the number of writers.
    ///
    /// # Errors
    /// `TooLarge` over the size limit, `InvalidInput` if the content is not JSON, the
    /// message is too long, or the content fails the environment's JSON Schema whose
    /// `on_backup` is `refuse` (for a trigger that may be refused, without
    /// `skip_schema_check`; otherwise it is stored and flagged): nothing is written in
    /// these cases; store errors otherwise.
    pub async fn backup(&self, env: &EnvRef, req: BackupRequest) -> Result<BackupOutcome> {
        self.backup_listed(env, req, std::future::ready(None)).await
    }

    /// [`Vault::backup`], with a listing of the latest snapshot the caller has started
    /// (`None`: none started), which the first attempt awaits instead of listing.
    async fn backup_listed(
        &self,
        env: &EnvRef,
        req: BackupRequest,
        listing: impl Future<Output = Option<Result<Option<SnapshotMeta>>>>,
    ) -> Result<BackupOutcome> {
        // A process's first compile of the schema runs beside the parse.
        self.options().schemas.prepare(env);
        let limit = self.options().max_size;
        if req.raw.len() as u64 > limit {
            return Err(Error::too_large(format!(
                "configuration for {env} is {} bytes, over the {limit}-byte limit; raise \
                 snapshots.max_size in the config if this is expected",
                req.raw.len()
            )));
        }
        // Two blocking threads: one parses, for the JSON check and, from the same parse,
        // the schema check (when the environment has a schema; its result is used only
        // before the first write: content equal to the latest is not checked again) and
        // the sha256 of the document without its ignore paths (when it has some: stored
        // with the snapshot, so that the next backup compares hashes instead of reading
        // this snapshot back; a live target's jaq read may have computed it already); the
        // other hashes and compresses.
        let level = self.options().compression_level;
        let what = format!("configuration for {env}");
        let schema = self
            .options()
            .schemas
            .get(env)
            .map(|_| (self.options().schemas.clone(), env.clone()));
        let digest = req
            .filters
            .clone()
            .filter(|f| !f.ignore_paths().is_empty() && req.ignoring_sha256.is_none());
        // Encrypted environments store age(zstd(json)); the metadata names the recipients.
        let recipients = self.options().encryption.recipients(env).cloned();
        let recipient_names = recipients.as_ref().map(|r| r.names().to_vec());
        let free_text: usize = [&req.actor.who, &req.message, &req.source]
            .iter()
            .filter_map(|t| t.as_ref().map(|t| encode_text(t).len()))
            .sum::<usize>()
            + recipient_names.as_ref().map_or(0, |r| r.join(",").len());
        if free_text > MAX_FREE_TEXT_METADATA {
            return Err(Error::invalid(format!(
                "author, message and source of the snapshot (and its age recipients) take \
                 {free_text} bytes once encoded; S3 metadata allows \
                 {MAX_FREE_TEXT_METADATA}: shorten the message (or name fewer recipients)"
            )));
        }
        // The computation runs beside the first store round trips (the LIST of the latest
        // version, and the read of the store's marker, which is created, if missing, only
        // once the JSON check has passed: nothing is written before the check).
        let (checked_tx, checked_rx) = tokio::sync::oneshot::channel::<()>();
        // A document the schema refuses must not even create the store's marker.
        let refuses = req.trigger.may_refuse_on_schema()
            && !req.skip_schema_check
            && self
                .options()
                .schemas
                .get(env)
                .is_some_and(|s| s.on_backup() == OnBackup::Refuse);
        let raw = req.raw.clone();
        let checking = tokio::task::spawn_blocking(move || {
            // The schema check needs repeated keys refused; the digest finds them itself.
            let doc = if schema.is_some() {
                Doc::parse(&raw)
            } else if digest.as_ref().is_some_and(|f| f.digests_parsed()) {
                Doc::parse_keeping_repeats(&raw)
            } else {
                None
            };
            // A document the borrowed parse takes is valid JSON; otherwise the JSON
            // check says why (or passes, for a repeated key).
            if doc.is_none() {
                codec::check_json(&raw, &what)?;
            }
            let schema_check = schema.map(|(schemas, env)| {
                schemas
                    .get(&env)
                    .map_or(Ok(None), |s| s.check_parsed(&env, &raw, doc.as_ref()))
            });
            if !(refuses && matches!(schema_check, Some(Ok(Some(_))))) {
                let _ = checked_tx.send(());
            }
            let ignoring =
                digest.and_then(|f| f.ignoring_sha256_parsed(&raw, doc.as_ref()).ok().flatten());
            Ok::<_, Error>((schema_check, ignoring))
        });
        let raw = req.raw.clone();
        let compressing = tokio::task::spawn_blocking(move || {
            let zstd = codec::compress(&raw, level)?;
            let stored = match &recipients {
                Some(r) => crypt::encrypt(&zstd, r)?,
                None => zstd,
            };
            Ok::<_, Error>((codec::sha256_hex(&raw), stored))
        });
        // The marker is read at once; written, into an empty store, once the check has
        // passed. A dropped sender is a failed check: its error comes from `checking`,
        // or the schema's refusal below.
        let marker = self.ensure_marker_after(async { checked_rx.await.is_ok() });
        // What the claim needs: the newest version's number (one LIST); and unless
        // forced, its metadata to compare with, from the same LIST while the history is
        // short (see `latest_in_one_list`).
        let force = req.force;
        let read_latest = || async move {
            if force {
                Ok(self.latest_version(env).await?.map(Latest::Number))
            } else {
                Ok::<_, Error>(
                    self.latest_in_one_list(env)
                        .await?
                        .map(|m| Latest::Meta(Box::new(m))),
                )
            }
        };
        let first_read = async {
            // A caller that has just read the latest (a restore) passes it in.
            if let Some(known) = &req.known_latest {
                return Ok(Some(Latest::Meta(Box::new(known.clone()))));
            }
            match listing.await {
                Some(Ok(listed)) => Ok(listed.map(|m| Latest::Meta(Box::new(m)))),
                // A listing that failed is made again, which reports its error.
                _ => read_latest().await,
            }
        };
        let (checked, compressed, marker, first_latest) =
            tokio::join!(checking, compressing, marker, first_read);
        let task = |e: tokio::task::JoinError| Error::internal(format!("backup task failed: {e}"));
        let (mut schema_check, ignored) = checked.map_err(task)??;
        let (sha256, compressed) = compressed.map_err(task)??;
        marker?;
        let mut first_latest = Some(first_latest?);
        let compressed = Bytes::from(compressed);
        let (mut violations, mut schema_overridden) = (None, false);

        let mut meta = SnapshotMeta {
            version: 0,
            sha256,
            size: req.raw.len() as u64,
            stored_size: compressed.len() as u64,
            created_at: Utc::now(),
            trigger: req.trigger,
            author: req.actor.who.clone(),
            message: req.message.clone(),
            source: req.source.clone(),
            key: String::new(),
            restored_from: req.restored_from,
            schema_errors: None,
            schema_error: None,
            recipients: recipient_names,
            ignoring_sha256: req.ignoring_sha256.clone().or(ignored),
        };
        for attempt in 0..MAX_CLAIM_ATTEMPTS {
            let latest = match first_latest.take() {
                // Read above, beside the computation (the marker check too): nothing is
                // written before both have succeeded.
                Some(latest) => latest,
                None => read_latest().await?,
            };
            if let Some(Latest::Meta(latest)) = &latest
                && !req.force
                && (latest.sha256 == meta.sha256
                    || self
                        .equal_ignoring(env, latest, &req, meta.ignoring_sha256.as_deref())
                        .await)
            {
                return Ok(BackupOutcome::Unchanged((**latest).clone()));
            }
            if let Some(check) = schema_check.take() {
                violations = check?;
                if let Some(v) = &violations {
                    schema_overridden = self.refuse_on_schema(env, &req, v)?;
                    meta.schema_errors = Some(v.count);
                    meta.schema_error = v
                        .first
                        .first()
                        .map(|first| schema_error_metadata(&first.to_string()));
                }
            }
            meta.version = latest.as_ref().map_or(1, |l| l.version() + 1);
            meta.key = layout::snapshot_key(env, meta.version);
            meta.created_at = Utc::now().trunc_subsecs(3);
            match self
                .store()
                .put(
                    &meta.key,
                    compressed.clone(),
                    &meta.to_metadata(),
                    PutMode::Create,
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(%env, version = meta.version, size = meta.size,
                        stored = meta.stored_size, trigger = %meta.trigger, "snapshot written");
                    let event = Event::now(Action::Backup, env, &req.actor)
                        .version(meta.version)
                        .details(serde_json::json!({
                            "trigger": meta.trigger,
                            "sha256": meta.sha256,
                            "size": meta.size,
                            "source": meta.source,
                            "restored_from": meta.restored_from,
                            "schema_violations": violations,
                            "schema_check_skipped": schema_overridden,
                        }));
                    // Both are written after the claim, at once: the event for the audit
                    // log, the index entry so that listings need no HEAD for it.
                    tokio::join!(
                        self.record_event_or_log(&event),
                        self.write_index_entry(env, &meta)
                    );
                    return Ok(BackupOutcome::Created(meta));
                }
                Err(e) if e.is_conflict() => {
                    tracing::debug!(%env, version = meta.version, attempt, "version taken, retrying");
                    let jitter = rand::random_range(0..(5 + 5 * attempt as u64).min(100));
                    tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
                }
                Err(e) => {
                    return Err(e.context(format!("writing snapshot v{} of {env}", meta.version)));
                }
            }
        }
        Err(Error::unavailable(format!(
            "could not claim a version for {env} after {MAX_CLAIM_ATTEMPTS} attempts: too \
             many concurrent writers; try again"
        )))
    }

    /// Whether `req.raw` equals the latest snapshot once the ignore paths of
    /// `req.filters` are left out; false without ignore paths, and when either side
    /// can't be compared (a new snapshot is then the safe outcome). `ignoring_sha256` is
    /// the new document's hash without them: when the latest snapshot's metadata holds
    /// its own, the two are compared (from the listing index, or else one HEAD); older
    /// snapshots are read and compared.
    async fn equal_ignoring(
        &self,
        env: &EnvRef,
        latest: &SnapshotMeta,
        req: &BackupRequest,
        ignoring_sha256: Option<&str>,
    ) -> bool {
        let Some(filters) = req
            .filters
            .as_ref()
            .filter(|f| !f.ignore_paths().is_empty())
        else {
            return false;
        };
        if let Some(new) = ignoring_sha256 {
            if let Some(stored) = &latest.ignoring_sha256 {
                return stored == new;
            }
            // An index entry written before the index carried the hash.
            match self.store().head(&latest.key).await {
                Ok(info) => {
                    if let Some(stored) = info.metadata.get(M_IGNORING_SHA256) {
                        return stored == new;
                    }
                }
                Err(e) => {
                    tracing::warn!(%env, version = latest.version, error = %e.report(),
                        "cannot read the latest snapshot's metadata; taking a new one");
                    return false;
                }
            }
        }
        let compared = async {
            // The new document is parsed while the latest is fetched.
            let (stored, new) = tokio::join!(
                self.get(env, latest.version),
                filter::normalized(filters, req.raw.clone())
            );
            let (_, stored) = stored?;
            Ok::<_, Error>(filter::normalized(filters, stored).await? == new?)
        };
        compared.await.unwrap_or_else(|e| {
            tracing::warn!(%env, version = latest.version, error = %e.report(),
                "cannot compare with the latest snapshot ignoring paths; taking a new one");
            false
        })
    }

    /// Whether `violations` refuse this backup: `Err` when the environment's
    /// `on_backup` is `refuse`, the trigger may be refused and the caller did not
    /// override; `Ok(true)` when the override let it through.
    fn refuse_on_schema(
        &self,
        env: &EnvRef,
        req: &BackupRequest,
        violations: &Violations,
    ) -> Result<bool> {
        let refuse = req.trigger.may_refuse_on_schema()
            && self
                .options()
                .schemas
                .get(env)
                .is_some_and(|s| s.on_backup() == OnBackup::Refuse);
        if refuse && !req.skip_schema_check {
            return Err(violations.refusal(&format!("to back up {env} (nothing was written)"), env));
        }
        Ok(refuse)
    }

    /// Reads `target` and snapshots what it holds (see [`Vault::backup`]).
    ///
    /// The latest snapshot is listed while live is read (and filtered): the backup's
    /// first store round trip hides behind the platform's. A listing made before the
    /// read may be stale by the time of the claim: a newer snapshot makes the
    /// create-only claim fail, and the latest is then read again; content equal to the
    /// listed latest is reported unchanged, and the next backup compares with the newer
    /// one.
    ///
    /// # Errors
    /// The target's errors (unreachable, too large), then those of `backup`.
    pub async fn backup_from_live(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        mut req: BackupRequest,
    ) -> Result<BackupOutcome> {
        // The schema compiles while live is read.
        self.options().schemas.prepare(env);
        let list_first = !req.force && req.known_latest.is_none();
        let listing = std::pin::pin!(async move {
            if list_first {
                Some(self.latest_in_one_list(env).await)
            } else {
                None
            }
        });
        let reading = std::pin::pin!(target.read_for_backup(self.options().max_size));
        // The backup's computation starts once live is read, beside a listing still
        // under way.
        let (read, listing) = match future::select(reading, listing).await {
            Either::Left((read, listing)) => (read, Either::Left(listing)),
            Either::Right((listed, reading)) => {
                (reading.await, Either::Right(future::ready(listed)))
            }
        };
        let (raw, ignoring_sha256) =
            read.map_err(|e| e.context(format!("reading the live configuration of {env}")))?;
        req.raw = raw;
        req.ignoring_sha256 = ignoring_sha256;
        req.source = Some(target.describe());
        req.filters = target.filters();
        self.backup_listed(env, req, listing).await
    }
}

/// The newest snapshot as a backup reads it: its number alone when forced.
enum Latest {
    Number(u64),
    Meta(Box<SnapshotMeta>),
}

impl Latest {
    fn version(&self) -> u64 {
        match self {
            Self::Number(v) => *v,
            Self::Meta(m) => m.version,
        }
    }
}

/// The first schema violation, shortened until it fits the metadata once encoded.
fn schema_error_metadata(text: &str) -> String {
    let mut max = MAX_SCHEMA_ERROR_METADATA;
    loop {
        let short = crate::schema::shorten(text, max);
        if encode_text(&short).len() <= MAX_SCHEMA_ERROR_METADATA || max == 0 {
            return short;
        }
        max /= 2;
    }
}
