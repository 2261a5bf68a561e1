//! Snapshots: immutable, numbered, zstd-compressed copies of one environment's
//! configuration, with their metadata in the object's user metadata.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use futures::StreamExt;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Action, Actor, Event};
use crate::id::EnvRef;
use crate::layout;
use crate::live::LiveTarget;
use crate::store::{Metadata, ObjectInfo, PutMode};
use crate::vault::Vault;

/// What made a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// A person, from the CLI.
    Manual,
    /// The scheduler.
    Schedule,
    /// A call to the HTTP API.
    Api,
    /// An uploaded file (CLI `--from` or the HTTP upload route).
    Upload,
    /// The live configuration saved just before a restore overwrote it.
    PreRestore,
    /// A copy from another environment.
    Promote,
}

impl Trigger {
    /// The name stored in metadata and shown to people.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Schedule => "schedule",
            Self::Api => "api",
            Self::Upload => "upload",
            Self::PreRestore => "pre-restore",
            Self::Promote => "promote",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Trigger {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "manual" => Self::Manual,
            "schedule" => Self::Schedule,
            "api" => Self::Api,
            "upload" => Self::Upload,
            "pre-restore" => Self::PreRestore,
            "promote" => Self::Promote,
            other => return Err(Error::invalid(format!("unknown trigger {other:?}"))),
        })
    }
}

/// Everything known about one snapshot without its content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SnapshotMeta {
    /// The version number, 1, 2, 3 ... per environment.
    pub version: u64,
    /// sha256 of the raw configuration, lowercase hex.
    pub sha256: String,
    /// Raw size in bytes.
    pub size: u64,
    /// Compressed (stored) size in bytes.
    pub stored_size: u64,
    /// When it was taken (UTC).
    pub created_at: DateTime<Utc>,
    /// What made it.
    pub trigger: Trigger,
    /// Who made it.
    pub author: Option<String>,
    /// Why.
    pub message: Option<String>,
    /// Where the configuration came from (a live target, a file name, an upload).
    pub source: Option<String>,
    /// The object's key in the store.
    pub key: String,
}

// User metadata keys (S3 stores them as `x-amz-meta-<key>`).
const M_VERSION: &str = "jetvault-version";
const M_SHA256: &str = "jetvault-sha256";
const M_SIZE: &str = "jetvault-size";
const M_CREATED: &str = "jetvault-created-at";
const M_TRIGGER: &str = "jetvault-trigger";
const M_AUTHOR: &str = "jetvault-author";
const M_MESSAGE: &str = "jetvault-message";
const M_SOURCE: &str = "jetvault-source";
const M_CODEC: &str = "jetvault-codec";

/// S3 allows 2 KiB of user metadata in all; keep room for the fixed fields.
const MAX_FREE_TEXT_METADATA: usize = 1500;

/// Percent-encodes everything that is not a printable ASCII character (and `%`), so that
/// free text survives as an HTTP header value.
const HEADER_UNSAFE: &AsciiSet = &CONTROLS.add(b'%');

fn encode_text(s: &str) -> String {
    utf8_percent_encode(s, HEADER_UNSAFE).to_string()
}

