use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{Duration, Utc};

use super::*;
use crate::error::{Error, Result};
use crate::events::{Action, Actor};
use crate::host_limits::HostLimits;
use crate::id::EnvRef;
use crate::live::LiveTarget;
use crate::live::file::FileTarget;
use crate::store::LocalStore;
use crate::testutil::put_snapshot;
use crate::vault::{Vault, VaultOptions};

/// A file target whose writes (or reads) can be made to fail.
#[derive(Debug)]
struct Flaky {
    file: FileTarget,
    fail_write: Arc<AtomicBool>,
    fail_read: bool,
}

#[async_trait]
impl LiveTarget for Flaky {
    fn describe(&self) -> String {
        self.file.describe()
    }
    async fn read(&self, limit: u64) -> Result<Bytes> {
        if self.fail_read {
            return Err(Error::unavailable("the platform answered 503"));
        }
        self.file.read(limit).await
    }
    async fn write(&self, bytes: Bytes) -> Result<()> {
        if self.fail_write.load(Ordering::SeqCst) {
            return Err(Error::unavailable(
                "the platform answered 503 to the import",
            ));
        }
        self.file.write(bytes).await
    }
}

fn good(i: usize) -> Vec<u8> {
    format!("{{\"app\":{i},\"flows\":[1,2,3]}}").into_bytes()
}

fn bad(i: usize) -> Vec<u8> {
    format!("{{\"app\":{i},\"flows\":[],\"broken\":true}}").into_bytes()
}

struct World {
    dir: tempfile::TempDir,
    vault: Vault,
    /// Between the good snapshots and the damage.
    before: chrono::DateTime<Utc>,
    fail_write: Arc<AtomicBool>,
}

impl World {
    /// `n` environments `app{i}/prod`, each with v1 (good) taken two hours ago; those
    /// in `damaged` also have v2 (the damage, an hour ago) and hold it live, the others
    /// hold v1.
    async fn new(n: usize, damaged: &[usize]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(dir.path().join("store")).unwrap());
        let vault = Vault::new(store.clone(), VaultOptions::default());
        let now = Utc::now();
        for i in 0..n {
            let env = Self::env(i);
            put_snapshot(store.as_ref(), &env, 1, &good(i), now - Duration::hours(2)).await;
            let live = if damaged.contains(&i) {
                put_snapshot(store.as_ref(), &env, 2, &bad(i), now - Duration::hours(1)).await;
                bad(i)
            } else {
                good(i)
            };
            std::fs::write(dir.path().join(format!("live{i}.json")), live).unwrap();
        }
        Self {
            dir,
            vault,
            before: now - Duration::minutes(90),
            fail_write: Arc::new(AtomicBool::new(false)),
        }
    }

    fn env(i: usize) -> EnvRef {
        EnvRef::parse(&format!("app{i}"), "prod").unwrap()
    }

    fn live_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("live{i}.json"))
    }

    fn live(&self, i: usize) -> Vec<u8> {
        std::fs::read(self.live_path(i)).unwrap()
    }

    /// Targets for `0..n`; `flaky` fails writes while `fail_write` is set.
    fn targets(&self, n: usize, flaky: Option<usize>) -> Vec<EnvTarget> {
        (0..n)
            .map(|i| EnvTarget {
                env: Self::env(i),
                target: Ok(Arc::new(Flaky {
                    file: FileTarget::new(self.live_path(i)),
                    fail_write: if flaky == Some(i) {
                        self.fail_write.clone()
                    } else {
                        Arc::new(AtomicBool::new(false))
                    },
                    fail_read: false,
                }) as Arc<dyn LiveTarget>),
            })
            .collect()
    }

    fn by_name(targets: &[EnvTarget]) -> HashMap<String, Arc<dyn LiveTarget>> {
        targets
            .iter()
            .filter_map(|t| Some((t.env.to_string(), t.target.clone().ok()?)))
            .collect()
    }

    fn opts(&self, resume: bool) -> RunOptions {
        RunOptions {
            concurrency: 4,
            actor: actor(),
            message: None,
            allow_missing_live: true,
            point: Some(Point::At(self.before)),
            resume,
            latest: HashMap::new(),
            lease: None,
        }
    }

    /// Plans a restore-all of `targets` to `before`, without reading live.
    async fn plan(&self, targets: &[EnvTarget]) -> Vec<EnvPlan> {
        self.vault
            .plan_restore_all(
                targets,
                &Point::At(self.before),
                4,
                &HostLimits::new(2),
                false,
            )
            .await
    }

    /// Runs the recorded run `id` again (a resume, or a run under a lease) with `opts`.
    async fn rerun(&self, id: &str, targets: &[EnvTarget], opts: &RunOptions) -> RunReport {
        let loaded = self.vault.load_run(id).await.unwrap();
        self.vault
            .run_restore_all(
                loaded,
                &Self::by_name(targets),
                &HostLimits::new(2),
                opts,
                &|_, _| {},
            )
            .await
    }

    /// Plans, records and runs a restore-all of `targets` to `before`.
    async fn run(&self, targets: &[EnvTarget]) -> RunReport {
        let limits = HostLimits::new(2);
        let point = Point::At(self.before);
        let plans = self.plan(targets).await;
        let mut record = RunRecord::from_plan(RunKind::Restore, &plans, actor());
        record.point = Some(point);
        let etag = self.vault.create_run(&record).await.unwrap();
        let mut opts = self.opts(false);
        opts.latest = latest_of(&plans);
        self.vault
            .run_restore_all(
                (record, etag),
                &Self::by_name(targets),
                &limits,
                &opts,
                &|_, _| {},
            )
            .await
    }

    /// Restore events of env `i` that pushed something.
    async fn restores(&self, i: usize) -> usize {
        self.vault
            .events(&Self::env(i), 100)
            .await
            .unwrap()
            .iter()
            .filter(|e| e.action == Action::Restore && e.details["outcome"] == "restored")
            .count()
    }
}

