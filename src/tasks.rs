//! Writes in flight (scheduled backups and API writes), each run as its own task so that
//! a client hanging up does not cut a write in half, and so that a graceful shutdown can
//! wait for them. Tracking is tokio-util's [`TaskTracker`]; this adds only the rule that
//! no new write starts once shutdown has begun.

use std::future::Future;

use jetvault_core::error::{Error, Result};
use tokio_util::task::TaskTracker;

/// The writes in flight, shared by the HTTP service and the scheduler.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    tracker: TaskTracker,
}

impl Tasks {
    /// Runs `fut` as its own task and waits for it; it finishes even if the caller
    /// stops waiting.
    ///
    /// # Errors
    /// `Unavailable` once shutdown has begun; otherwise what `fut` returns.
    pub async fn run<T, F>(&self, fut: F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T>> + Send + 'static,
    {
        if self.tracker.is_closed() {
            return Err(shutting_down());
        }
        self.tracker
            .spawn(fut)
            .await
            .map_err(|e| Error::internal(format!("a write task failed: {e}")))?
    }

    /// Starts `fut` as its own task; `false` (and nothing started) once shutdown has
    /// begun.
    pub fn spawn<F>(&self, fut: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if self.tracker.is_closed() {
            return false;
        }
        self.tracker.spawn(fut);
        true
    }

    /// Refuses new tasks from now on.
    pub fn close(&self) {
        self.tracker.close();
    }

    /// How many tasks are running.
    #[must_use]
    pub fn running(&self) -> usize {
        self.tracker.len()
    }

    /// Waits until no task is running; call [`Tasks::close`] first.
    pub async fn wait_idle(&self) {
        self.tracker.wait().await;
    }
}

fn shutting_down() -> Error {
    Error::unavailable("the service is shutting down; retry on another replica or after restart")
}