fn decode_text(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

impl SnapshotMeta {
    /// The user metadata stored with the snapshot object.
    #[must_use]
    pub fn to_metadata(&self) -> Metadata {
        let mut m = Metadata::new();
        m.insert(M_VERSION.into(), self.version.to_string());
        m.insert(M_SHA256.into(), self.sha256.clone());
        m.insert(M_SIZE.into(), self.size.to_string());
        m.insert(
            M_CREATED.into(),
            self.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        );
        m.insert(M_TRIGGER.into(), self.trigger.as_str().into());
        m.insert(M_CODEC.into(), "zstd".into());
        for (k, v) in [
            (M_AUTHOR, &self.author),
            (M_MESSAGE, &self.message),
            (M_SOURCE, &self.source),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), encode_text(v));
            }
        }
        m
    }

    /// Reads the metadata of a snapshot object.
    ///
    /// # Errors
    /// `Corrupt` naming the key and the field that is missing or wrong.
    pub fn from_object(info: &ObjectInfo) -> Result<Self> {
        let m = &info.metadata;
        let field = |name: &str| {
            m.get(name).ok_or_else(|| {
                Error::corrupt(format!(
                    "snapshot object {} has no {name} metadata; run `jetvault verify`",
                    info.key
                ))
            })
        };
        let bad = |name: &str, v: &str| {
            Error::corrupt(format!(
                "snapshot object {} has an invalid {name} metadata value {v:?}",
                info.key
            ))
        };
        let version: u64 = field(M_VERSION)?
            .parse()
            .map_err(|_| bad(M_VERSION, &m[M_VERSION]))?;
        if layout::parse_snapshot_key(&info.key) != Some(version) {
            return Err(Error::corrupt(format!(
                "snapshot object {} says it is version {version}, which its key contradicts",
                info.key
            )));
        }
        let sha256 = field(M_SHA256)?.clone();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(M_SHA256, &sha256));
        }
        let size = field(M_SIZE)?
            .parse()
            .map_err(|_| bad(M_SIZE, &m[M_SIZE]))?;
        let created_at = DateTime::parse_from_rfc3339(field(M_CREATED)?)
            .map_err(|_| bad(M_CREATED, &m[M_CREATED]))?
            .with_timezone(&Utc);
        let trigger = field(M_TRIGGER)?
            .parse()
            .map_err(|_| bad(M_TRIGGER, &m[M_TRIGGER]))?;
        let text = |k: &str| m.get(k).map(|v| decode_text(v));
        Ok(Self {
            version,
            sha256,
            size,
            stored_size: info.size,
            created_at,
            trigger,
            author: text(M_AUTHOR),
            message: text(M_MESSAGE),
            source: text(M_SOURCE),
            key: info.key.clone(),
        })
    }
}

/// A new snapshot to take.
#[derive(Debug, Clone)]
pub struct BackupRequest {
    /// The raw configuration.
    pub raw: Bytes,
    /// What asked for it.
    pub trigger: Trigger,
    /// Who asked, through which front end (the snapshot's author is `actor.who`).
    pub actor: Actor,
    /// Why.
    pub message: Option<String>,
    /// Where the bytes came from.
    pub source: Option<String>,
    /// Write a snapshot even if the content equals the latest.
    pub force: bool,
}

impl BackupRequest {
    /// A request with just the content and trigger.
    #[must_use]
    pub fn new(raw: impl Into<Bytes>, trigger: Trigger) -> Self {
        Self {
            raw: raw.into(),
            trigger,
            actor: Actor::default(),
            message: None,
            source: None,
            force: false,
        }
    }
}

/// What a backup did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum BackupOutcome {
    /// A new snapshot was written.
    Created(SnapshotMeta),
    /// The content equals the latest snapshot's; nothing was written.
    Unchanged(SnapshotMeta),
}

impl BackupOutcome {
    /// The snapshot written, or the unchanged latest.
    #[must_use]
    pub fn snapshot(&self) -> &SnapshotMeta {
        match self {
            Self::Created(m) | Self::Unchanged(m) => m,
        }
    }
}

/// Which snapshot a command means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// A version number.
    Version(u64),
    /// The newest snapshot.
    Latest,
    /// The snapshot the environment's release pointer names.
    Release,
}

impl FromStr for Selector {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "latest" => return Ok(Self::Latest),
            "release" => return Ok(Self::Release),
            _ => {}
        }
        s.strip_prefix('v')
            .unwrap_or(s)
            .parse::<u64>()
            .ok()
            .filter(|v| (1..=layout::MAX_ORDINAL).contains(v))
            .map(Self::Version)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{s:?} is not a version: use a number such as 12 (or v12), latest or release"
                ))
            })
    }
}

