//! Scheduled backups: one cron job per configured environment that has a `schedule`
//! and a `live` target; each run is a write in flight ([`Tasks`]) that a graceful
//! shutdown waits for.
//!
//! - One run per environment at a time: a tick that finds the previous run still going
//!   is skipped (and logged).
//! - An unchanged configuration writes nothing (the library compares with the latest
//!   snapshot); several replicas running the same schedule on one store therefore write
//!   one snapshot per change (the version claim is create-only).
//! - After a scheduled backup that wrote a snapshot, retention is applied if the
//!   environment has a `retention` policy (see [`apply_retention`]).
//! - Shutdown: [`Scheduler::stop`] stops the ticks; [`Tasks::close`] refuses new runs;
//!   [`Tasks::wait_idle`] waits for the runs in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio_cron_scheduler::{Job, JobScheduler};

use crate::metrics::Metrics;
use crate::tasks::Tasks;
use jetvault_core::config::{Config, RetentionPolicy};
use jetvault_core::error::{Error, Result};
use jetvault_core::events::Actor;
use jetvault_core::id::EnvRef;
use jetvault_core::live::LiveTarget;
use jetvault_core::retention::{PruneOptions, PruneReport};
use jetvault_core::snapshot::{BackupOutcome, BackupRequest, Trigger};
use jetvault_core::vault::Vault;

/// The cron jobs of every scheduled environment.
pub struct Scheduler {
    sched: Option<JobScheduler>,
    envs: Vec<EnvRef>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("envs", &self.envs)
            .finish_non_exhaustive()
    }
}

/// What one environment's job needs.
struct EnvJob {
    env: EnvRef,
    target: Arc<dyn LiveTarget>,
    retention: Option<RetentionPolicy>,
    vault: Vault,
    metrics: Arc<Metrics>,
    tasks: Tasks,
    running: Arc<AtomicBool>,
    actor: Actor,
    failures: crate::notify::FailureStreak,
}

/// Resets an environment's "running" flag when its run ends, however it ends.
struct RunningFlag(Arc<AtomicBool>);

impl Drop for RunningFlag {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl EnvJob {
    fn tick(self: &Arc<Self>) {
        if self.running.swap(true, Ordering::AcqRel) {
            tracing::warn!(env = %self.env,
                "scheduled backup skipped: the previous run of this environment is still going");
            return;
        }
        let flag = RunningFlag(self.running.clone());
        let job = self.clone();
        let started = self.tasks.spawn(async move {
            let _flag = flag;
            job.run().await;
        });
        if !started {
            tracing::info!(env = %self.env, "scheduled backup skipped: shutting down");
        }
    }

