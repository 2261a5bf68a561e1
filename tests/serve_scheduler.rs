//! Scheduled backups and graceful shutdown of the real `jetvault serve`: a 1-second cron
//! writes a snapshot per change, two processes on one store write one snapshot per
//! change (not two), and SIGTERM lets a backup in flight finish.
//!
//! The store is a parameter of each scenario: a local directory, and a LocalStack bucket
//! (`tests/support`) for the two servers on one schedule.

mod serve_harness;
mod support;

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use jetvault::EnvRef;
use serve_harness::{
    MEDIUM, RD, SMALL, Server, StoreSpec, client, config, eventually, fixture, send,
};
use support::{Backend, TestBucket};

fn env_ref() -> EnvRef {
    EnvRef::parse("crm", "production").unwrap()
}

/// A config whose `crm/production` is backed up every second from `live`.
fn scheduled_config(store: &StoreSpec, live: &Path, server_extra: &str) -> String {
    let apps = format!(
        "[apps.crm.envs.production]\nschedule = \"* * * * * *\"\n\
         [apps.crm.envs.production.live]\nkind = \"file\"\npath = {:?}\n",
        live.display().to_string()
    );
    config(store, server_extra, &apps)
}

/// Replaces a file atomically, as a live target should see it.
fn write_live(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// How many scheduled backups of crm/production a server counted with `result`.
async fn scheduled(server: &Server, result: &str) -> u64 {
    let r = send(client().get(server.url("/metrics")).bearer_auth(RD)).await;
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    let prefix = format!(
        "jetvault_backups_total{{app=\"crm\",env=\"production\",trigger=\"schedule\",result=\"{result}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// Waits until every server has run `more` further scheduled backups that found
/// nothing new.
async fn wait_unchanged_ticks(servers: &[&Server], more: u64) {
    let mut base = Vec::new();
    for s in servers {
        base.push(scheduled(s, "unchanged").await);
    }
    for (s, b) in servers.iter().zip(base) {
        eventually(
            "more unchanged scheduled backups",
            Duration::from_secs(30),
            || async { (scheduled(s, "unchanged").await >= b + more).then_some(()) },
        )
        .await;
    }
}

async fn versions(store: &StoreSpec) -> Vec<u64> {
    store.vault().await.all_versions(&env_ref()).await.unwrap()
}

#[tokio::test]
async fn two_servers_on_one_schedule_write_one_snapshot_per_change() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    scenario_two_servers_one_snapshot_per_change(dir.path(), &store).await;
}

/// The same on one LocalStack bucket: the two servers' create-only writes of the next
/// version meet on S3, and one of them finds the content already there.
#[tokio::test]
async fn two_servers_on_one_schedule_write_one_snapshot_per_change_localstack() {
    let Some(bucket) = TestBucket::new(Backend::LocalStack, "schedule").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::s3(&bucket.store_url("jetvault"), &bucket.endpoint);
    scenario_two_servers_one_snapshot_per_change(dir.path(), &store).await;
}

async fn scenario_two_servers_one_snapshot_per_change(dir: &Path, store: &StoreSpec) {
    let live = dir.join("live.json");
    write_live(&live, &fixture(SMALL));
    let cfg = scheduled_config(store, &live, "");
    let a = Server::start(dir, &cfg);
    let b = Server::start(dir, &cfg);

    eventually(
        "the first scheduled snapshot",
        Duration::from_secs(30),
        || async { (!versions(store).await.is_empty()).then_some(()) },
    )
    .await;
    // Both have since looked again and found nothing new.
    wait_unchanged_ticks(&[&a, &b], 2).await;
    assert_eq!(versions(store).await, [1]);

    write_live(&live, &fixture(MEDIUM));
    eventually(
        "the second scheduled snapshot",
        Duration::from_secs(30),
        || async { (versions(store).await.len() >= 2).then_some(()) },
    )
    .await;
    wait_unchanged_ticks(&[&a, &b], 2).await;
    assert_eq!(versions(store).await, [2, 1], "one snapshot per change");

    let vault = store.vault().await;
    let (meta, raw) = vault.get(&env_ref(), 2).await.unwrap();
    assert_eq!(raw, fixture(MEDIUM));
    assert_eq!(meta.trigger, jetvault::Trigger::Schedule);
    assert_eq!(meta.author.as_deref(), Some("scheduler"));
    let created = scheduled(&a, "created").await + scheduled(&b, "created").await;
    assert_eq!(
        created, 2,
        "between them the two servers created exactly two snapshots"
    );
}

#[tokio::test]
async fn sigterm_lets_the_backup_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    scenario_sigterm_finishes_backup(dir.path(), &store).await;
}

async fn scenario_sigterm_finishes_backup(dir: &Path, store: &StoreSpec) {
    // The live target is a named pipe: the scheduled backup blocks reading it until the
    // test writes, so it is reliably in flight when SIGTERM arrives.
    let live = dir.join("live.fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&live)
        .status()
        .expect("run mkfifo");
    assert!(status.success());
    let mut server = Server::start(
        dir,
        &scheduled_config(store, &live, "shutdown_grace = \"60s\""),
    );

    // Opening the pipe for writing returns once the backup has opened it for reading.
    let writer = {
        let live = live.clone();
        tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&live)
                .expect("open the pipe")
        })
    };
    let mut pipe = tokio::time::timeout(Duration::from_secs(30), writer)
        .await
        .expect("a scheduled backup should open the live pipe")
        .unwrap();

    server.sigterm();
    server.wait_log("shutting down", Duration::from_secs(30));
    assert!(
        server.stderr().contains("in_flight=1"),
        "the backup should be in flight at shutdown:\n{}",
        server.stderr()
    );

    let content = fixture(MEDIUM);
    tokio::task::spawn_blocking(move || {
        pipe.write_all(&content).unwrap();
    })
    .await
    .unwrap();

    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(Duration::from_secs(60));
        (status, server.stderr())
    })
    .await
    .unwrap();
    assert!(
        status.0.success(),
        "exit {:?}; stderr:\n{}",
        status.0,
        status.1
    );
    assert!(status.1.contains("stopped cleanly"), "{}", status.1);

    let vault = store.vault().await;
    assert_eq!(versions(store).await, [1]);
    let (meta, raw) = vault.get(&env_ref(), 1).await.unwrap();
    assert_eq!(raw, fixture(MEDIUM), "the backup in flight was completed");
    assert_eq!(meta.trigger, jetvault::Trigger::Schedule);
}