/// How many HEAD requests a listing sends at once.
const HEAD_CONCURRENCY: usize = 16;
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
    /// `TooLarge` over the size limit, `InvalidInput` if the content is not JSON or the
    /// message is too long (nothing is written in these cases), store errors otherwise.
    pub async fn backup(&self, env: &EnvRef, req: BackupRequest) -> Result<BackupOutcome> {
        let limit = self.options().max_size;
        if req.raw.len() as u64 > limit {
            return Err(Error::too_large(format!(
                "configuration for {env} is {} bytes, over the {limit}-byte limit; raise \
                 snapshots.max_size in the config if this is expected",
                req.raw.len()
            )));
        }
        let level = self.options().compression_level;
        let raw = req.raw.clone();
        let what = format!("configuration for {env}");
        let (sha256, compressed) = tokio::task::spawn_blocking(move || {
            codec::check_json(&raw, &what)?;
            Ok::<_, Error>((codec::sha256_hex(&raw), codec::compress(&raw, level)?))
        })
        .await
        .map_err(|e| Error::internal(format!("compression task failed: {e}")))??;
        let compressed = Bytes::from(compressed);

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
        };
        let free_text: usize = [&meta.author, &meta.message, &meta.source]
            .iter()
            .filter_map(|t| t.as_ref().map(|t| encode_text(t).len()))
            .sum();
        if free_text > MAX_FREE_TEXT_METADATA {
            return Err(Error::invalid(format!(
                "author, message and source of the snapshot take {free_text} bytes once \
                 encoded; S3 metadata allows {MAX_FREE_TEXT_METADATA}: shorten the message"
            )));
        }
        for attempt in 0..MAX_CLAIM_ATTEMPTS {
            let latest = if attempt == 0 {
                // The marker check (once per vault) and the first read side by side:
                // nothing is written before both have succeeded.
                let (marker, latest) = tokio::join!(self.ensure_marker(), self.latest(env));
                marker?;
                latest?
            } else {
                self.latest(env).await?
            };
            if let Some(latest) = &latest
                && !req.force
                && latest.sha256 == meta.sha256
            {
                return Ok(BackupOutcome::Unchanged(latest.clone()));
            }
            meta.version = latest.as_ref().map_or(1, |l| l.version + 1);
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

    /// Reads `target` and snapshots what it holds (see [`Vault::backup`]).
    ///
    /// # Errors
    /// The target's errors (unreachable, too large), then those of `backup`.
    pub async fn backup_from_live(
        &self,
        env: &EnvRef,
        target: &dyn LiveTarget,
        mut req: BackupRequest,
    ) -> Result<BackupOutcome> {
        let raw = target
            .read(self.options().max_size)
            .await
            .map_err(|e| e.context(format!("reading the live configuration of {env}")))?;
        req.raw = raw;
        req.source = Some(target.describe());
        self.backup(env, req).await
    }

    /// The newest snapshot of `env`, found with one LIST and one HEAD whatever the
    /// length of the history; `None` if it has none.
    ///
    /// # Errors
    /// Store errors; `Corrupt` if the newest object's metadata is unreadable.
    pub async fn latest(&self, env: &EnvRef) -> Result<Option<SnapshotMeta>> {
        Ok(self.list(env, None, 1).await?.into_iter().next())
    }

    /// Up to `limit` snapshots of `env`, newest first, older than `before` if given.
    ///
    /// One LIST of the snapshots and one of the listing index, side by side; a HEAD
    /// only for a snapshot the index does not describe.
    ///
    /// # Errors
    /// Store errors; `Corrupt` for a snapshot whose metadata is unreadable.
    pub async fn list(
        &self,
        env: &EnvRef,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<SnapshotMeta>> {
        self.describe_snapshots(env, before, limit)
            .await?
            .into_iter()
            .map(|(_, meta, _)| meta)
            .collect()
    }

    /// Like [`Vault::list`], but with each snapshot's own result (an unreadable one does
    /// not hide the others) and its index entry: what prune and verify need.
    ///
    /// # Errors
    /// Store errors listing the snapshots.
    pub async fn describe_snapshots(
        &self,
        env: &EnvRef,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Result<SnapshotMeta>, Option<crate::index::Entry>)>> {
        let (keys, mut index) = tokio::join!(
            self.list_keys(env, before, limit),
            self.index_entries(env, before, limit)
        );
        let described = futures::stream::iter(keys?)
            .map(|key| {
                let version = layout::parse_snapshot_key(&key).unwrap_or_default();
                let entry = index.remove(&version);
                async move {
                    let meta = match &entry {
                        Some(e) => Ok(e.meta.clone()),
                        None => match self.store().head(&key).await {
                            Ok(info) => SnapshotMeta::from_object(&info),
                            Err(e) => Err(e),
                        },
                    };
                    (version, meta, entry)
                }
            })
            .buffered(HEAD_CONCURRENCY)
            .collect()
            .await;
        Ok(described)
    }

    /// The keys of up to `limit` snapshots, newest first, older than `before`.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list_keys(
        &self,
        env: &EnvRef,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<String>> {
        self.list_parsed_keys(
            &layout::snapshots_prefix(env),
            before.map(|v| layout::snapshot_key(env, v)),
            limit,
            layout::parse_snapshot_key,
        )
        .await
    }

    /// Every snapshot version of `env`, newest first (a LIST per 1000 versions, no HEAD).
    ///
    /// # Errors
    /// Store errors.
    pub async fn all_versions(&self, env: &EnvRef) -> Result<Vec<u64>> {
        Ok(self
            .list_keys(env, None, usize::MAX)
            .await?
            .iter()
            .filter_map(|k| layout::parse_snapshot_key(k))
            .collect())
    }

    /// The metadata of snapshot `version`.
    ///
    /// # Errors
    /// `NotFound` naming the nearest versions that exist; `Corrupt` for unreadable
    /// metadata.
    pub async fn snapshot_meta(&self, env: &EnvRef, version: u64) -> Result<SnapshotMeta> {
        match self.store().head(&layout::snapshot_key(env, version)).await {
            Ok(info) => SnapshotMeta::from_object(&info),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                Err(self.version_not_found(env, version).await)
            }
            Err(e) => Err(e),
        }
    }

    /// Resolves a selector to a snapshot.
    ///
    /// # Errors
    /// `NotFound` if the environment has no snapshot (for `latest`), no release (for
    /// `release`), or the version does not exist.
    pub async fn resolve(&self, env: &EnvRef, selector: &Selector) -> Result<SnapshotMeta> {
        match selector {
            Selector::Version(v) => self.snapshot_meta(env, *v).await,
            Selector::Latest => self.latest(env).await?.ok_or_else(|| no_snapshots(env)),
            Selector::Release => {
                let pointer = self
                    .current_release(env)
                    .await?
                    .ok_or_else(|| crate::release::no_release(env))?;
                let release = &pointer.release;
                self.snapshot_meta(env, release.version).await.map_err(|e| {
                    e.context(format!(
                        "release {} (r{}) of {env} names v{}",
                        release.label, release.seq, release.version
                    ))
                })
            }
        }
    }

    /// The stored (compressed) bytes of snapshot `version` with its metadata, checked
    /// against the stored size; not decompressed.
    ///
    /// # Errors
    /// `NotFound` naming the nearest versions; `Corrupt` for unreadable metadata.
    pub async fn get_stored(&self, env: &EnvRef, version: u64) -> Result<(SnapshotMeta, Bytes)> {
        let obj = match self.store().get(&layout::snapshot_key(env, version)).await {
            Ok(obj) => obj,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(self.version_not_found(env, version).await);
            }
            Err(e) => return Err(e),
        };
        let meta = SnapshotMeta::from_object(&obj.info)?;
        Ok((meta, obj.bytes))
    }

    /// The raw configuration of snapshot `version`, decompressed and checked against its
    /// sha256 and size.
    ///
    /// # Errors
    /// `NotFound` naming the nearest versions; `Corrupt` if the content fails a check.
    pub async fn get(&self, env: &EnvRef, version: u64) -> Result<(SnapshotMeta, Bytes)> {
        let (meta, stored) = self.get_stored(env, version).await?;
        let raw =
            decode_snapshot(env, &meta, stored, self.options().max_size.max(meta.size)).await?;
        Ok((meta, raw))
    }

    /// A `NotFound` error for a missing version that names the nearest versions that
    /// exist (two LISTs at most).
    async fn version_not_found(&self, env: &EnvRef, version: u64) -> Error {
        let Ok(Some(latest)) = self.latest_version(env).await else {
            return no_snapshots(env);
        };
        let mut near = Vec::new();
        if version < latest {
            if let Ok(keys) = self.list_keys(env, Some(version), 1).await
                && let Some(down) = keys.first().and_then(|k| layout::parse_snapshot_key(k))
            {
                near.push(format!("v{down}"));
            }
            // Keys sort newest first: start just above `version` + 100 and keep what is
            // newer than `version`; the smallest of those is the nearest newer version.
            let window = 100;
            if let Ok(keys) = self
                .list_keys(
                    env,
                    Some(version.saturating_add(window + 1)),
                    window as usize + 1,
                )
                .await
                && let Some(up) = keys
                    .iter()
                    .filter_map(|k| layout::parse_snapshot_key(k))
                    .filter(|v| *v > version)
                    .min()
            {
                near.push(format!("v{up}"));
            }
        }
        let near = if near.is_empty() {
            String::new()
        } else {
            format!("; the nearest are {}", near.join(" and "))
        };
        Error::not_found(format!(
            "snapshot v{version} of {env} not found{near}; the latest is v{latest}"
        ))
        .with_hint(format!("run `jetvault list {} {}`", env.app, env.env))
    }

    /// The newest version number of `env`, from one LIST.
    ///
    /// # Errors
    /// Store errors.
    pub async fn latest_version(&self, env: &EnvRef) -> Result<Option<u64>> {
        Ok(self
            .list_keys(env, None, 1)
            .await?
            .first()
            .and_then(|k| layout::parse_snapshot_key(k)))
    }
}