fn actor() -> Actor {
    Actor {
        who: Some("tester".into()),
        via: "test".into(),
        from: None,
    }
}

#[tokio::test]
async fn the_plan_says_what_it_would_do_and_why_it_skips() {
    let w = World::new(3, &[0]).await;
    let mut targets = w.targets(3, None);
    // app1 is untouched; app2 loses its target; app3 has only snapshots after the
    // point; app4's live can't be read.
    targets[2].target = Err("app2/prod has no live target".into());
    let store = w.vault.store().clone();
    let late = EnvRef::parse("app3", "prod").unwrap();
    put_snapshot(store.as_ref(), &late, 1, &good(3), Utc::now()).await;
    targets.push(EnvTarget {
        env: late,
        target: Ok(Arc::new(FileTarget::new(w.live_path(3)))),
    });
    targets.push(EnvTarget {
        env: World::env(4),
        target: Ok(Arc::new(Flaky {
            file: FileTarget::new(w.live_path(4)),
            fail_write: Arc::new(AtomicBool::new(false)),
            fail_read: true,
        })),
    });
    put_snapshot(
        store.as_ref(),
        &World::env(4),
        1,
        &good(4),
        w.before - Duration::hours(1),
    )
    .await;

    let plans = w
        .vault
        .plan_restore_all(&targets, &Point::At(w.before), 4, &HostLimits::new(1), true)
        .await;
    let got: Vec<(String, String)> = plans
        .iter()
        .map(|p| {
            let d = match &p.decision {
                Decision::Restore {
                    version, changes, ..
                } => format!("restore v{version}, {} changes", changes.unwrap()),
                Decision::Unchanged { version } => format!("unchanged v{version}"),
                Decision::Resolved { version } => format!("resolved v{version}"),
                Decision::Skip { reason, .. } => format!("skip: {}", reason.as_str()),
                Decision::Fail { error, .. } => format!("fail: {error}"),
            };
            (p.env.clone(), d)
        })
        .collect();
    let want = [
        ("app0/prod", "restore v1, 4 changes"),
        ("app1/prod", "unchanged v1"),
        ("app2/prod", "skip: no live target"),
        ("app3/prod", "skip: no snapshot"),
        ("app4/prod", "skip: live unreadable"),
    ];
    assert_eq!(
        got,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
    // The dry run changed nothing.
    assert_eq!(w.live(0), bad(0));
    assert_eq!(w.vault.all_versions(&World::env(0)).await.unwrap(), [2, 1]);
}

#[tokio::test]
async fn a_run_restores_the_damaged_ones_and_one_failure_stops_no_other() {
    let damaged = [0, 2, 3, 5, 6, 7];
    let w = World::new(8, &damaged).await;
    w.fail_write.store(true, Ordering::SeqCst);
    let targets = w.targets(8, Some(3));
    let untouched_before: Vec<_> = [1, 4]
        .iter()
        .map(|&i| {
            std::fs::metadata(w.live_path(i))
                .unwrap()
                .modified()
                .unwrap()
        })
        .collect();

    let report = w.run(&targets).await;
    assert_eq!(
        (
            report.restored,
            report.unchanged,
            report.skipped,
            report.failed
        ),
        (5, 2, 0, 1)
    );
    assert!(report.record_error.is_none());
    for i in damaged.into_iter().filter(|&i| i != 3) {
        assert_eq!(w.live(i), good(i), "app{i}");
        let run = &report.run.envs[&format!("app{i}/prod")];
        assert_eq!(run.status, Status::Restored);
        // The pre-restore snapshot is the damaged v2 itself, reused.
        assert_eq!(run.pre_restore, Some(2));
    }
    let failed = &report.run.envs["app3/prod"];
    assert_eq!(failed.status, Status::Failed);
    assert!(
        failed.reason.as_deref().unwrap().contains("503"),
        "{failed:?}"
    );
    assert_eq!(w.live(3), bad(3));
    // The untouched ones were not written, nor snapshotted again.
    for (n, &i) in [1, 4].iter().enumerate() {
        assert_eq!(w.live(i), good(i));
        let modified = std::fs::metadata(w.live_path(i))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(modified, untouched_before[n]);
        assert_eq!(w.vault.all_versions(&World::env(i)).await.unwrap(), [1]);
    }
    // The stored record says the same.
    let (stored, _) = w.vault.load_run(&report.run.id).await.unwrap();
    assert_eq!(stored.envs, report.run.envs);
}

#[tokio::test]
async fn a_resume_retries_the_failed_and_restores_nothing_twice() {
    let damaged = [0, 1, 2, 3];
    let w = World::new(4, &damaged).await;
    w.fail_write.store(true, Ordering::SeqCst);
    let targets = w.targets(4, Some(1));
    let first = w.run(&targets).await;
    assert_eq!((first.restored, first.failed), (3, 1));

    // An interrupted run: app2 was restored but the record never heard of it.
    let loaded = w.vault.load_run(&first.run.id).await.unwrap();
    let mut pending = first.run.envs["app2/prod"].clone();
    pending.status = Status::Pending;
    pending.pre_restore = None;
    let updates = [("app2/prod".to_string(), pending)].into_iter().collect();
    w.vault
        .update_run(&first.run.id, loaded, &updates)
        .await
        .unwrap();

    w.fail_write.store(false, Ordering::SeqCst);
    let seen = std::sync::Mutex::new(Vec::new());
    let record = w.vault.load_run(&first.run.id).await.unwrap();
    let report = w
        .vault
        .run_restore_all(
            record,
            &World::by_name(&targets),
            &HostLimits::new(2),
            &w.opts(true),
            &|env, _| seen.lock().unwrap().push(env.to_string()),
        )
        .await;
    assert_eq!((report.restored, report.failed), (4, 0));
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    assert_eq!(seen, ["app1/prod", "app2/prod"]);
    // app2's undo point was found again from its restore event.
    assert_eq!(report.run.envs["app2/prod"].pre_restore, Some(2));
    for i in damaged {
        assert_eq!(w.live(i), good(i));
        assert_eq!(w.restores(i).await, 1, "app{i} restored once");
    }
}

#[tokio::test]
async fn undo_puts_back_what_was_live_before() {
    let damaged = [0, 2];
    let w = World::new(3, &damaged).await;
    let targets = w.targets(3, None);
    let run = w.run(&targets).await;
    assert_eq!((run.restored, run.unchanged), (2, 1));

    let limits = HostLimits::new(2);
    let plans = w
        .vault
        .plan_undo(&run.run, &targets, 4, &limits, false)
        .await;
    // Only what the run restored is undone.
    let envs: Vec<_> = plans.iter().map(|p| p.env.as_str()).collect();
    assert_eq!(envs, ["app0/prod", "app2/prod"]);
    let mut record = RunRecord::from_plan(RunKind::Undo, &plans, actor());
    record.undoes = Some(run.run.id.clone());
    let etag = w.vault.create_run(&record).await.unwrap();
    let mut opts = w.opts(false);
    opts.point = None;
    let undo = w
        .vault
        .run_restore_all(
            (record, etag),
            &World::by_name(&targets),
            &limits,
            &opts,
            &|_, _| {},
        )
        .await;
    assert_eq!((undo.restored, undo.failed), (2, 0));
    for i in damaged {
        assert_eq!(w.live(i), bad(i), "app{i} back to what it held");
    }
    assert_eq!(w.live(1), good(1));
}

#[tokio::test]
async fn a_run_records_its_start_and_end_and_is_found_again_while_unfinished() {
    let w = World::new(3, &[0, 2]).await;
    let targets = w.targets(3, None);
    let limits = HostLimits::new(2);
    let point = Point::At(w.before);
    let sel = Selection::new(true, vec![], None);
    assert!(
        w.vault
            .unfinished_run(&sel, &point)
            .await
            .unwrap()
            .is_none()
    );
    let plans = w.plan(&targets).await;
    let mut record = RunRecord::from_plan(RunKind::Restore, &plans, actor());
    record.point = Some(point.clone());
    record.selection = Some(sel.clone());
    let etag = w.vault.create_run(&record).await.unwrap();
    // Unfinished: found again by the same selection and point, and by no other.
    let (found, _) = w.vault.unfinished_run(&sel, &point).await.unwrap().unwrap();
    assert_eq!(found.id, record.id);
    let other = Selection::new(false, vec!["app0".into()], None);
    assert!(
        w.vault
            .unfinished_run(&other, &point)
            .await
            .unwrap()
            .is_none()
    );
    let later = Point::At(w.before + Duration::minutes(1));
    assert!(
        w.vault
            .unfinished_run(&sel, &later)
            .await
            .unwrap()
            .is_none()
    );

    let report = w
        .vault
        .run_restore_all(
            (record, etag),
            &World::by_name(&targets),
            &limits,
            &w.opts(false),
            &|_, _| {},
        )
        .await;
    assert_eq!((report.restored, report.unchanged), (2, 1));
    // Finished: the same command would start afresh.
    assert!(
        w.vault
            .unfinished_run(&sel, &point)
            .await
            .unwrap()
            .is_none()
    );
    let events = w.vault.run_events(&report.run.id).await.unwrap();
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.phase, e.todo, e.restored, e.unchanged))
        .collect();
    assert_eq!(
        got,
        [(RunPhase::Start, 3, 0, 0), (RunPhase::End, 0, 2, 1)],
        "{events:#?}"
    );
    assert_eq!(events[1].selection.as_ref(), Some(&sel));
}

#[tokio::test]
async fn a_confirmed_run_reads_live_once_and_fails_an_unreadable_one() {
    let w = World::new(2, &[0, 1]).await;
    let mut targets = w.targets(2, None);
    targets[1].target = Ok(Arc::new(Flaky {
        file: FileTarget::new(w.live_path(1)),
        fail_write: Arc::new(AtomicBool::new(false)),
        fail_read: true,
    }));
    let plans = w.plan(&targets).await;
    // Without reading live, both are resolved to v1.
    assert!(
        plans
            .iter()
            .all(|p| matches!(p.decision, Decision::Resolved { version: 1 })),
        "{plans:?}"
    );
    let report = w.run(&targets).await;
    assert_eq!((report.restored, report.failed), (1, 1));
    let failed = &report.run.envs["app1/prod"];
    assert_eq!(failed.status, Status::Failed);
    assert_eq!(failed.code.as_deref(), Some("unavailable"));
    assert!(
        failed
            .reason
            .as_deref()
            .unwrap()
            .contains("nothing was pushed"),
        "{failed:?}"
    );
    assert_eq!(w.live(0), good(0));
    assert_eq!(w.live(1), bad(1), "an unreadable live is left alone");
}

/// The run lease: one process at a time.
mod lease;
