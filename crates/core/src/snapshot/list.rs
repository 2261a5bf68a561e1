//! Listing snapshots: pages of history (one LIST of the snapshots and one of the
//! listing index), the latest, every version, and the snapshot as of a time.

use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::{HEAD_CONCURRENCY, no_snapshots};
use crate::error::{Error, Hint, Result, Step};
use crate::id::EnvRef;
use crate::layout;
use crate::meta::SnapshotMeta;
use crate::vault::Vault;

/// How many keys [`Vault::latest_in_one_list`] reads in its one LIST: the index
/// entries, labels, pins and release records of an environment come before its newest
/// snapshot key, so a history of up to about this many versions (with retention, the
/// common case) is read in one request; 64 keys of about 200 bytes keep the answer
/// small.
pub const ONE_LIST_KEYS: usize = 64;

impl Vault {
    /// The newest snapshot of `env`, found with one LIST and one HEAD whatever the
    /// length of the history; `None` if it has none.
    ///
    /// # Errors
    /// Store errors; `Corrupt` if the newest object's metadata is unreadable.
    pub async fn latest(&self, env: &EnvRef) -> Result<Option<SnapshotMeta>> {
        Ok(self.list(env, None, 1).await?.into_iter().next())
    }

    /// The newest snapshot of `env`, as [`Vault::latest`] finds it, from one LIST in the
    /// common case: a backup's first read.
    ///
    /// The environment's keys in order after its audit events are its listing index
    /// (newest first), labels, pins, release records, then its snapshots (newest
    /// first): one LIST of up to [`ONE_LIST_KEYS`] keys from the index on holds both
    /// the newest index entry and the newest snapshot key while the history is short.
    /// A longer one takes a second LIST of the snapshots alone; a newest snapshot the
    /// page has no index entry for (encrypted, written before the index, or its entry
    /// lost) is read with a HEAD, as [`Vault::list`] does. The newest snapshot key is
    /// always listed, never inferred from the index, so the version claimed next is
    /// the one after the true newest.
    ///
    /// # Errors
    /// Store errors; `Corrupt` if the newest object's metadata is unreadable.
    pub async fn latest_in_one_list(&self, env: &EnvRef) -> Result<Option<SnapshotMeta>> {
        let index_prefix = layout::index_prefix(env);
        // `.../index` sorts after every `.../events/...` key and before the index.
        let start = index_prefix.trim_end_matches('/');
        let page = self
            .store()
            .list(&layout::env_prefix(env), Some(start), ONE_LIST_KEYS)
            .await?;
        let snapshots = layout::snapshots_prefix(env);
        let newest = page
            .objects
            .iter()
            .find(|o| o.key.starts_with(&snapshots) && layout::parse_snapshot_key(&o.key).is_some())
            .map(|o| o.key.clone());
        let key = match newest {
            Some(key) => key,
            None if !page.truncated => return Ok(None),
            None => match self.list_keys(env, None, 1).await?.into_iter().next() {
                Some(key) => key,
                None => return Ok(None),
            },
        };
        let version = layout::parse_snapshot_key(&key).unwrap_or_default();
        let entry = page
            .objects
            .iter()
            .filter(|o| o.key.starts_with(&index_prefix))
            .filter_map(|o| layout::parse_index_key(&o.key))
            .find(|(v, _)| *v == version)
            .and_then(|(v, payload)| crate::index::decode(env, v, payload));
        match entry {
            Some(meta) => Ok(Some(meta)),
            None => SnapshotMeta::from_object(&self.store().head(&key).await?).map(Some),
        }
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

    /// The newest version older than `version` (a diff's default base), from one
    /// LIST; `None` when `version` is the first.
    ///
    /// # Errors
    /// Store errors.
    pub async fn version_before(&self, env: &EnvRef, version: u64) -> Result<Option<u64>> {
        Ok(self
            .list_keys(env, Some(version), 1)
            .await?
            .first()
            .and_then(|k| layout::parse_snapshot_key(k)))
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
        .with_next(Hint::steps(
            "pick a later time, or look at the snapshots",
            [Step::LaterTime, Step::ListSnapshots(env.into())],
        )))
    }
}
