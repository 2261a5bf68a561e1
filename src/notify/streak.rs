//! Scheduled backups failing in a row: one `scheduled-backup-failing` notice when an
//! environment's run of failures reaches `notify.failures_in_a_row`.

use std::sync::atomic::{AtomicU32, Ordering};

use jetvault_core::error::Result;
use jetvault_core::events::Actor;
use jetvault_core::id::EnvRef;
use jetvault_core::notify::{Notice, NoticeKind};
use jetvault_core::snapshot::BackupOutcome;
use jetvault_core::vault::Vault;

/// One environment's scheduled backups failing in a row.
#[derive(Debug)]
pub struct FailureStreak {
    threshold: u32,
    failures: AtomicU32,
}

impl FailureStreak {
    /// A streak that notifies at `threshold` failures in a row (at least 1).
    #[must_use]
    pub fn new(threshold: u32) -> Self {
        Self {
            threshold: threshold.max(1),
            failures: AtomicU32::new(0),
        }
    }

    /// Counts a scheduled backup's result: a success resets the streak; a failure
    /// sends `backup-failed`, and `scheduled-backup-failing` when the streak reaches
    /// the threshold (once per streak). Returns the streak's length.
    pub fn record(
        &self,
        vault: &Vault,
        env: &EnvRef,
        actor: &Actor,
        result: &Result<BackupOutcome>,
    ) -> u32 {
        let Err(e) = result else {
            self.failures.store(0, Ordering::Release);
            return 0;
        };
        vault.notify(Notice::backup_failed(env, actor, e));
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        if n == self.threshold {
            vault.notify(Notice::now(
                NoticeKind::ScheduledBackupFailing,
                env,
                actor,
                format!(
                    "scheduled backups of {env} failed {n} times in a row; the last error: {}",
                    e.report()
                ),
            ));
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetvault_core::notify::EventSink;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Default)]
    struct Collect(Mutex<Vec<Notice>>);

    impl EventSink for Collect {
        fn notify(&self, notice: Notice) {
            self.0.lock().unwrap().push(notice);
        }
    }

    #[tokio::test]
    async fn notifies_once_at_the_threshold_and_resets_on_success() {
        let dir = tempfile::tempdir().unwrap();
        let store = jetvault_core::store::open(
            &format!("file://{}", dir.path().display()),
            &jetvault_core::store::OpenOptions::default(),
        )
        .await
        .unwrap();
        let sink = Arc::new(Collect::default());
        let vault =
            Vault::new(store, jetvault_core::VaultOptions::default()).with_sink(sink.clone());
        let env = EnvRef::parse("crm", "production").unwrap();
        let actor = Actor::on_this_host("scheduler", "schedule");
        let streak = FailureStreak::new(3);
        let failed = || Err(jetvault_core::Error::unavailable("live answered 503"));
        let kinds = |sink: &Collect| {
            sink.0
                .lock()
                .unwrap()
                .iter()
                .map(|n| n.kind)
                .collect::<Vec<_>>()
        };
        for expected in 1..=4 {
            assert_eq!(streak.record(&vault, &env, &actor, &failed()), expected);
        }
        let failing = |k: &Vec<NoticeKind>| {
            k.iter()
                .filter(|k| **k == NoticeKind::ScheduledBackupFailing)
                .count()
        };
        let k = kinds(&sink);
        assert_eq!(
            k.iter().filter(|k| **k == NoticeKind::BackupFailed).count(),
            4
        );
        assert_eq!(failing(&k), 1, "once per streak: {k:?}");
        let meta = jetvault_core::SnapshotMeta {
            version: 1,
            sha256: String::new(),
            size: 0,
            stored_size: 0,
            created_at: chrono::Utc::now(),
            trigger: jetvault_core::Trigger::Schedule,
            author: None,
            message: None,
            source: None,
            key: String::new(),
            restored_from: None,
            schema_errors: None,
            schema_error: None,
            recipients: None,
            ignoring_sha256: None,
        };
        assert_eq!(
            streak.record(&vault, &env, &actor, &Ok(BackupOutcome::Unchanged(meta))),
            0
        );
        for _ in 0..3 {
            streak.record(&vault, &env, &actor, &failed());
        }
        assert_eq!(failing(&kinds(&sink)), 2, "a new streak notifies again");
        let last = sink.0.lock().unwrap().last().cloned().unwrap();
        assert!(
            last.message.contains("3 times in a row"),
            "{}",
            last.message
        );
        assert!(
            last.message.contains("live answered 503"),
            "{}",
            last.message
        );
    }
}
