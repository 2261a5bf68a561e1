//! The run lease through the run itself: refused while held, a dead holder's run
//! stopped and then resumed by another once the lease expired.

use super::*;

#[tokio::test]
async fn one_process_at_a_time_runs_a_run_and_a_dead_ones_run_is_resumable() {
    let w = World::new(2, &[0, 1]).await;
    let targets = w.targets(2, None);
    let plans = w.plan(&targets).await;
    let record = RunRecord::from_plan(RunKind::Restore, &plans, actor());
    let id = record.id.clone();
    w.vault.create_run(&record).await.unwrap();

    // Another process (another replica, another shell) holds the run.
    let held = w.vault.lease_run(&id, DEFAULT_LEASE).await.unwrap();
    let e = w.vault.lease_run(&id, DEFAULT_LEASE).await.unwrap_err();
    assert_eq!(e.kind(), crate::error::ErrorKind::AlreadyExists);
    let text = e.report();
    assert!(
        text.contains(&format!("run {id} is in progress elsewhere")),
        "{text}"
    );
    let expires = held.lease().expires_at().to_rfc3339();
    assert!(
        text.contains(&format!("lease expires at {expires}")),
        "{text}"
    );
    assert!(
        e.hint().unwrap().text.contains("resume the run after"),
        "{e:?}"
    );
    held.release().await;

    // A process that died holding it: its lease expires (a 0 s lease is expired at
    // once), and it is never renewed. Its run, given the lost lease, starts nothing and
    // writes no record.
    let dead = w
        .vault
        .lease_run(&id, std::time::Duration::ZERO)
        .await
        .unwrap();
    let mut opts = w.opts(false);
    opts.lease = Some(dead.lease());
    let report = w.rerun(&id, &targets, &opts).await;
    assert_eq!((report.restored, report.failed), (0, 2));
    assert!(
        report
            .record_error
            .as_deref()
            .unwrap()
            .contains("lost the lease"),
        "{report:?}"
    );
    assert_eq!(
        report.run.envs["app0/prod"].code.as_deref(),
        Some("lease_lost")
    );
    assert_eq!(w.live(0), bad(0), "nothing was restored without the lease");
    let (stored, _) = w.vault.load_run(&id).await.unwrap();
    assert!(
        stored
            .envs
            .values()
            .all(|e| e.status == Status::Pending && e.code.is_none())
    );
    drop(dead); // the process is gone: no renewal, no release

    // Once expired, the run is taken over and resumed to the end.
    let lease = w.vault.lease_run(&id, DEFAULT_LEASE).await.unwrap();
    let mut opts = w.opts(true);
    opts.lease = Some(lease.lease());
    let report = w.rerun(&id, &targets, &opts).await;
    lease.release().await;
    assert_eq!((report.restored, report.failed), (2, 0), "{report:?}");
    assert!(report.record_error.is_none());
    assert_eq!((w.live(0), w.live(1)), (good(0), good(1)));
    // Released at the end: the next process takes it at once.
    w.vault
        .lease_run(&id, DEFAULT_LEASE)
        .await
        .unwrap()
        .release()
        .await;
}
