//! Racing releases: writers that publish over the same release pointer at once.
//!
//! The checks take any `Store`, so the same ones run against the local directory, and
//! against LocalStack and moto through the harness (each on a fresh bucket).

use std::sync::Arc;

use crate::harness::{APPSMITH, Backend, NODERED, StoreSpec, TestBucket, corpus};
use jetvault_core::events::{Action, Actor};
use jetvault_core::store::Store;
use jetvault_core::{
    BackupRequest, EnvRef, ErrorKind, Label, Release, ReleaseRequest, Trigger, Vault, VaultOptions,
    layout,
};
use tokio::sync::Barrier;

/// How many writers race.
const RACERS: usize = 10;

/// What v1 and v2 hold.
const V1: &str = NODERED;
const V2: &str = APPSMITH;

fn actor(i: usize) -> Actor {
    Actor {
        who: Some(format!("racer-{i}")),
        via: "test".into(),
        from: None,
    }
}

/// A fresh environment (random app id) with snapshots v1 and v2.
async fn setup(store: Arc<dyn Store>) -> (Vault, EnvRef) {
    let vault = Vault::new(store, VaultOptions::default());
    let app = format!("race-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let env = EnvRef::parse(&app, "production").unwrap();
    for name in [V1, V2] {
        vault
            .backup(&env, BackupRequest::new(corpus(name), Trigger::Manual))
            .await
            .unwrap();
    }
    (vault, env)
}

/// The sequence numbers of the history entries in the store, newest first.
async fn history(vault: &Vault, env: &EnvRef) -> Vec<Release> {
    let page = vault
        .store()
        .list(&layout::releases_prefix(env), None, 1000)
        .await
        .unwrap();
    let mut out = Vec::new();
    for o in page.objects {
        let obj = vault.store().get(&o.key).await.unwrap();
        out.push(serde_json::from_slice(&obj.bytes).unwrap());
    }
    out
}

/// Starts `RACERS` releases of v2 at once, racer `i` with label `race-i`; returns what
/// each got.
async fn race(
    vault: &Vault,
    env: &EnvRef,
    if_match: Option<String>,
) -> Vec<jetvault_core::Result<jetvault_core::ReleasePointer>> {
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|i| {
            let (vault, env, barrier) = (vault.clone(), env.clone(), barrier.clone());
            let req = ReleaseRequest {
                label: Some(Label::new(format!("race-{i}")).unwrap()),
                notes: Some(format!("racer {i}")),
                if_match: if_match.clone(),
                ..ReleaseRequest::new(2, actor(i))
            };
            tokio::spawn(async move {
                barrier.wait().await;
                vault.release(&env, req).await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.expect("racer panicked"));
    }
    results
}

/// Ten releases with the same If-Match: exactly one wins, nine get `PreconditionFailed`,
/// and the pointer, the history and the label index hold exactly the winner.
pub async fn same_if_match_has_one_winner(store: Arc<dyn Store>) {
    let (vault, env) = setup(store).await;
    let first = vault
        .release(&env, ReleaseRequest::new(1, actor(99)))
        .await
        .unwrap();
    let results = race(&vault, &env, Some(first.etag.clone())).await;

    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one winner: {results:#?}");
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{}", e.report());
        }
    }
    let winner = winners[0].clone();
    assert_eq!(winner.release.seq, 2);
    assert_eq!(winner.release.previous, Some(first.release.reference()));

    let current = vault.current_release(&env).await.unwrap().unwrap();
    assert_eq!(current, winner);
    let hist = history(&vault, &env).await;
    assert_eq!(hist, vec![winner.release.clone(), first.release.clone()]);
    assert_eq!(
        vault.releases(&env, 100).await.unwrap(),
        vec![winner.release.clone(), first.release.clone()]
    );
    for i in 0..RACERS {
        let label = Label::new(format!("race-{i}")).unwrap();
        let exists = vault.store().head(&layout::label_key(&env, &label)).await;
        assert_eq!(
            exists.is_ok(),
            label == winner.release.label,
            "label key {label}: {exists:?}"
        );
    }
    let events = vault.events(&env, 100).await.unwrap();
    let releases: Vec<_> = events
        .iter()
        .filter(|e| e.action == Action::Release)
        .collect();
    assert_eq!(releases.len(), 2, "one event per release: {releases:#?}");
}

/// Ten releases without If-Match on an environment with no release: none overwrites
/// another. Whoever raced the same pointer state lost with `PreconditionFailed`; the
/// winners form one chain 1, 2, 3 ... each replacing the one before, and the history
/// holds exactly them.
pub async fn unconditional_racers_never_overwrite(store: Arc<dyn Store>) {
    let (vault, env) = setup(store).await;
    let results = race(&vault, &env, None).await;
    let mut winners: Vec<Release> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|p| p.release.clone()))
        .collect();
    for r in &results {
        if let Err(e) = r {
            assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{}", e.report());
        }
    }
    assert!(!winners.is_empty());
    winners.sort_by_key(|r| std::cmp::Reverse(r.seq));
    for (i, w) in winners.iter().rev().enumerate() {
        assert_eq!(w.seq, i as u64 + 1, "no gaps, no duplicates: {winners:#?}");
    }
    for pair in winners.windows(2) {
        assert_eq!(pair[0].previous, Some(pair[1].reference()));
    }
    assert_eq!(history(&vault, &env).await, winners);
    assert_eq!(
        vault.current_release(&env).await.unwrap().unwrap().release,
        winners[0]
    );
}

async fn local_store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreSpec::local(dir.path()).store().await;
    (dir, store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_same_if_match_has_one_winner() {
    let (_dir, store) = local_store().await;
    same_if_match_has_one_winner(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_unconditional_racers_never_overwrite() {
    let (_dir, store) = local_store().await;
    unconditional_racers_never_overwrite(store).await;
}

/// An S3 store on a fresh bucket of `backend`; `None` outside CI when it is missing.
async fn s3_store(backend: Backend) -> Option<(TestBucket, Arc<dyn Store>)> {
    let bucket = TestBucket::new(backend, "release-race").await?;
    let store = bucket.spec("jetvault").store().await;
    Some((bucket, store))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn localstack_same_if_match_has_one_winner() {
    let Some((_bucket, store)) = s3_store(Backend::LocalStack).await else {
        return;
    };
    same_if_match_has_one_winner(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn localstack_unconditional_racers_never_overwrite() {
    let Some((_bucket, store)) = s3_store(Backend::LocalStack).await else {
        return;
    };
    unconditional_racers_never_overwrite(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_same_if_match_has_one_winner() {
    let Some((_bucket, store)) = s3_store(Backend::Moto).await else {
        return;
    };
    same_if_match_has_one_winner(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn moto_unconditional_racers_never_overwrite() {
    let Some((_bucket, store)) = s3_store(Backend::Moto).await else {
        return;
    };
    unconditional_racers_never_overwrite(store).await;
}
