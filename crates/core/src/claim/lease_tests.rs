use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::LocalStore;

const KEY: &str = "runs/restore-all/r1/lease.json";

fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(LocalStore::open(dir.path().to_path_buf()).unwrap());
    (dir, store)
}

async fn held(store: &Arc<dyn Store>, ttl: Duration) -> Lease {
    match Lease::acquire(store.clone(), KEY, ttl).await.unwrap() {
        Acquired::Held(l) => l,
        Acquired::Busy(r) => panic!("busy: {r:?}"),
    }
}

#[tokio::test]
async fn one_holder_at_a_time_and_the_other_learns_who_and_until_when() {
    let (_dir, store) = store();
    let a = held(&store, Duration::from_secs(60)).await;
    assert!(!a.is_lost());
    let Acquired::Busy(found) = Lease::acquire(store.clone(), KEY, Duration::from_secs(60))
        .await
        .unwrap()
    else {
        panic!("a second process took a lease that is held");
    };
    assert_eq!(found.holder, a.holder());
    assert_eq!(found.expires_at(), a.expires_at());
    assert!(found.expires_ms > now_ms() + 50_000, "{found:?}");

    // Renewing moves the expiry on and keeps it this process's.
    let before = a.expires_at();
    tokio::time::sleep(Duration::from_millis(5)).await;
    a.renew().await.unwrap();
    assert!(a.expires_at() > before);
    // Released: the next process takes it at once.
    a.release().await;
    let b = held(&store, Duration::from_secs(60)).await;
    assert_ne!(b.holder(), a.holder());
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_once_and_its_old_holder_knows() {
    let (_dir, store) = store();
    // A holder that stopped renewing (its process died): its lease has expired.
    let dead = held(&store, Duration::ZERO).await;
    assert!(dead.is_lost(), "expired without a renewal");
    let b = held(&store, Duration::from_secs(60)).await;
    let stored: LeaseRecord = serde_json::from_slice(&store.get(KEY).await.unwrap().bytes).unwrap();
    assert_eq!(stored.holder, b.holder());
    // The old holder, back, can't renew, and its release leaves the new lease alone.
    let e = dead.renew().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PreconditionFailed, "{e}");
    assert!(e.to_string().contains("taken over"), "{e}");
    dead.release().await;
    assert!(matches!(
        Lease::acquire(store.clone(), KEY, Duration::from_secs(60)).await.unwrap(),
        Acquired::Busy(r) if r.holder == b.holder()
    ));
    // Two takers of one expired lease: exactly one wins.
    b.release().await;
    let _expired = held(&store, Duration::ZERO).await;
    let (x, y) = tokio::join!(
        Lease::acquire(store.clone(), KEY, Duration::from_secs(60)),
        Lease::acquire(store.clone(), KEY, Duration::from_secs(60))
    );
    let won = [x.unwrap(), y.unwrap()]
        .iter()
        .filter(|a| matches!(a, Acquired::Held(_)))
        .count();
    assert_eq!(won, 1);
}

#[tokio::test]
async fn an_object_that_is_not_a_lease_is_named() {
    let (_dir, store) = store();
    store
        .put(
            KEY,
            Bytes::from_static(b"{}"),
            &Metadata::new(),
            PutMode::Create,
        )
        .await
        .unwrap();
    let e = Lease::acquire(store.clone(), KEY, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupt);
    assert!(e.to_string().contains("is not a lease"), "{e}");
}