/// The error for an environment with no snapshot at all.
pub fn no_snapshots(env: &EnvRef) -> Error {
    Error::not_found(format!("{env} has no snapshots")).with_hint(format!(
        "take one with `jetvault backup {} {}` (or check the app and env names)",
        env.app, env.env
    ))
}

/// Decompresses a stored snapshot and checks its size and sha256 against its metadata.
///
/// # Errors
/// `Corrupt` naming the snapshot and what failed.
pub async fn decode_snapshot(
    env: &EnvRef,
    meta: &SnapshotMeta,
    stored: Bytes,
    limit: u64,
) -> Result<Bytes> {
    let what = format!("snapshot v{} of {env}", meta.version);
    let expected_sha = meta.sha256.clone();
    let expected_size = meta.size;
    tokio::task::spawn_blocking(move || {
        let raw = codec::decompress(&stored, limit, &what)?;
        if raw.len() as u64 != expected_size {
            return Err(Error::corrupt(format!(
                "{what} decompresses to {} bytes, but its metadata says {expected_size}",
                raw.len()
            )));
        }
        let sha = codec::sha256_hex(&raw);
        if sha != expected_sha {
            return Err(Error::corrupt(format!(
                "{what} fails its checksum: sha256 is {sha}, metadata says {expected_sha}"
            )));
        }
        Ok(Bytes::from(raw))
    })
    .await
    .map_err(|e| Error::internal(format!("decompression task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::store::{CountingStore, LocalStore, Store};
    use crate::vault::VaultOptions;

    const SMALL: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/nodered-http-endpoint-example.json"
    ));
    const MEDIUM: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/grafana-k8s-views-nodes.json"
    ));

    fn env() -> EnvRef {
        EnvRef::parse("crm", "production").unwrap()
    }

    fn vault(dir: &tempfile::TempDir) -> (Vault, CountingStore) {
        let store = CountingStore::new(Arc::new(LocalStore::open(dir.path()).unwrap()));
        let vault = Vault::new(Arc::new(store.clone()), VaultOptions::default());
        (vault, store)
    }

    /// A distinct, valid variant of a corpus document.
    fn variant(base: &[u8], n: usize) -> Bytes {
        let mut v: serde_json::Value = serde_json::from_slice(base).unwrap();
        match &mut v {
            serde_json::Value::Object(m) => {
                m.insert("jetvaultTestEdit".into(), n.into());
            }
            serde_json::Value::Array(a) => a.push(n.into()),
            _ => unreachable!(),
        }
        Bytes::from(serde_json::to_vec(&v).unwrap())
    }

    fn req(raw: impl Into<Bytes>) -> BackupRequest {
        let mut r = BackupRequest::new(raw, Trigger::Manual);
        r.actor.who = Some("tester".into());
        r
    }

    #[tokio::test]
    async fn backup_dedups_unless_forced_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let (v, _) = vault(&dir);
        let mut r = req(MEDIUM);
        r.message = Some("first ✓ 100% done".into());
        let BackupOutcome::Created(m1) = v.backup(&env(), r).await.unwrap() else {
            panic!()
        };
        assert_eq!(m1.version, 1);
        assert_eq!(m1.sha256, codec::sha256_hex(MEDIUM));
        assert!(m1.stored_size < m1.size);
        let again = v.backup(&env(), req(MEDIUM)).await.unwrap();
        assert_eq!(again, BackupOutcome::Unchanged(m1.clone()));
        let mut forced = req(MEDIUM);
        forced.force = true;
        assert_eq!(
            v.backup(&env(), forced).await.unwrap().snapshot().version,
            2
        );
        let (meta, raw) = v.get(&env(), 1).await.unwrap();
        assert_eq!(&raw[..], MEDIUM);
        assert_eq!(meta.message.as_deref(), Some("first ✓ 100% done"));
        assert_eq!(meta.author.as_deref(), Some("tester"));
        assert_eq!(meta, m1);
        // The stored object is a plain zstd frame of the original bytes.
        let stored = std::fs::read(dir.path().join(&m1.key)).unwrap();
        assert_eq!(zstd::decode_all(&stored[..]).unwrap(), MEDIUM);
    }

    #[tokio::test]
    async fn bad_input_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (v, store) = vault(&dir);
        let e = v.backup(&env(), req(&b"{\"a\": "[..])).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let small = Vault::new(
            Arc::new(store.clone()),
            VaultOptions {
                max_size: 100,
                ..VaultOptions::default()
            },
        );
        let e = small.backup(&env(), req(SMALL)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TooLarge);
        let mut long = req(SMALL);
        long.message = Some("é".repeat(600));
        assert_eq!(
            v.backup(&env(), long).await.unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            store.counts().put.load(Ordering::Relaxed),
            0,
            "nothing may be written"
        );
        assert!(v.latest(&env()).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn latest_costs_the_same_whatever_the_history() {
        let dir = tempfile::tempdir().unwrap();
        let (v, store) = vault(&dir);
        let mut cost = Vec::new();
        for n in 0..300 {
            v.backup(&env(), req(variant(SMALL, n))).await.unwrap();
            if n == 0 || n == 299 {
                let before = store.counts().total();
                let latest = v.latest(&env()).await.unwrap().unwrap();
                assert_eq!(latest.version, n as u64 + 1);
                cost.push(store.counts().total() - before);
            }
        }
        assert_eq!(
            cost,
            vec![2, 2],
            "one LIST and one HEAD, at 1 and at 300 versions"
        );
    }

    #[tokio::test]
    async fn a_page_is_two_lists_and_falls_back_to_head_without_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let (v, store) = vault(&dir);
        for n in 0..60 {
            let mut r = req(variant(SMALL, n));
            r.message = Some(format!("edit {n}"));
            v.backup(&env(), r).await.unwrap();
        }
        let before = store.counts().total();
        let page = v.list(&env(), None, 50).await.unwrap();
        assert_eq!(
            store.counts().total() - before,
            2,
            "one LIST of snapshots, one of the index"
        );
        assert_eq!(page.len(), 50);
        assert_eq!(page[0].version, 60);
        // What the index says is what the snapshot's own metadata says.
        for m in &page[..3] {
            assert_eq!(m, &v.snapshot_meta(&env(), m.version).await.unwrap());
        }
        // Without its index entry a snapshot costs a HEAD, and is listed the same.
        let entry = v.index_entries(&env(), Some(59), 1).await;
        let (_, e) = entry.iter().next().unwrap();
        assert_eq!(e.meta.version, 58);
        store.delete(&e.key).await.unwrap();
        let before = store.counts().total();
        let again = v.list(&env(), None, 50).await.unwrap();
        assert_eq!(store.counts().total() - before, 3);
        assert_eq!(again, page);
        // An index entry whose snapshot is gone is ignored.
        store
            .delete(&layout::snapshot_key(&env(), 60))
            .await
            .unwrap();
        let after = v.list(&env(), None, 3).await.unwrap();
        assert_eq!(
            after.iter().map(|m| m.version).collect::<Vec<_>>(),
            vec![59, 58, 57]
        );
        assert_eq!(v.latest(&env()).await.unwrap().unwrap().version, 59);
    }

    #[tokio::test]
    async fn racing_writers_get_distinct_versions_without_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let (v, _) = vault(&dir);
        let tasks: Vec<_> = (0..8)
            .map(|w| {
                let v = v.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    for i in 0..10 {
                        let raw = variant(SMALL, w * 100 + i);
                        let out = v.backup(&env(), req(raw.clone())).await.unwrap();
                        let BackupOutcome::Created(m) = out else {
                            panic!("distinct content")
                        };
                        mine.push((m.version, raw));
                    }
                    mine
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort_by_key(|(v, _)| *v);
        let versions: Vec<u64> = all.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, (1..=80).collect::<Vec<_>>());
        for (version, raw) in &all {
            assert_eq!(&v.get(&env(), *version).await.unwrap().1, raw);
        }
    }

    #[tokio::test]
    async fn replicas_backing_up_the_same_content_write_one_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let (v, _) = vault(&dir);
        let outcomes = {
            let e = env();
            futures::future::join_all((0..6).map(|_| v.backup(&e, req(MEDIUM)))).await
        };
        let created = outcomes
            .iter()
            .filter(|o| matches!(o, Ok(BackupOutcome::Created(_))))
            .count();
        assert_eq!(created, 1, "{outcomes:?}");
        assert_eq!(v.all_versions(&env()).await.unwrap(), vec![1]);
    }

    #[tokio::test]
    async fn listing_pages_and_missing_versions() {
        let dir = tempfile::tempdir().unwrap();
        let (v, _) = vault(&dir);
        for n in 0..12 {
            v.backup(&env(), req(variant(SMALL, n))).await.unwrap();
        }
        let page: Vec<u64> = v
            .list(&env(), None, 5)
            .await
            .unwrap()
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(page, vec![12, 11, 10, 9, 8]);
        let next: Vec<u64> = v
            .list(&env(), Some(8), 5)
            .await
            .unwrap()
            .iter()
            .map(|m| m.version)
            .collect();
        assert_eq!(next, vec![7, 6, 5, 4, 3]);
        std::fs::remove_file(dir.path().join(layout::snapshot_key(&env(), 6))).unwrap();
        let e = v.get(&env(), 6).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(e.to_string().contains("nearest are v5 and v7"), "{e}");
        let e = v.snapshot_meta(&env(), 40).await.unwrap_err();
        assert!(e.to_string().contains("the latest is v12"), "{e}");
        let other = EnvRef::parse("crm", "staging").unwrap();
        let e = v.resolve(&other, &Selector::Latest).await.unwrap_err();
        assert!(
            e.to_string().contains("crm/staging has no snapshots"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_flipped_byte_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let (v, _) = vault(&dir);
        let m = v
            .backup(&env(), req(MEDIUM))
            .await
            .unwrap()
            .snapshot()
            .clone();
        let path = dir.path().join(&m.key);
        let mut bytes = std::fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x01;
        std::fs::write(&path, bytes).unwrap();
        let e = v.get(&env(), 1).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        assert!(
            e.to_string().contains("snapshot v1 of crm/production"),
            "{e}"
        );
    }

    #[test]
    fn selectors() {
        assert_eq!("latest".parse::<Selector>().unwrap(), Selector::Latest);
        assert_eq!("v12".parse::<Selector>().unwrap(), Selector::Version(12));
        assert_eq!("12".parse::<Selector>().unwrap(), Selector::Version(12));
        for bad in ["0", "-1", "x", "", "v"] {
            assert!(bad.parse::<Selector>().is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_round_trip() {
        let m = SnapshotMeta {
            version: 7,
            sha256: codec::sha256_hex(b"x"),
            size: 1,
            stored_size: 10,
            created_at: Utc::now(),
            trigger: Trigger::PreRestore,
            author: Some("Zoë <z@x>".into()),
            message: Some("line1\nline2 50%".into()),
            source: Some("https://x/export".into()),
            key: layout::snapshot_key(&env(), 7),
        };
        let info = ObjectInfo {
            key: m.key.clone(),
            size: 10,
            etag: "\"e\"".into(),
            last_modified: None,
            metadata: m.to_metadata(),
        };
        assert!(
            info.metadata
                .values()
                .all(|v| v.is_ascii() && !v.contains('\n'))
        );
        let back = SnapshotMeta::from_object(&info).unwrap();
        assert_eq!(
            back.created_at.timestamp_millis(),
            m.created_at.timestamp_millis()
        );
        assert_eq!(back.message, m.message);
        assert_eq!(back.author, m.author);
        let mut wrong_key = info.clone();
        wrong_key.key = layout::snapshot_key(&env(), 8);
        assert_eq!(
            SnapshotMeta::from_object(&wrong_key).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }
}
