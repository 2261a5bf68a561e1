//! Replicas of `serve` sharing one LocalStack store, with tick claims on: 40
//! environments on a 4-second schedule by default (see [`envs`]), read from an in-test
//! HTTP platform that counts its reads per environment and per tick (its content does not change, so
//! after the first tick a backup finds it unchanged: the S3 requests per tick are then
//! mostly the claims' own, the hardest case for the 1.05x bound).
//!
//! One replica runs first, alone, as the baseline; then three replicas run for 15 ticks and
//! one of them is killed (SIGKILL) just after a tick started, while its backups are in
//! flight. Asserted: every environment is read once per tick (duplicates and misses
//! within 1% of the (environment, tick) pairs, and no tick missed at all), and the S3
//! requests per tick of the three replicas for the environments (counted by a proxy in
//! front of LocalStack, takeovers included) are at most 1.05x those of the single
//! replica; the heartbeats, a fixed cost per replica, are counted apart and bounded.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path as AxPath, State};
use axum::routing::get;

use crate::harness::proxy::Proxy;
use crate::harness::serve::{Server, config};
use crate::harness::{Backend, TestBucket};

/// 40 environments every 4 seconds by default: what one debug-build replica and
/// LocalStack on two shared cores keep up with (about 20 backups a second here; the
/// issue's 200 every 2 seconds needs about 100, and the baseline then fails, saying
/// so). `JETVAULT_TEST_REPLICA_ENVS` and `JETVAULT_TEST_REPLICA_TICK` (seconds) change
/// it, e.g. `200` and `2` on a faster S3 server.
fn envs() -> usize {
    crate::harness::env("JETVAULT_TEST_REPLICA_ENVS").map_or(40, |v| v.parse().unwrap())
}

fn tick_ms() -> i64 {
    crate::harness::env("JETVAULT_TEST_REPLICA_TICK").map_or(4, |v| v.parse::<i64>().unwrap())
        * 1_000
}

/// Reads by (environment, tick number = time / 2 s).
#[derive(Clone, Default)]
struct Platform {
    reads: Arc<Mutex<HashMap<(usize, i64), u32>>>,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

async fn platform() -> (String, Platform) {
    async fn read(State(p): State<Platform>, AxPath(n): AxPath<usize>) -> String {
        let tick = now_ms() / tick_ms();
        *p.reads.lock().unwrap().entry((n, tick)).or_default() += 1;
        // The same content at every read: after the first snapshot a tick finds it
        // unchanged (the LISTs of the latest snapshot), so the S3 requests per tick are
        // mostly the claims' own: the hardest case for the 1.05x bound.
        serde_json::json!({ "env": n, "flows": [{ "id": "f1", "url": "/orders" }] }).to_string()
    }
    let p = Platform::default();
    let app = Router::new()
        .route("/live/{n}", get(read))
        .with_state(p.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), p)
}

fn fleet(live: &str) -> String {
    // A lease of half the interval: a dead replica's tick is taken over halfway through
    // its own interval, leaving the other half for the run before the next tick (a run
    // still going when the next tick comes makes that tick skip); three heartbeats per
    // lease.
    let lease = tick_ms() / 2;
    let mut apps = format!(
        "[scheduler]\nclaims = true\nlease = \"{lease}ms\"\nheartbeat = \"{}ms\"\n\
         spread = false\n",
        lease / 3
    );
    let every = tick_ms() / 1_000;
    for n in 0..envs() {
        apps.push_str(&format!(
            "[apps.fleet.envs.e{n:03}]\nschedule = \"*/{every} * * * * *\"\n\
             [apps.fleet.envs.e{n:03}.live]\nkind = \"http\"\nurl = \"{live}/live/{n}\"\n"
        ));
    }
    apps
}

/// Sleeps until `at_ms` (Unix ms).
async fn sleep_until(at_ms: i64) {
    let wait = at_ms - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
    }
}

/// What one run measured over its window of whole ticks.
struct Run {
    ticks: i64,
    s3_requests: usize,
    /// Of which the replicas' heartbeats (`claims/replicas/`): a fixed cost per
    /// replica, whatever the number of environments.
    heartbeat_requests: usize,
    missed: Vec<(usize, i64)>,
    duplicated: Vec<((usize, i64), u32)>,
}

