//! Scheduled backups: one cron job per configured environment that has a `schedule`
//! and a `live` target, plus the tracker of writes in flight that a graceful shutdown
//! waits for.
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

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::Notify;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::config::{Config, RetentionPolicy};
use crate::error::{Error, Result};
use crate::events::Actor;
use crate::http::metrics::Metrics;
use crate::id::EnvRef;
use crate::live::LiveTarget;
use crate::retention::{PruneOptions, PruneReport};
use crate::snapshot::{BackupOutcome, BackupRequest, Trigger};
use crate::vault::Vault;

#[derive(Debug, Default)]
struct TasksInner {
    running: AtomicUsize,
    closed: AtomicBool,
    idle: Notify,
}

/// Writes in flight (scheduled backups and API writes), run as their own tasks so that
/// a client hanging up does not cut a write in half, and so that shutdown can wait
/// for them.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    inner: Arc<TasksInner>,
}

/// Counts one task in flight until dropped.
#[derive(Debug)]
struct TaskGuard(Arc<TasksInner>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Tasks {
    fn enter(&self) -> Option<TaskGuard> {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        let guard = TaskGuard(self.inner.clone());
        (!self.inner.closed.load(Ordering::Acquire)).then_some(guard)
    }

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
        let guard = self.enter().ok_or_else(shutting_down)?;
        tokio::spawn(async move {
            let _guard = guard;
            fut.await
        })
        .await
        .map_err(|e| Error::internal(format!("a write task failed: {e}")))?
    }

    /// Starts `fut` as its own task; `false` (and nothing started) once shutdown has
    /// begun.
    pub fn spawn<F>(&self, fut: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(guard) = self.enter() else {
            return false;
        };
        tokio::spawn(async move {
            let _guard = guard;
            fut.await;
        });
        true
    }

    /// Refuses new tasks from now on.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// How many tasks are running.
    #[must_use]
    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Waits until no task is running.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }
}

fn shutting_down() -> Error {
    Error::unavailable("the service is shutting down; retry on another replica or after restart")
}

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
            let Some(live) = &env_config.live else {
                tracing::warn!(%env, "schedule set but no live target: not scheduled; add \
                    [apps.{}.envs.{}.live] to the config", env.app, env.env);
                continue;
            };
            let target = crate::live::open(&env, live, &config.s3).await?;
            let retention = env_config.retention.clone().filter(|p| {
                let empty = crate::retention::policy_is_empty(p);
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
                    actor: Actor {
                        who: Some("scheduler".into()),
                        via: "schedule".into(),
                        from: hostname(),
                    },
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

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
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
