//! Scheduled backups and graceful shutdown of the real `jetvault serve`: a 1-second cron
//! writes a snapshot per change, two processes on one store write one snapshot per
//! change (not two), retention is applied after each scheduled backup (a failing one is
//! logged and counted, and the schedule goes on), and SIGTERM lets a backup in flight
//! finish.
//!
//! The store is a parameter of each scenario: a local directory, and a LocalStack bucket
//! (the harness) for the two servers on one schedule.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::harness::serve::{
    LARGE, MEDIUM, OP, OTHER, RD, SMALL, Server, client, config, eventually, send,
};
use crate::harness::{self, serve};
use crate::harness::{Backend, TestBucket};
use crate::harness::{StoreSpec, corpus, write_atomically};
use jetvault_core::EnvRef;
use serde_json::json;

fn env_ref() -> EnvRef {
    EnvRef::parse("crm", "production").unwrap()
}

/// A config whose `crm/production` is backed up every second from `live`.
fn scheduled_config(store: &StoreSpec, live: &Path, server_extra: &str) -> String {
    scheduled_config_with(store, live, server_extra, "")
}

/// [`scheduled_config`] with more keys in the environment's table (`retention = ...`).
fn scheduled_config_with(
    store: &StoreSpec,
    live: &Path,
    server_extra: &str,
    env_extra: &str,
) -> String {
    let apps = format!(
        "[apps.crm.envs.production]\nschedule = \"* * * * * *\"\n{env_extra}\n\
         [apps.crm.envs.production.live]\nkind = \"file\"\npath = {:?}\n",
        live.display().to_string()
    );
    config(store, server_extra, &apps)
}

/// The value of the counter `name{labels}` a server exports (0 when absent).
async fn counter(server: &Server, name: &str, labels: &str) -> u64 {
    let r = send(client().get(server.url("/metrics")).bearer_auth(RD)).await;
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// How many scheduled backups of crm/production a server counted with `result`.
async fn scheduled(server: &Server, result: &str) -> u64 {
    counter(
        server,
        "jetvault_backups_total",
        &format!("app=\"crm\",env=\"production\",trigger=\"schedule\",result=\"{result}\""),
    )
    .await
}

/// How many retention runs after scheduled backups of crm/production ended in `result`.
async fn retention_runs(server: &Server, result: &str) -> u64 {
    counter(
        server,
        "jetvault_retention_runs_total",
        &format!("app=\"crm\",env=\"production\",result=\"{result}\""),
    )
    .await
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
    let store = bucket.spec("jetvault");
    scenario_two_servers_one_snapshot_per_change(dir.path(), &store).await;
}

async fn scenario_two_servers_one_snapshot_per_change(dir: &Path, store: &StoreSpec) {
    let live = dir.join("live.json");
    write_atomically(&live, &corpus(SMALL));
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

    write_atomically(&live, &corpus(MEDIUM));
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
    assert_eq!(raw, corpus(MEDIUM));
    assert_eq!(meta.trigger, jetvault_core::Trigger::Schedule);
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

    let content = corpus(MEDIUM);
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
    assert_eq!(raw, corpus(MEDIUM), "the backup in flight was completed");
    assert_eq!(meta.trigger, jetvault_core::Trigger::Schedule);
}

#[tokio::test]
async fn retention_after_scheduled_backups_keeps_the_newest_and_the_released() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(&dir.path().join("store"));
    scenario_retention_after_scheduled_backups(dir.path(), &store).await;
}

#[tokio::test]
async fn retention_after_scheduled_backups_keeps_the_newest_and_the_released_localstack() {
    let Some(bucket) = TestBucket::new(Backend::LocalStack, "sched-retention").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = bucket.spec("");
    scenario_retention_after_scheduled_backups(dir.path(), &store).await;
}

