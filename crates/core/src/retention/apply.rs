//! Applying a policy: gathers the snapshots and the protected set from the store,
//! re-checks the protected set just before deleting, deletes, records the event.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;

use futures::StreamExt;

use super::{
    Candidate, Protected, PruneOptions, PruneProgress, PruneReport, decide, describe_policy,
    policy_is_empty,
};
use crate::config::RetentionPolicy;
use crate::error::{Error, ErrorKind, Hint, Result, Step};
use crate::events::{Action, Event};
use crate::id::EnvRef;
use crate::layout;
use crate::vault::Vault;

/// How many HEAD or DELETE requests prune sends at once.
const CONCURRENCY: usize = 16;

impl Vault {
    /// Applies `policy` to `env`: deletes every snapshot the policy does not keep, never
    /// the latest, the released one, one in the release history, a pinned one, or one
    /// whose metadata can't be read. The protected set is read again just before
    /// deleting, so a version pinned or released meanwhile is spared. The scheduler
    /// calls this after a scheduled backup.
    ///
    /// # Errors
    /// `InvalidInput` for a policy with no rule; `Corrupt` if the release pointer or
    /// history can't be read (prune refuses rather than guess what is released); store
    /// errors (a failure while deleting says how many were deleted before it).
    pub async fn apply_retention(
        &self,
        env: &EnvRef,
        policy: &RetentionPolicy,
        opts: &PruneOptions,
    ) -> Result<PruneReport> {
        self.apply_retention_with_progress(env, policy, opts, &|_| {})
            .await
    }

    /// [`Vault::apply_retention`], reporting progress to `progress`.
    ///
    /// # Errors
    /// As [`Vault::apply_retention`].
    pub async fn apply_retention_with_progress(
        &self,
        env: &EnvRef,
        policy: &RetentionPolicy,
        opts: &PruneOptions,
        progress: &(dyn Fn(PruneProgress) + Send + Sync),
    ) -> Result<PruneReport> {
        if policy_is_empty(policy) {
            return Err(Error::invalid(format!(
                "no retention rule for {env}: refusing to prune (it would keep only the \
                 protected versions)"
            ))
            .with_next(Hint::steps(
                "give a retention rule, or set `retention` for the environment in the config",
                [Step::RetentionRule],
            )));
        }
        let now = opts.now.unwrap_or_else(Utc::now);
        // The listing index describes most snapshots; the rest cost a HEAD each.
        progress(PruneProgress::Reading { done: 0, total: 0 });
        let described = self.describe_snapshots(env, None, usize::MAX).await?;
        let total = described.len() as u64;
        progress(PruneProgress::Reading { done: total, total });
        let mut index_keys = BTreeMap::new();
        let mut metas = Vec::with_capacity(described.len());
        for (version, meta, entry) in described {
            if let Some(e) = entry {
                index_keys.insert(version, e.key);
            }
            metas.push((version, meta));
        }

        let mut protected = self.protected_versions(env).await?;
        let mut candidates = Vec::new();
        let mut stored_sizes = BTreeMap::new();
        for (version, meta) in metas {
            match meta {
                Ok(m) => {
                    stored_sizes.insert(m.version, m.stored_size);
                    candidates.push(Candidate {
                        version: m.version,
                        created_at: m.created_at,
                    });
                }
                // Deleted since the listing (another prune): nothing to decide.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) if e.kind() == ErrorKind::Corrupt => {
                    tracing::warn!(%env, version, error = %e.report(),
                        "snapshot metadata unreadable; kept");
                    protected.unreadable.insert(version);
                }
                Err(e) => return Err(e.context(format!("reading the snapshots of {env}"))),
            }
        }
        let mut decisions = decide(policy, now, &candidates, &protected);

        let mut spared = Vec::new();
        if !opts.dry_run && decisions.iter().any(|d| !d.keep) {
            // Re-read what protects versions: a pin or a release made since is honoured.
            let fresh = self.protected_versions(env).await?;
            for d in decisions.iter_mut().filter(|d| !d.keep) {
                if fresh.contains(d.version) {
                    d.keep = true;
                    d.reasons = fresh.reasons(d.version);
                    spared.push(d.version);
                }
            }
            protected = merge(protected, fresh);
        }

