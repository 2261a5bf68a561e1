use std::collections::HashMap;

use super::*;
use crate::store::LocalStore;

fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(LocalStore::open(dir.path().to_path_buf()).unwrap());
    (dir, store)
}

fn replica(store: &Arc<dyn Store>, id: &str) -> Arc<Claims> {
    Arc::new(Claims::with_id(
        store.clone(),
        Duration::from_secs(3),
        Duration::from_secs(1),
        id.into(),
    ))
}

/// Whether the checking replica is the owner's successor (see [`Claims::check`]).
const FIRST: bool = true;
const OTHER: bool = false;

fn env(n: usize) -> EnvRef {
    EnvRef::parse("app", &format!("e{n}")).unwrap()
}

#[tokio::test]
async fn replicas_agree_on_one_owner_and_share_the_work() {
    let (_dir, store) = store();
    let rs: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|id| replica(&store, id))
        .collect();
    for r in &rs {
        r.beat().await.unwrap();
    }
    for r in &rs {
        r.beat().await.unwrap();
        assert_eq!(r.members().len(), 3, "each sees all three");
    }
    let mut per_owner: HashMap<String, usize> = HashMap::new();
    for n in 0..300 {
        let owners: Vec<_> = rs
            .iter()
            .map(|r| r.owner_and_successor(&env(n), 1_000 * n as i64).0)
            .collect();
        assert!(owners.windows(2).all(|w| w[0] == w[1]), "{owners:?}");
        *per_owner.entry(owners[0].to_string()).or_default() += 1;
    }
    assert_eq!(per_owner.len(), 3, "{per_owner:?}");
    assert!(per_owner.values().all(|&n| n > 60), "{per_owner:?}");
}

#[tokio::test]
async fn a_tick_is_claimed_once_and_the_previous_claim_is_deleted() {
    let (_dir, store) = store();
    let (a, b) = (replica(&store, "a"), replica(&store, "b"));
    let e = env(1);
    assert!(a.claim(&e, 1_000, 1_000, None).await.unwrap());
    assert!(!b.claim(&e, 1_000, 1_000, None).await.unwrap());
    assert!(b.claim(&e, 2_000, 2_000, Some(1_000)).await.unwrap());
    let left = store.list(layout::CLAIMS_PREFIX, None, 100).await.unwrap();
    let keys: Vec<_> = left.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, [layout::tick_claim_key(&e, 2_000).as_str()]);
}

#[tokio::test]
async fn heartbeats_replace_each_other_and_say_what_is_settled() {
    let (_dir, store) = store();
    let a = replica(&store, "a");
    a.set_next_due(i64::MAX);
    let guard = a.enter(5_000);
    a.beat().await.unwrap();
    a.beat().await.unwrap();
    let m = a.members();
    assert_eq!(m.len(), 1);
    assert_eq!(
        m[0].settled_ms, 5_000,
        "a run in flight holds the settled time back"
    );
    drop(guard);
    a.beat().await.unwrap();
    assert!(a.members()[0].settled_ms > 5_000);
    // The previous heartbeats are deleted off the beat's path.
    heartbeats_left(&store, 1).await;
}

#[tokio::test]
async fn a_settled_owner_is_left_alone() {
    let (_dir, store) = store();
    let (a, b) = (replica(&store, "a"), replica(&store, "b"));
    let e = env(2);
    let run = now_ms() - 10;
    assert!(a.claim(&e, run, run, None).await.unwrap());
    a.beat().await.unwrap();
    b.beat().await.unwrap();
    assert_eq!(
        b.check(&e, run, run, "a", true, FIRST).await.unwrap(),
        Check::Settled
    );
}

#[tokio::test]
async fn a_slow_live_owner_is_given_time_and_never_taken_over() {
    let (_dir, store) = store();
    let (a, b) = (replica(&store, "a"), replica(&store, "b"));
    a.set_next_due(i64::MAX);
    let e = env(6);
    let run = now_ms() - 10;
    let running = a.enter(run);
    assert!(a.claim(&e, run, run, None).await.unwrap());
    a.beat().await.unwrap();
    b.beat().await.unwrap();
    assert_eq!(
        b.check(&e, run, run, "a", true, FIRST).await.unwrap(),
        Check::Wait,
        "alive, still running: no request, look again later"
    );
    assert_eq!(
        b.check(&e, run, run, "a", false, FIRST).await.unwrap(),
        Check::Settled,
        "its claim is there and it is alive"
    );
    drop(running);
}

