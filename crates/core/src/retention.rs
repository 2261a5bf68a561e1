//! Retention: which snapshots prune keeps and which it deletes.
//!
//! The policy itself is a pure function ([`decide`]) from the versions, their creation
//! times and the protected set to a keep/delete decision with the reasons for each. A
//! protected version (the latest, the released one, any in the release history, a
//! pinned one, one whose metadata can't be read) is always kept, whatever the policy.
//! [`Vault::apply_retention`] gathers the inputs from the store, re-checks the
//! protected set just before deleting, and deletes.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc};
use futures::StreamExt;
use serde::Serialize;

use crate::config::RetentionPolicy;
use crate::error::{Error, ErrorKind, Result};
use crate::events::{Action, Actor, Event};
use crate::id::EnvRef;
use crate::layout;
use crate::vault::Vault;

/// One snapshot as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Its version.
    pub version: u64,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
}

/// Versions that are kept whatever the policy says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Protected {
    /// The version the release pointer names.
    pub release: Option<u64>,
    /// Every version named in the release history.
    pub history: BTreeSet<u64>,
    /// Pinned versions.
    pub pinned: BTreeSet<u64>,
    /// Versions whose metadata could not be read (kept for `verify` to report).
    pub unreadable: BTreeSet<u64>,
}

impl Protected {
    /// Whether `v` is protected by anything other than being the latest.
    #[must_use]
    pub fn contains(&self, v: u64) -> bool {
        self.release == Some(v)
            || self.history.contains(&v)
            || self.pinned.contains(&v)
            || self.unreadable.contains(&v)
    }

    /// What protects `v` (empty if nothing does; being the latest is not known here).
    #[must_use]
    pub fn reasons(&self, v: u64) -> Vec<KeepReason> {
        let mut r = Vec::new();
        if self.release == Some(v) {
            r.push(KeepReason::Released);
        }
        if self.history.contains(&v) {
            r.push(KeepReason::ReleaseHistory);
        }
        if self.pinned.contains(&v) {
            r.push(KeepReason::Pinned);
        }
        if self.unreadable.contains(&v) {
            r.push(KeepReason::Unreadable);
        }
        r
    }
}

/// Why a version is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    /// The newest snapshot.
    Latest,
    /// The current release.
    Released,
    /// Named in the release history.
    ReleaseHistory,
    /// Pinned.
    Pinned,
    /// Its metadata is unreadable: never deleted blindly.
    Unreadable,
    /// Among the newest `keep_last`.
    Last,
    /// The newest of one of the last `keep_daily` days.
    Daily,
    /// The newest of one of the last `keep_weekly` weeks.
    Weekly,
    /// The newest of one of the last `keep_monthly` months.
    Monthly,
    /// Younger than `keep_within`.
    Within,
}

impl KeepReason {
    /// Whether the reason is a protection rather than a policy rule.
    #[must_use]
    pub fn is_protection(self) -> bool {
        matches!(
            self,
            Self::Latest | Self::Released | Self::ReleaseHistory | Self::Pinned | Self::Unreadable
        )
    }

    /// The name shown to people.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Latest => "latest",
            Self::Released => "released",
            Self::ReleaseHistory => "release-history",
            Self::Pinned => "pinned",
            Self::Unreadable => "unreadable",
            Self::Last => "last",
            Self::Daily => "daily",
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Within => "within",
        }
    }
}

/// The decision for one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The version.
    pub version: u64,
    /// When it was taken (`None` if its metadata is unreadable).
    pub created_at: Option<DateTime<Utc>>,
    /// Whether it is kept.
    pub keep: bool,
    /// Why it is kept (empty for a deleted version: no rule keeps it).
    pub reasons: Vec<KeepReason>,
}

/// Whether a policy has no rule at all (applying it would keep only protected
/// versions, which is never what anyone means).
#[must_use]
pub fn policy_is_empty(p: &RetentionPolicy) -> bool {
    p.keep_last.is_none()
        && p.keep_daily.is_none()
        && p.keep_weekly.is_none()
        && p.keep_monthly.is_none()
        && p.keep_within.is_none()
}

