use proptest::prelude::*;

use super::*;
use crate::error::ErrorKind;
use crate::events::Action;
use crate::layout;
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
        let req =
            crate::snapshot::BackupRequest::new(raw.into_bytes(), crate::snapshot::Trigger::Manual);
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
    assert!(
        events
            .iter()
            .any(|e| e.action == Action::Prune && e.details["deleted"] == serde_json::json!(23))
    );
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
        crate::testutil::put_snapshot_at(store.as_ref(), &env, v, t("2024-01-01T00:00:00Z")).await;
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