#[tokio::test]
async fn an_unclaimed_tick_of_a_silent_owner_is_claimed_by_the_checker() {
    let (_dir, store) = store();
    let b = replica(&store, "b");
    b.beat().await.unwrap();
    let e = env(3);
    let run = now_ms();
    // "a" never beat and never claimed: b claims the tick, a third replica loses it.
    assert_eq!(
        b.check(&e, run, run, "a", true, FIRST).await.unwrap(),
        Check::Claimed
    );
    let c = replica(&store, "c");
    c.beat().await.unwrap();
    assert_eq!(
        c.check(&e, run, run, "a", true, OTHER).await.unwrap(),
        Check::Settled,
        "b is alive"
    );
}

#[tokio::test]
async fn a_claim_of_a_dead_replica_expires_and_is_taken_over_once() {
    let (_dir, store) = store();
    let e = env(4);
    let run = now_ms() - 60_000;
    // "dead" claimed the tick a minute ago, and its last heartbeat is older than that.
    let dead = replica(&store, "dead");
    assert!(dead.claim(&e, run, run, None).await.unwrap());
    let old = layout::heartbeat_key("dead", run - 1_000, run - 1_000);
    store
        .put(&old, Bytes::new(), &Metadata::new(), PutMode::Overwrite)
        .await
        .unwrap();
    let (b, c) = (replica(&store, "b"), replica(&store, "c"));
    b.beat().await.unwrap();
    c.beat().await.unwrap();
    b.beat().await.unwrap();
    assert_eq!(
        b.check(&e, run, run, "dead", true, FIRST).await.unwrap(),
        Check::TakenOver
    );
    assert_eq!(
        c.check(&e, run, run, "dead", true, FIRST).await.unwrap(),
        Check::Lost,
        "two replicas that both think they are first: one takeover"
    );
    assert_eq!(
        c.check(&e, run, run, "dead", true, OTHER).await.unwrap(),
        Check::Lost
    );
}

