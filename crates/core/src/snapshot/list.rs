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

impl Vault {
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