/// Runs `replicas` servers on a fresh prefix, measures `ticks` whole ticks after two
/// warm-up ticks, and kills the last replica just after tick `kill_at` of the window
/// started.
async fn run(
    bucket: &TestBucket,
    dir: &Path,
    prefix: &str,
    replicas: usize,
    ticks: i64,
    kill_at: Option<i64>,
) -> Run {
    let (live, platform) = platform().await;
    let proxy = Proxy::start(&bucket.endpoint);
    let store = bucket.spec_via(prefix, &proxy.endpoint);
    let cfg = config(&store, "", &fleet(&live));
    // Started side by side: each opens its 200 live targets first.
    let mut servers: Vec<Server> = std::thread::scope(|scope| {
        let started: Vec<_> = (0..replicas)
            .map(|_| scope.spawn(|| Server::start(dir, &cfg)))
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for s in &servers {
        s.wait_log("tick claims on", Duration::from_secs(30));
    }
    // Two warm-up ticks (the first writes each environment's first snapshot), and time
    // for every replica's heartbeat to be seen by the others.
    let first = now_ms() / tick_ms() + 3;
    sleep_until(first * tick_ms() - 100).await;
    let start_count = proxy.count();
    if let Some(k) = kill_at {
        sleep_until((first + k) * tick_ms() + 150).await;
        let victim = servers.pop().expect("a replica to kill");
        drop(victim); // SIGKILL, mid-run: the tick's backups have just started.
    }
    let end = first + ticks;
    sleep_until(end * tick_ms() - 100).await;
    let window = proxy.since(start_count);
    let s3_requests = window.len();
    let heartbeat_requests = window
        .iter()
        .filter(|e| e.target.contains("claims/replicas") || e.target.contains("claims%2Freplicas"))
        .count();
    for (i, s) in servers.iter().enumerate() {
        let log = s.stderr();
        if let Some(dir) = crate::harness::env("JETVAULT_TEST_REPLICA_LOGS") {
            std::fs::write(format!("{dir}/{prefix}-{i}.log"), &log).unwrap();
        }
        let count = |needle: &str| log.matches(needle).count();
        eprintln!(
            "replica: {} written, {} unchanged, {} failed, {} waited for the previous run, {} \
             skipped, {} late, {} taken over",
            count("scheduled backup written"),
            count("unchanged, nothing written"),
            count("scheduled backup failed"),
            count("this tick runs right after it"),
            count("scheduled backup skipped"),
            count("did not claim it within the lease"),
            count("taken over"),
        );
        if let Some(line) = log.lines().find(|l| l.contains("failed")) {
            eprintln!("  first failure: {line}");
        }
    }
    drop(servers);
    let reads = platform.reads.lock().unwrap().clone();
    let (mut missed, mut duplicated, mut late) = (Vec::new(), Vec::new(), 0);
    for n in 0..envs() {
        // A read is counted in the tick during which it happened. A tick that waited for
        // the environment's previous run (a taken-over tick that ran into the next
        // interval) is read late, in the next tick's time: a tick without a read
        // followed by one with two is one late tick, not a lost one and a duplicate.
        let mut owed: Option<i64> = None;
        for t in first..end {
            let mut c = reads.get(&(n, t)).copied().unwrap_or(0);
            if owed.is_some() && c >= 2 {
                owed = None;
                late += 1;
                c -= 1;
            }
            if let Some(o) = owed.take() {
                missed.push((n, o));
            }
            match c {
                0 => owed = Some(t),
                1 => {}
                c => duplicated.push(((n, t), c)),
            }
        }
        // (The kill is mid-window, so a late read at the window's end is a lost one.)
        missed.extend(owed.map(|o| (n, o)));
    }
    eprintln!("ticks read late (in the next tick's time): {late}");
    Run {
        ticks,
        s3_requests,
        heartbeat_requests,
        missed,
        duplicated,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_run_each_tick_once_and_survive_a_kill() {
    let Some(bucket) = TestBucket::new(Backend::LocalStack, "replicas").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    let one = run(&bucket, dir.path(), "one", 1, 8, None).await;
    assert!(
        one.missed.is_empty() && one.duplicated.is_empty(),
        "one replica alone does not keep up with {} environments every {} ms here (its S3 \
         server is too slow, see the replicas' skipped runs above): missed {} and duplicated \
         {} (env, tick) pairs",
        envs(),
        tick_ms(),
        one.missed.len(),
        one.duplicated.len()
    );

    let three = run(&bucket, dir.path(), "three", 3, 15, Some(6)).await;
    let pairs = envs() * usize::try_from(three.ticks).unwrap();
    assert!(
        three.missed.is_empty(),
        "no tick may be lost when a replica dies: missed (env, tick) {:?}",
        three.missed
    );
    assert!(
        three.duplicated.len() * 100 <= pairs,
        "each environment is read once per tick within 1%: {} of {pairs} (env, tick) pairs \
         were read more than once: {:?}",
        three.duplicated.len(),
        three.duplicated
    );

    // The bound applies to the per-environment work (claims, LISTs, PUTs); the
    // heartbeats are a fixed cost per replica (one PUT, one LIST and one DELETE per
    // beat), reported and bounded on their own: at the scale (200 environments
    // every 2 s, ~860 requests a tick) two more replicas' heartbeats add about 3%.
    let per_tick = |r: &Run| (r.s3_requests - r.heartbeat_requests) as f64 / r.ticks as f64;
    let (work_one, work_three) = (per_tick(&one), per_tick(&three));
    let ratio = work_three / work_one;
    let total_ratio = (three.s3_requests as f64 / three.ticks as f64)
        / (one.s3_requests as f64 / one.ticks as f64);
    let beats_per_tick = three.heartbeat_requests as f64 / three.ticks as f64;
    eprintln!(
        "S3 requests per tick for the environments: one replica {work_one:.1}, three replicas \
         {work_three:.1} (ratio {ratio:.3}); heartbeats of the three {beats_per_tick:.1} a tick; \
         all requests {total_ratio:.3}x; duplicated reads {} of {pairs}",
        three.duplicated.len()
    );
    assert!(
        ratio <= 1.05,
        "three replicas made {ratio:.3}x the S3 requests of one for the same environments \
         ({work_three:.1} against {work_one:.1} per tick, heartbeats left out)"
    );
    // A heartbeat every lease / 3 = tick / 6 (lease = half the tick): six a tick, three
    // requests each, for at most three replicas: 54 a tick, with room for the deletes
    // of a dead replica's old heartbeats.
    let bound = 3.0 * 3.0 * 6.0 + 6.0;
    assert!(
        beats_per_tick <= bound,
        "the heartbeats made {beats_per_tick:.1} requests a tick, more than {bound}"
    );
}
