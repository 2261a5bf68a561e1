//! The connections open at once: a cap below the open-files limit, and who gives way at
//! the cap (the oldest connection not busy with a request: idle, or reading a head).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// How often [`Registry::wait_for_room`] asks another connection to give way while the
/// one asked before has not gone yet (it may have just become busy).
const RETRY_EVICT: Duration = Duration::from_millis(50);

/// The connections open; at most `cap`.
#[derive(Debug)]
pub(super) struct Registry {
    open: Mutex<Open>,
    freed: Notify,
    cap: usize,
}

#[derive(Debug, Default)]
struct Open {
    next: u64,
    /// By accept order: the oldest first.
    conns: BTreeMap<u64, Arc<Slot>>,
}

/// One connection's state, as the registry sees it.
#[derive(Debug, Default)]
pub(super) struct Slot {
    /// A request is being answered: not to be evicted.
    busy: AtomicBool,
    /// Asked to give way already.
    evicted: AtomicBool,
    /// Notified (with a stored permit) when the connection must close.
    evict: Notify,
}

impl Slot {
    pub(super) fn set_busy(&self, busy: bool) {
        self.busy.store(busy, Ordering::Release);
    }

    pub(super) fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire)
    }

    /// Completes when the connection is asked to give way.
    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// A connection's place in the registry, given back on drop.
#[derive(Debug)]
pub(super) struct Ticket {
    registry: Arc<Registry>,
    id: u64,
    pub(super) slot: Arc<Slot>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.registry.lock().conns.remove(&self.id);
        self.registry.freed.notify_waiters();
    }
}

impl Registry {
    pub(super) fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::new(Open::default()),
            freed: Notify::new(),
            cap: cap.max(1),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn len(&self) -> usize {
        self.lock().conns.len()
    }

    pub(super) fn cap(&self) -> usize {
        self.cap
    }

    /// A place for a connection just accepted.
    pub(super) fn register(self: &Arc<Self>) -> Ticket {
        let slot = Arc::new(Slot::default());
        let mut open = self.lock();
        let id = open.next;
        open.next += 1;
        open.conns.insert(id, slot.clone());
        drop(open);
        Ticket {
            registry: self.clone(),
            id,
            slot,
        }
    }

    /// Asks the oldest connection that is neither busy nor already asked to close;
    /// `false` if there is none.
    pub(super) fn evict_one(&self) -> bool {
        let open = self.lock();
        let victim = open.conns.values().find(|s| {
            !s.is_busy()
                && s.evicted
                    .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
        });
        match victim {
            Some(slot) => {
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }

    /// Returns once fewer than `cap` connections are open, asking the oldest idle ones
    /// to give way meanwhile.
    pub(super) async fn wait_for_room(&self) {
        loop {
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            freed.as_mut().enable();
            if self.len() < self.cap {
                return;
            }
            self.evict_one();
            let _ = tokio::time::timeout(RETRY_EVICT, freed).await;
        }
    }
}

/// The cap on connections: `max`, but no more than the open-files limit leaves after
/// `reserved` descriptors (file bodies, the store, logs), and at least a quarter of it.
pub(super) fn cap_for_fd_limit(max: usize, reserved: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let Some(limit) = limit.and_then(|l| usize::try_from(l).ok()) else {
        return max;
    };
    limit.saturating_sub(reserved).max(limit / 4).min(max)
}