/// A one-line description of a policy, e.g. `keep-last 10, keep-daily 7`.
#[must_use]
pub fn describe_policy(p: &RetentionPolicy) -> String {
    let mut parts = Vec::new();
    for (name, n) in [
        ("keep-last", p.keep_last),
        ("keep-daily", p.keep_daily),
        ("keep-weekly", p.keep_weekly),
        ("keep-monthly", p.keep_monthly),
    ] {
        if let Some(n) = n {
            parts.push(format!("{name} {n}"));
        }
    }
    if let Some(d) = p.keep_within {
        parts.push(format!("keep-within {}", humantime::format_duration(d)));
    }
    if parts.is_empty() {
        "no rule".into()
    } else {
        parts.join(", ")
    }
}

/// Decides, for every snapshot, whether `policy` keeps it, as of `now`.
///
/// `snapshots` may come in any order; versions in `protected.unreadable` need not be in
/// it. The result lists every version once, newest first. The newest version and every
/// protected one are always kept. A time rule (`keep_daily` and so on) keeps the
/// newest version of each of the last N UTC days, ISO weeks or months that have one.
#[must_use]
pub fn decide(
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
    snapshots: &[Candidate],
    protected: &Protected,
) -> Vec<Decision> {
    let mut by_version: BTreeMap<u64, Option<DateTime<Utc>>> = BTreeMap::new();
    for c in snapshots {
        by_version.insert(c.version, Some(c.created_at));
    }
    for v in &protected.unreadable {
        by_version.entry(*v).or_insert(None);
    }
    let latest = by_version.keys().next_back().copied();

    let mut reasons: BTreeMap<u64, Vec<KeepReason>> = BTreeMap::new();
    let mut keep = |v: u64, r: KeepReason| reasons.entry(v).or_default().push(r);

    // Protections first.
    for &v in by_version.keys() {
        if Some(v) == latest {
            keep(v, KeepReason::Latest);
        }
        for r in protected.reasons(v) {
            keep(v, r);
        }
    }

    // Policy rules, over the readable versions, newest first.
    let dated: Vec<(u64, DateTime<Utc>)> = by_version
        .iter()
        .rev()
        .filter_map(|(v, t)| t.map(|t| (*v, t)))
        .collect();
    if let Some(n) = policy.keep_last {
        for (v, _) in dated.iter().take(n as usize) {
            keep(*v, KeepReason::Last);
        }
    }
    let mut bucketed =
        |n: Option<u32>, reason: KeepReason, bucket: &dyn Fn(DateTime<Utc>) -> i64| {
            let Some(n) = n else { return };
            let mut seen = HashSet::new();
            for (v, t) in &dated {
                if seen.len() >= n as usize {
                    break;
                }
                if seen.insert(bucket(*t)) {
                    keep(*v, reason);
                }
            }
        };
    bucketed(policy.keep_daily, KeepReason::Daily, &|t| {
        i64::from(t.date_naive().num_days_from_ce())
    });
    bucketed(policy.keep_weekly, KeepReason::Weekly, &|t| {
        let w = t.iso_week();
        i64::from(w.year()) * 100 + i64::from(w.week())
    });
    bucketed(policy.keep_monthly, KeepReason::Monthly, &|t| {
        i64::from(t.year()) * 100 + i64::from(t.month())
    });
    if let Some(within) = policy.keep_within {
        let within = chrono::Duration::from_std(within).unwrap_or(chrono::Duration::MAX);
        let cutoff = now.checked_sub_signed(within);
        for (v, t) in &dated {
            if cutoff.is_none_or(|c| *t > c) {
                keep(*v, KeepReason::Within);
            }
        }
    }

    by_version
        .iter()
        .rev()
        .map(|(v, t)| {
            let mut r = reasons.remove(v).unwrap_or_default();
            r.sort_unstable();
            r.dedup();
            Decision {
                version: *v,
                created_at: *t,
                keep: !r.is_empty(),
                reasons: r,
            }
        })
        .collect()
}

/// How `apply_retention` runs.
#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Decide and report, delete nothing.
    pub dry_run: bool,
    /// Who prunes (for the audit event).
    pub actor: Actor,
    /// The time the policy is evaluated at (now if `None`).
    pub now: Option<DateTime<Utc>>,
}

