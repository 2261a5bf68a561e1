//! Reading releases: the pointer (plain or conditional), pages of history, one
//! history entry, and a release by label.

use futures::{StreamExt, TryStreamExt};

use super::{GET_CONCURRENCY, Release, ReleasePointer, no_release};
use crate::error::{Error, ErrorKind, Hint, Result, Step};
use crate::etag;
use crate::id::{EnvRef, Label};
use crate::layout;
use crate::store::Conditional;
use crate::vault::Vault;

impl Vault {
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
    pub(crate) async fn history_entry(&self, env: &EnvRef, seq: u64) -> Result<Option<Release>> {
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
        .with_next(Hint::steps(
            "look at the releases",
            [Step::ListReleases(env.into())],
        )))
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
}
