//! The pure decision: versions, times and the protected set in, keep or delete with
//! the reasons out.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Datelike, Utc};

use super::{Candidate, Decision, KeepReason, Protected};
use crate::config::RetentionPolicy;

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