/// Progress of a prune, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneProgress {
    /// `done` of `total` snapshots' metadata read.
    Reading {
        /// Read so far.
        done: u64,
        /// To read.
        total: u64,
    },
    /// `done` of `total` snapshots deleted.
    Deleting {
        /// Deleted so far.
        done: u64,
        /// To delete.
        total: u64,
    },
}

/// What a prune decided and did.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    /// The environment.
    pub env: EnvRef,
    /// The policy applied.
    pub policy: RetentionPolicy,
    /// Whether nothing was deleted on purpose.
    pub dry_run: bool,
    /// What protected versions from deletion.
    pub protected: Protected,
    /// How many versions are kept.
    pub kept: usize,
    /// How many versions were deleted (or would be, on a dry run).
    pub deleted: usize,
    /// Stored bytes freed (or that would be).
    pub freed_bytes: u64,
    /// Versions that became protected (pinned, released) while prune ran, and were
    /// therefore not deleted.
    pub spared: Vec<u64>,
    /// Every version, newest first, with its decision.
    pub decisions: Vec<Decision>,
}

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
            .with_hint(
                "pass --keep-last/--keep-daily/--keep-weekly/--keep-monthly/--keep-within, \
                 or set `retention` for the environment in the config",
            ));
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
        Ok(PruneReport {
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

/// Parses a `--keep-within` value such as `30d` or `12h`.
///
/// # Errors
/// `InvalidInput` naming the value.
pub fn parse_duration(s: &str) -> Result<Duration> {
    humantime::parse_duration(s).map_err(|e| {
        Error::invalid(format!(
            "invalid duration {s:?}: {e}; use e.g. 30d, 12h or 2weeks"
        ))
    })
}

#[cfg(test)]
mod tests {

    use proptest::prelude::*;

    use super::*;
    use crate::store::{Metadata, PutMode};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn policy() -> RetentionPolicy {
        RetentionPolicy::default()
    }

    fn kept(d: &[Decision]) -> Vec<u64> {
        d.iter().filter(|d| d.keep).map(|d| d.version).collect()
    }

    #[test]
    fn keep_last_and_protections() {
        let snaps: Vec<Candidate> = (1..=10)
            .map(|v| Candidate {
                version: v,
                created_at: t("2024-01-01T00:00:00Z") + chrono::Duration::hours(v as i64),
            })
            .collect();
        let protected = Protected {
            release: Some(2),
            history: BTreeSet::from([2, 4]),
            pinned: BTreeSet::from([1]),
            unreadable: BTreeSet::from([11]),
        };
        let p = RetentionPolicy {
            keep_last: Some(3),
            ..policy()
        };
        let d = decide(&p, t("2024-02-01T00:00:00Z"), &snaps, &protected);
        assert_eq!(d.len(), 11, "every version once, unreadable ones included");
        assert_eq!(d[0].version, 11, "newest first");
        assert_eq!(kept(&d), vec![11, 10, 9, 8, 4, 2, 1]);
        assert_eq!(
            d[0].reasons,
            vec![KeepReason::Latest, KeepReason::Unreadable]
        );
        let v2 = d.iter().find(|d| d.version == 2).unwrap();
        assert_eq!(
            v2.reasons,
            vec![KeepReason::Released, KeepReason::ReleaseHistory]
        );
        let v3 = d.iter().find(|d| d.version == 3).unwrap();
        assert!(!v3.keep && v3.reasons.is_empty());
    }

    #[test]
    fn calendar_rules_keep_the_newest_of_each_period() {
        let times = [
            (1, "2024-01-30T10:00:00Z"),
            (2, "2024-01-31T09:00:00Z"),
            (3, "2024-01-31T18:00:00Z"),
            (4, "2024-02-01T08:00:00Z"),
            (5, "2024-02-05T08:00:00Z"), // Monday: a new ISO week
            (6, "2024-02-05T09:00:00Z"),
        ];
        let snaps: Vec<Candidate> = times
            .iter()
            .map(|(v, s)| Candidate {
                version: *v,
                created_at: t(s),
            })
            .collect();
        let now = t("2024-02-06T00:00:00Z");
        let none = Protected::default();
        let daily = RetentionPolicy {
            keep_daily: Some(3),
            ..policy()
        };
        assert_eq!(kept(&decide(&daily, now, &snaps, &none)), vec![6, 4, 3]);
        let weekly = RetentionPolicy {
            keep_weekly: Some(2),
            ..policy()
        };
        assert_eq!(kept(&decide(&weekly, now, &snaps, &none)), vec![6, 4]);
        let monthly = RetentionPolicy {
            keep_monthly: Some(5),
            ..policy()
        };
        assert_eq!(kept(&decide(&monthly, now, &snaps, &none)), vec![6, 3]);
        let within = RetentionPolicy {
            keep_within: Some(Duration::from_secs(24 * 3600)),
            ..policy()
        };
        assert_eq!(kept(&decide(&within, now, &snaps, &none)), vec![6, 5]);
        let d = decide(&within, now, &snaps, &none);
        assert_eq!(d[1].reasons, vec![KeepReason::Within]);
    }

    #[test]
    fn describes_policies() {
        assert_eq!(describe_policy(&policy()), "no rule");
        assert!(policy_is_empty(&policy()));
        let p = RetentionPolicy {
            keep_last: Some(5),
            keep_within: Some(Duration::from_secs(86400 * 30)),
            ..policy()
        };
        assert_eq!(describe_policy(&p), "keep-last 5, keep-within 30days");
        assert!(parse_duration("30d").is_ok());
        assert_eq!(
            parse_duration("soon").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    fn arb_policy() -> impl Strategy<Value = RetentionPolicy> {
        (
            proptest::option::of(0u32..20),
            proptest::option::of(0u32..10),
            proptest::option::of(0u32..6),
            proptest::option::of(0u32..4),
            proptest::option::of(0u64..(40 * 86400)),
        )
            .prop_map(|(l, d, w, m, within)| RetentionPolicy {
                keep_last: l,
                keep_daily: d,
                keep_weekly: w,
                keep_monthly: m,
                keep_within: within.map(Duration::from_secs),
            })
    }

    proptest! {
        #[test]
        fn protected_versions_are_always_kept(
            policy in arb_policy(),
            gaps in proptest::collection::vec(0i64..(3 * 86400), 1..120),
            pinned in proptest::collection::btree_set(1u64..130, 0..6),
            history in proptest::collection::btree_set(1u64..130, 0..6),
            release in proptest::option::of(1u64..130),
            skip in proptest::collection::btree_set(1u64..130, 0..20),
        ) {
            let start = t("2023-06-01T00:00:00Z");
            let mut at = start;
            let mut snaps = Vec::new();
            for (i, gap) in gaps.iter().enumerate() {
                at += chrono::Duration::seconds(*gap);
                let v = i as u64 + 1;
                if !skip.contains(&v) {
                    snaps.push(Candidate { version: v, created_at: at });
                }
            }
            prop_assume!(!snaps.is_empty());
            let now = at + chrono::Duration::hours(1);
            let protected = Protected { release, history, pinned, unreadable: BTreeSet::new() };
            let d = decide(&policy, now, &snaps, &protected);
            // Every version once, newest first.
            prop_assert_eq!(d.len(), snaps.len());
            prop_assert!(d.windows(2).all(|w| w[0].version > w[1].version));
            // The latest and every protected version are kept.
            prop_assert!(d[0].keep);
            for x in &d {
                if protected.contains(x.version) {
                    prop_assert!(x.keep, "v{} is protected", x.version);
                }
                prop_assert_eq!(x.keep, !x.reasons.is_empty());
            }
            // keep_last N keeps at least the N newest.
            if let Some(n) = policy.keep_last {
                prop_assert!(d.iter().take(n as usize).all(|x| x.keep));
            }
            // Applying the policy again to what it kept deletes nothing more.
            let kept: Vec<Candidate> = snaps.iter().copied()
                .filter(|c| d.iter().any(|x| x.version == c.version && x.keep)).collect();
            let again = decide(&policy, now, &kept, &protected);
            prop_assert!(again.iter().all(|x| x.keep));
        }
    }

    #[tokio::test]
    async fn prune_deletes_the_index_entries_of_what_it_deletes() {
        let (_dir, _store, vault, env) = crate::testutil::local_vault();
        for n in 0..5 {
            let raw = format!("{{\"n\":{n}}}");
            let req = crate::snapshot::BackupRequest::new(
                raw.into_bytes(),
                crate::snapshot::Trigger::Manual,
            );
            vault.backup(&env, req).await.unwrap();
        }
        assert_eq!(vault.index_entries(&env, None, 100).await.len(), 5);
        let policy = RetentionPolicy {
            keep_last: Some(2),
            ..RetentionPolicy::default()
        };
        vault
            .apply_retention(&env, &policy, &PruneOptions::default())
            .await
            .unwrap();
        let indexed: Vec<u64> = vault
            .index_entries(&env, None, 100)
            .await
            .into_keys()
            .collect();
        assert_eq!(indexed, vec![4, 5]);
        assert_eq!(vault.all_versions(&env).await.unwrap(), vec![5, 4]);
    }

    #[tokio::test]
    async fn apply_retention_deletes_only_what_the_policy_drops() {
        let (_dir, store, vault, env) = crate::testutil::local_vault();
        let start = t("2024-01-01T00:00:00Z");
        for v in 1..=30 {
            crate::testutil::put_snapshot_at(
                store.as_ref(),
                &env,
                v,
                start + chrono::Duration::hours(v as i64 * 7),
            )
            .await;
        }
        // Release v3, then v5: v5 is the release, v3 in the history.
        for v in [3, 5] {
            vault
                .release(
                    &env,
                    crate::release::ReleaseRequest::new(v, Actor::default()),
                )
                .await
                .unwrap();
        }
        vault.pin(&env, 7, &Actor::default()).await.unwrap();
        let p = RetentionPolicy {
            keep_last: Some(4),
            ..policy()
        };
        let opts = PruneOptions {
            dry_run: true,
            ..PruneOptions::default()
        };
        let dry = vault.apply_retention(&env, &p, &opts).await.unwrap();
        assert_eq!(dry.deleted, 30 - 4 - 3);
        assert_eq!(vault.all_versions(&env).await.unwrap().len(), 30, "dry run");
        let opts = PruneOptions::default();
        let seen = std::sync::Mutex::new(Vec::new());
        let report = vault
            .apply_retention_with_progress(&env, &p, &opts, &|p| seen.lock().unwrap().push(p))
            .await
            .unwrap();
        assert_eq!(report.deleted, 23);
        let mut left = vault.all_versions(&env).await.unwrap();
        left.sort_unstable();
        assert_eq!(left, vec![3, 5, 7, 27, 28, 29, 30]);
        assert!(seen.lock().unwrap().contains(&PruneProgress::Deleting {
            done: 23,
            total: 23
        }));
        let events = vault.events(&env, 10).await.unwrap();
        assert!(events.iter().any(|e| e.action == Action::Prune
            && e.details["deleted"] == serde_json::json!(23)));
        // A second run has nothing to do.
        assert_eq!(
            vault
                .apply_retention(&env, &p, &opts)
                .await
                .unwrap()
                .deleted,
            0
        );
    }

    #[tokio::test]
    async fn refuses_an_empty_policy_and_an_unreadable_pointer() {
        let (_dir, store, vault, env) = crate::testutil::local_vault();
        for v in 1..=3 {
            crate::testutil::put_snapshot_at(store.as_ref(), &env, v, t("2024-01-01T00:00:00Z"))
                .await;
        }
        let e = vault
            .apply_retention(&env, &policy(), &PruneOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        store
            .put(
                &layout::release_pointer_key(&env),
                b"not json".to_vec().into(),
                &Metadata::new(),
                PutMode::Create,
            )
            .await
            .unwrap();
        let p = RetentionPolicy {
            keep_last: Some(1),
            ..policy()
        };
        let e = vault
            .apply_retention(&env, &p, &PruneOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert_eq!(vault.all_versions(&env).await.unwrap().len(), 3);
    }
}