    async fn run(&self) {
        let started = Instant::now();
        let mut req = BackupRequest::new(bytes::Bytes::new(), Trigger::Schedule);
        req.actor = self.actor.clone();
        let result = self
            .vault
            .backup_from_live(&self.env, self.target.as_ref(), req)
            .await;
        self.metrics
            .record_backup(&self.env, Trigger::Schedule, &result, started.elapsed());
        self.failures
            .record(&self.vault, &self.env, &self.actor, &result);
        match &result {
            Ok(BackupOutcome::Created(m)) => {
                tracing::info!(env = %self.env, version = m.version, size = m.size,
                    elapsed_ms = started.elapsed().as_millis() as u64, "scheduled backup written");
                if let Some(policy) = &self.retention {
                    let result = apply_retention(&self.vault, &self.env, policy, &self.actor).await;
                    self.metrics.record_retention(&self.env, &result);
                    if let Err(e) = result {
                        tracing::warn!(env = %self.env, error = %e.report(),
                            "retention after the scheduled backup failed; the next scheduled \
                             backup that writes a snapshot tries again");
                    }
                }
            }
            Ok(BackupOutcome::Unchanged(m)) => {
                tracing::debug!(env = %self.env, version = m.version,
                    "scheduled backup: unchanged, nothing written");
            }
            Err(e) => {
                tracing::error!(env = %self.env, error = %e.report(), "scheduled backup failed");
            }
        }
    }
}

/// Applies an environment's retention policy after a scheduled backup, as `actor`:
/// [`Vault::apply_retention`], which never deletes the latest snapshot, the released
/// one, one in the release history or a pinned one.
///
/// # Errors
/// What pruning fails with (the caller logs and counts it; the schedule goes on).
pub async fn apply_retention(
    vault: &Vault,
    env: &EnvRef,
    policy: &RetentionPolicy,
    actor: &Actor,
) -> Result<PruneReport> {
    let opts = PruneOptions {
        actor: actor.clone(),
        ..Default::default()
    };
    let report = vault.apply_retention(env, policy, &opts).await?;
    if report.deleted > 0 || !report.spared.is_empty() {
        tracing::info!(%env, deleted = report.deleted, kept = report.kept,
            spared = ?report.spared, "retention applied after the scheduled backup");
    } else {
        tracing::debug!(%env, kept = report.kept, "retention applied: nothing to delete");
    }
    Ok(report)
}

impl Scheduler {
    /// Starts one cron job per environment with a `schedule` and a `live` target.
    ///
    /// # Errors
    /// `Config` for a live target that can't be built or a cron expression the
    /// scheduler refuses; `Internal` if the scheduler can't start.
    pub async fn start(
        vault: Vault,
        config: &Config,
        metrics: Arc<Metrics>,
        tasks: Tasks,
    ) -> Result<Self> {
        let mut jobs = Vec::new();
        for (env, env_config) in config.envs() {
            let Some(schedule) = &env_config.schedule else {
                continue;
            };
            if env_config.live.is_none() {
                tracing::warn!(%env, "schedule set but no live target: not scheduled; add \
                    [apps.{}.envs.{}.live] to the config", env.app, env.env);
                continue;
            }
            let target = jetvault_core::live::open_configured(config, &env).await?;
            let retention = env_config.retention.clone().filter(|p| {
                let empty = jetvault_core::retention::policy_is_empty(p);
                if empty {
                    tracing::warn!(%env, "retention has no rule (keep_last, keep_daily, \
                        keep_weekly, keep_monthly, keep_within): not applied after scheduled \
                        backups");
                }
                !empty
            });
            jobs.push((
                schedule.clone(),
                Arc::new(EnvJob {
                    env: env.clone(),
                    target,
                    retention,
                    vault: vault.clone(),
                    metrics: metrics.clone(),
                    tasks: tasks.clone(),
                    running: Arc::new(AtomicBool::new(false)),
                    actor: Actor::on_this_host("scheduler", "schedule"),
                    failures: crate::notify::FailureStreak::new(config.notify.failures_in_a_row),
                }),
            ));
        }
        if jobs.is_empty() {
            return Ok(Self {
                sched: None,
                envs: Vec::new(),
            });
        }
        let sched = JobScheduler::new()
            .await
            .map_err(|e| Error::internal(format!("cannot start the scheduler: {e}")))?;
        let mut envs = Vec::new();
        for (schedule, job) in jobs {
            let env = job.env.clone();
            let cron = Job::new_async(schedule.as_str(), move |_, _| {
                let job = job.clone();
                Box::pin(async move { job.tick() })
            })
            .map_err(|e| {
                Error::config(format!(
                    "apps.{}.envs.{}.schedule = {schedule:?}: {e}",
                    env.app, env.env
                ))
            })?;
            sched
                .add(cron)
                .await
                .map_err(|e| Error::internal(format!("cannot schedule {env}: {e}")))?;
            tracing::info!(%env, %schedule, "scheduled backups");
            envs.push(env);
        }
        sched
            .start()
            .await
            .map_err(|e| Error::internal(format!("cannot start the scheduler: {e}")))?;
        Ok(Self {
            sched: Some(sched),
            envs,
        })
    }

    /// The scheduled environments.
    #[must_use]
    pub fn envs(&self) -> &[EnvRef] {
        &self.envs
    }

    /// Stops the ticks (runs in flight go on; wait for them with [`Tasks::wait_idle`]).
    pub async fn stop(&mut self) {
        if let Some(mut s) = self.sched.take()
            && let Err(e) = s.shutdown().await
        {
            tracing::warn!(error = %e, "the scheduler did not stop cleanly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn tasks_finish_and_refuse_after_close() {
        let tasks = Tasks::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        assert!(tasks.spawn(async move {
            let _ = rx.await;
        }));
        assert_eq!(tasks.running(), 1);
        tasks.close();
        assert!(!tasks.spawn(async {}));
        assert!(tasks.run(async { Ok(()) }).await.is_err());
        let waiter = tokio::spawn({
            let tasks = tasks.clone();
            async move { tasks.wait_idle().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "must wait for the task in flight");
        tx.send(()).unwrap();
        waiter.await.unwrap();
        assert_eq!(tasks.running(), 0);
    }
}
