//! One process at a time runs a restore-all run: before running (a new run, a resume, a
//! rerun of the same command) a process takes the run's lease in the store
//! ([`crate::claim::lease`]: create-only, renewed while the run goes, taken over once
//! expired), so that two replicas or two shells never restore the same environments
//! side by side. A run whose process died can be resumed once its lease has expired.

use std::sync::Arc;
use std::time::Duration;

use crate::claim::lease::{Acquired, Lease};
use crate::error::{Error, ErrorKind, Hint, Result};
use crate::layout;
use crate::vault::Vault;

/// How long a run's lease lasts without a renewal (renewed every third of it): how
/// long after its process died a run can be resumed elsewhere.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// The key of run `id`'s lease, next to its events.
#[must_use]
pub fn lease_key(id: &str) -> String {
    format!("{}{id}/lease.json", layout::RESTORE_ALL_RUNS_PREFIX)
}

/// This process's lease on a run, renewed in the background until released.
#[derive(Debug)]
pub struct RunLease {
    lease: Arc<Lease>,
    renewal: tokio::task::JoinHandle<()>,
}

impl RunLease {
    /// The lease, for [`super::RunOptions::lease`].
    #[must_use]
    pub fn lease(&self) -> Arc<Lease> {
        self.lease.clone()
    }

    /// Stops renewing and deletes the lease (if still this process's).
    pub async fn release(self) {
        self.renewal.abort();
        self.lease.release().await;
    }
}

impl Drop for RunLease {
    /// A lease dropped unreleased (its task cancelled) stops being renewed, and expires.
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

impl Vault {
    /// Takes run `id` for this process for `ttl`, renewed every third of it until
    /// [`RunLease::release`].
    ///
    /// # Errors
    /// `AlreadyExists` when another process is running the run (naming the run, that
    /// process, and when its lease expires); store errors.
    pub async fn lease_run(&self, id: &str, ttl: Duration) -> Result<RunLease> {
        super::record::check_run_id(id)?;
        match Lease::acquire(self.store().clone(), &lease_key(id), ttl).await? {
            Acquired::Held(lease) => {
                let lease = Arc::new(lease);
                let renewal = lease.spawn_renewal();
                tracing::info!(run = %id, holder = %lease.holder(), "took the run's lease");
                Ok(RunLease { lease, renewal })
            }
            Acquired::Busy(found) => {
                let expires = found.expires_at().to_rfc3339();
                Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!(
                        "restore-all run {id} is in progress elsewhere (process {}); its \
                         lease expires at {expires} unless that process renews it",
                        found.holder
                    ),
                )
                .with_next(Hint::text(format!(
                    "let it finish and follow it (GET /v1/restore-all/{id}, or \
                     `jetvault restore-all --resume {id} --dry-run`); if that process died, \
                     resume the run after {expires}"
                ))))
            }
        }
    }
}