/// Waits until `n` heartbeats are left (the previous ones are deleted off the beat's
/// path).
async fn heartbeats_left(store: &Arc<dyn Store>, n: usize) {
    let mut left = usize::MAX;
    for _ in 0..200 {
        left = store
            .list(layout::REPLICAS_PREFIX, None, 100)
            .await
            .unwrap()
            .objects
            .len();
        if left == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{left} heartbeats left, not {n}");
}

/// What a dead owner's tick costs the survivors: its successor reads the claim and
/// creates the takeover (2 requests), each other replica asks whether the takeover
/// exists (1); a settled tick costs nothing.
#[tokio::test]
async fn a_dead_owners_tick_costs_two_requests_to_its_successor_and_one_to_the_others() {
    use crate::store::counting::CountingStore;
    let (_dir, inner) = store();
    let e = env(7);
    // Ten seconds ago: dead (no beat for 2.5 heartbeats), not yet gone (10 leases), so
    // that no beat deletes its heartbeat while requests are counted.
    let run = now_ms() - 10_000;
    let dead = replica(&inner, "dead");
    assert!(dead.claim(&e, run, run, None).await.unwrap());
    let old = layout::heartbeat_key("dead", run - 1_000, run - 1_000);
    inner
        .put(&old, Bytes::new(), &Metadata::new(), PutMode::Overwrite)
        .await
        .unwrap();
    let counted = CountingStore::new(inner.clone());
    let counts = counted.counts().clone();
    let counted: Arc<dyn Store> = Arc::new(counted);
    let (b, c) = (replica(&counted, "b"), replica(&counted, "c"));
    b.beat().await.unwrap();
    c.beat().await.unwrap();
    b.beat().await.unwrap();
    // "dead" owned the tick while it beat; gone from the members now, its runner-up
    // (the successor) ranks first among the live ones.
    let first = b.owner_and_successor(&e, run).0;
    assert_eq!(
        c.owner_and_successor(&e, run).0,
        first,
        "both agree on the successor"
    );
    let (succ, other) = if first.as_ref() == "b" {
        (&b, &c)
    } else {
        (&c, &b)
    };
    // The beats delete their previous heartbeats off their path: let that finish.
    heartbeats_left(&inner, 3).await;
    let before = counts.total();
    assert_eq!(
        succ.check(&e, run, run, "dead", true, FIRST).await.unwrap(),
        Check::TakenOver
    );
    assert_eq!(counts.total() - before, 2, "{:?}", counts.by_op());
    let before = counts.total();
    assert_eq!(
        other
            .check(&e, run, run, "dead", true, OTHER)
            .await
            .unwrap(),
        Check::Lost
    );
    assert_eq!(counts.total() - before, 1, "{:?}", counts.by_op());
    // A tick the owner settled: no request at all.
    let later = now_ms() - 10;
    assert!(succ.claim(&e, later, later, None).await.unwrap());
    succ.set_next_due(i64::MAX);
    succ.beat().await.unwrap();
    other.beat().await.unwrap();
    heartbeats_left(&inner, 3).await;
    let before = counts.total();
    let owner = succ.id().to_string();
    assert_eq!(
        other
            .check(&e, later, later, &owner, true, FIRST)
            .await
            .unwrap(),
        Check::Settled
    );
    assert_eq!(counts.total(), before);
}

#[tokio::test]
async fn a_dead_replica_that_had_settled_the_tick_is_not_taken_over() {
    let (_dir, store) = store();
    let e = env(5);
    // Ten seconds ago: dead (no beat for 2.5 heartbeats), not yet gone (10 leases).
    let run = now_ms() - 10_000;
    let dead = replica(&store, "dead");
    assert!(dead.claim(&e, run, run, None).await.unwrap());
    let last = layout::heartbeat_key("dead", run + 500, run + 400);
    store
        .put(&last, Bytes::new(), &Metadata::new(), PutMode::Overwrite)
        .await
        .unwrap();
    let b = replica(&store, "b");
    b.beat().await.unwrap();
    assert_eq!(
        b.check(&e, run, run, "dead", true, FIRST).await.unwrap(),
        Check::Settled
    );
}

#[test]
fn spread_offsets_are_stable_bounded_and_spread() {
    let interval = Duration::from_secs(300);
    let max = Duration::from_secs(600);
    let offsets: Vec<_> = (0..1000)
        .map(|n| spread_offset(&env(n), interval, max))
        .collect();
    assert!(offsets.iter().all(|o| *o < interval));
    assert_eq!(offsets[7], spread_offset(&env(7), interval, max));
    // 10 buckets of 30 s each get roughly a tenth each.
    let mut buckets = [0usize; 10];
    for o in &offsets {
        buckets[(o.as_secs() / 30) as usize] += 1;
    }
    assert!(
        buckets.iter().all(|&n| (60..=140).contains(&n)),
        "{buckets:?}"
    );
    assert!(spread_offset(&env(1), interval, Duration::from_secs(10)) < Duration::from_secs(10));
    assert_eq!(spread_offset(&env(1), Duration::ZERO, max), Duration::ZERO);
}

#[tokio::test]
async fn sweep_deletes_only_claims_of_old_ticks() {
    let (_dir, store) = store();
    let r = replica(&store, "a");
    r.beat().await.unwrap();
    let now = now_ms();
    let day = i64::try_from(STALE_AFTER.as_millis()).unwrap();
    let (old, older, young) = (now - day - 60_000, now - 3 * day, now - 60_000);
    for tick in [old, older, young] {
        assert!(r.claim(&env(1), tick, tick, None).await.unwrap());
    }
    store
        .put(
            &layout::takeover_key(&env(1), older),
            Bytes::from_static(b"{}"),
            &Metadata::new(),
            PutMode::Overwrite,
        )
        .await
        .unwrap();
    // Another environment's old claim is not this sweep's.
    assert!(r.claim(&env(2), old, old, None).await.unwrap());

    let before = now - day;
    assert_eq!(
        sweep_stale(store.as_ref(), &env(1), before, true)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        sweep_stale(store.as_ref(), &env(1), before, false)
            .await
            .unwrap(),
        3
    );
    let left = store
        .list(&layout::tick_claims_prefix(&env(1)), None, 100)
        .await
        .unwrap();
    let keys: Vec<_> = left.objects.iter().map(|o| o.key.clone()).collect();
    assert_eq!(keys, vec![layout::tick_claim_key(&env(1), young)]);
    assert_eq!(
        sweep_stale(store.as_ref(), &env(2), before, false)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        sweep_stale(store.as_ref(), &env(1), before, false)
            .await
            .unwrap(),
        0
    );
}

#[test]
fn first_run_is_the_next_tick_plus_its_spread_offset() {
    let cron = crate::config::parse_cron("0 */5 * * * *").unwrap();
    let five = 300_000;
    let e = env(7);
    let now = 1_700_000_000_000 - 1_700_000_000_000 % five + 1_000; // 1 s past a tick
    // No spread: the next tick, due at its time.
    assert_eq!(
        first_run(&cron, &e, None, now),
        Some((now - 1_000 + five, now - 1_000 + five))
    );
    // Spread: the offset stays the same for every tick of the environment, within the
    // interval; a tick whose offset run is still ahead is the one due next.
    let max = Duration::from_secs(3600);
    let offset = ms(spread_offset(&e, Duration::from_millis(300_000), max));
    assert!((0..five).contains(&offset));
    let (tick, due) = first_run(&cron, &e, Some(max), now).unwrap();
    assert_eq!(due - tick, offset);
    assert!(due >= now && due < now + five, "{due} {now}");
    let expected_tick = if offset >= 1_000 {
        now - 1_000
    } else {
        now - 1_000 + five
    };
    assert_eq!(tick, expected_tick);
}