async fn scenario_retention_after_scheduled_backups(dir: &Path, store: &StoreSpec) {
    let live = dir.join("live.json");
    write_atomically(&live, &corpus(SMALL));
    let server = Server::start(
        dir,
        &scheduled_config_with(store, &live, "", "retention = { keep_last = 2 }"),
    );
    eventually(
        "the first scheduled snapshot, and retention after it",
        Duration::from_secs(30),
        || async {
            (versions(store).await == [1] && retention_runs(&server, "applied").await == 1)
                .then_some(())
        },
    )
    .await;
    // v1 is released: protected whatever the policy says.
    let r = send(
        client()
            .post(server.url("/v1/apps/crm/envs/production/release"))
            .bearer_auth(OP)
            .body(json!({"version": 1, "label": "1.0.0"}).to_string()),
    )
    .await;
    assert_eq!(r.status, 201, "{r:?}");

    // Each change is backed up by the schedule, then retention keeps the newest two and
    // the released v1.
    let changes: [(&str, &[u64]); 4] = [
        (MEDIUM, &[2, 1]),
        (OTHER, &[3, 2, 1]),
        (LARGE, &[4, 3, 1]),
        ("n8n-webhook-manual-create.json", &[5, 4, 1]),
    ];
    for (runs, (name, expected)) in (2..).zip(changes) {
        write_atomically(&live, &corpus(name));
        eventually(
            &format!("versions {expected:?} after the change to {name}"),
            Duration::from_secs(30),
            || async {
                (versions(store).await == expected
                    && retention_runs(&server, "applied").await == runs)
                    .then_some(())
            },
        )
        .await;
    }
    // Unchanged ticks write nothing and delete nothing.
    wait_unchanged_ticks(&[&server], 2).await;
    assert_eq!(versions(store).await, [5, 4, 1]);
    assert_eq!(retention_runs(&server, "failed").await, 0);
    assert_eq!(
        counter(
            &server,
            "jetvault_retention_deleted_snapshots_total",
            "app=\"crm\",env=\"production\""
        )
        .await,
        2,
        "v2 and v3 were deleted"
    );

    // `jetvault list` shows the newest snapshots and the released one.
    let out = serve::with_config(&server.config_path)
        .args(["list", "crm", "production", "--json"])
        .output()
        .expect("run jetvault list");
    assert!(out.status.success(), "{out:?}");
    let listed: Vec<u64> = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["version"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, [5, 4, 1]);
    let vault = store.vault().await;
    assert_eq!(
        vault.get(&env_ref(), 5).await.unwrap().1,
        corpus(harness::N8N)
    );

    // The prunes are audit events by the scheduler.
    let events = vault.events(&env_ref(), 100).await.unwrap();
    let prunes: Vec<_> = events
        .iter()
        .filter(|e| e.action == jetvault_core::events::Action::Prune)
        .collect();
    assert_eq!(
        prunes.len(),
        2,
        "one per run that deleted something: {events:?}"
    );
    for e in prunes {
        assert_eq!(e.actor.who.as_deref(), Some("scheduler"));
        assert_eq!(e.actor.via, "schedule");
    }
}

#[tokio::test]
async fn a_failing_retention_is_logged_and_counted_and_the_schedule_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    let store = StoreSpec::local(&store_dir);
    let live = dir.path().join("live.json");
    write_atomically(&live, &corpus(SMALL));
    let server = Server::start(
        dir.path(),
        &scheduled_config_with(&store, &live, "", "retention = { keep_last = 1 }"),
    );
    eventually(
        "the first scheduled snapshot, and retention after it",
        Duration::from_secs(30),
        || async {
            (versions(&store).await == [1] && retention_runs(&server, "applied").await == 1)
                .then_some(())
        },
    )
    .await;
    // An unreadable release pointer: prune refuses rather than guess what is released.
    let pointer = store_dir.join(jetvault_core::layout::release_pointer_key(&env_ref()));
    std::fs::create_dir_all(pointer.parent().unwrap()).unwrap();
    std::fs::write(&pointer, b"{not json").unwrap();

    for (name, expected) in [(MEDIUM, &[2u64, 1][..]), (OTHER, &[3, 2, 1][..])] {
        write_atomically(&live, &corpus(name));
        eventually(
            &format!("the scheduled snapshot of {name}"),
            Duration::from_secs(30),
            || async { (versions(&store).await == expected).then_some(()) },
        )
        .await;
    }
    eventually(
        "two failed retention runs counted",
        Duration::from_secs(30),
        || async { (retention_runs(&server, "failed").await == 2).then_some(()) },
    )
    .await;
    assert_eq!(retention_runs(&server, "applied").await, 1);
    server.wait_log(
        "retention after the scheduled backup failed",
        Duration::from_secs(10),
    );
    assert!(
        server.stderr().contains("is unreadable"),
        "the log names the cause:\n{}",
        server.stderr()
    );
    // The schedule goes on, and the service still answers.
    wait_unchanged_ticks(&[&server], 1).await;
    assert_eq!(versions(&store).await, [3, 2, 1], "nothing was deleted");
    let r = send(client().get(server.url("/healthz"))).await;
    assert_eq!(r.status, 200);
}