        let doomed: Vec<u64> = decisions
            .iter()
            .filter(|d| !d.keep)
            .map(|d| d.version)
            .collect();
        let freed_bytes = doomed
            .iter()
            .map(|v| stored_sizes.get(v).copied().unwrap_or(0))
            .sum();
        if !opts.dry_run && !doomed.is_empty() {
            let total = doomed.len() as u64;
            progress(PruneProgress::Deleting { done: 0, total });
            let done = std::sync::atomic::AtomicU64::new(0);
            // Oldest first: an interrupted prune leaves the history contiguous at the top.
            // Owned versions (not `&u64`): a closure over borrowed items makes the future
            // not provably `Send`, and the scheduler runs this in a spawned task.
            let results: Vec<Result<()>> = futures::stream::iter(doomed.iter().rev().copied())
                .map(|v| {
                    let done = &done;
                    let index_key = index_keys.get(&v).cloned();
                    async move {
                        // The index entry first: a snapshot without one is still listed.
                        let r = match &index_key {
                            Some(k) => self.store().delete(k).await,
                            None => Ok(()),
                        };
                        let r = match r {
                            Ok(()) => self.store().delete(&layout::snapshot_key(env, v)).await,
                            Err(e) => Err(e),
                        };
                        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        progress(PruneProgress::Deleting { done: n, total });
                        r
                    }
                })
                .buffered(CONCURRENCY)
                .collect()
                .await;
            let failed: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
            if let Some(first) = failed.first() {
                let deleted = results.len() - failed.len();
                let event =
                    Event::now(Action::Prune, env, &opts.actor).details(serde_json::json!({
                        "policy": describe_policy(policy),
                        "deleted": deleted,
                        "failed": failed.len(),
                        "error": first.report(),
                        "oldest_deleted": doomed.last(),
                        "newest_deleted": doomed.first(),
                    }));
                self.record_event_or_log(&event).await;
                return Err(Error::new(
                    first.kind(),
                    format!(
                        "pruning {env}: deleted {deleted} of {} snapshots, {} deletions \
                         failed: {}",
                        results.len(),
                        failed.len(),
                        first.report()
                    ),
                )
                .with_hint("run the same prune again once the store is reachable"));
            }
            let event = Event::now(Action::Prune, env, &opts.actor).details(serde_json::json!({
                "policy": describe_policy(policy),
                "kept": decisions.len() - doomed.len(),
                "deleted": doomed.len(),
                "freed_bytes": freed_bytes,
                "oldest_deleted": doomed.last(),
                "newest_deleted": doomed.first(),
            }));
            self.record_event_or_log(&event).await;
            tracing::info!(%env, deleted = doomed.len(), "pruned");
        }
        let stale_before = now.timestamp_millis()
            - i64::try_from(crate::claim::STALE_AFTER.as_millis()).unwrap_or(i64::MAX);
        let claims_swept =
            match crate::claim::sweep_stale(self.store().as_ref(), env, stale_before, opts.dry_run)
                .await
            {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(%env, error = %e.report(),
                        "could not sweep old scheduler claims; the next prune tries again");
                    0
                }
            };
        Ok(PruneReport {
            claims_swept,
            env: env.clone(),
            policy: policy.clone(),
            dry_run: opts.dry_run,
            protected,
            kept: decisions.len() - doomed.len(),
            deleted: doomed.len(),
            freed_bytes,
            spared,
            decisions,
        })
    }

    /// The versions retention must never delete (apart from the latest): pinned ones,
    /// the released one and every one in the release history.
    ///
    /// # Errors
    /// Store errors; `Corrupt` if the release pointer or a history entry can't be read.
    pub async fn protected_versions(&self, env: &EnvRef) -> Result<Protected> {
        let (pinned, (release, history)) =
            futures::try_join!(self.pins(env), self.released_versions(env))?;
        Ok(Protected {
            release,
            history,
            pinned,
            unreadable: BTreeSet::new(),
        })
    }

    /// The version the release pointer names and every version in the release history.
    async fn released_versions(&self, env: &EnvRef) -> Result<(Option<u64>, BTreeSet<u64>)> {
        let (pointer, history) =
            futures::try_join!(self.current_release(env), self.releases(env, usize::MAX)).map_err(
                |e| {
                    e.context(format!(
                        "reading the releases of {env}: refusing to prune, since the \
                         released versions can't be told"
                    ))
                },
            )?;
        Ok((
            pointer.map(|p| p.release.version),
            history.iter().map(|r| r.version).collect(),
        ))
    }
}

fn merge(mut a: Protected, b: Protected) -> Protected {
    a.release = b.release.or(a.release);
    a.history.extend(b.history);
    a.pinned.extend(b.pinned);
    a
}
