//! Policies in words: whether one has a rule, and what it keeps.

use crate::config::RetentionPolicy;

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
