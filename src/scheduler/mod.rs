//! Scheduled backups: every configured environment that has a `schedule` and a `live`
//! target is backed up on its cron ticks; each run is a write in flight ([`Tasks`]) that
//! a graceful shutdown waits for.
//!
//! - One timer for all environments ([`timer`]): a min-heap of next due times, so that
//!   10,000 environments cost one task and a few dozen bytes each beyond their config.
//! - Spread (`[scheduler] spread`): each environment's ticks run at a fixed offset into
//!   the interval (a hash of app and environment, below `spread_max`); the tick keeps
//!   its cron time as its identity, so replicas agree on it.
//! - Per-host limits (`[scheduler] per_host_concurrency`, `per_host_rate`,
//!   `[scheduler.hosts."host:port"]`): live reads wait for a permit of their host.
//! - Claims (`[scheduler] claims`): replicas sharing a store run each (environment,
//!   tick) once, through create-only claim objects ([`jetvault_core::claim`]).
//! - One run per environment at a time: a tick that finds the previous run still going
//!   waits for it and runs right after (one tick waits; a newer one replaces it, and the
//!   older is logged as skipped). A tick taken over from a dead replica often runs late,
//!   into the next tick's time, and this keeps that next tick.
//! - An unchanged configuration writes nothing (the library compares with the latest
//!   snapshot), and the version claim is create-only, so even without tick claims
//!   several replicas write one snapshot per change.
//! - After a scheduled backup that wrote a snapshot, retention is applied if the
//!   environment has a `retention` policy (see [`apply_retention`]).
//! - Shutdown: [`Scheduler::stop`] stops the ticks; [`Tasks::close`] refuses new runs;
//!   [`Tasks::wait_idle`] waits for the runs in flight.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::metrics::Metrics;
use crate::tasks::Tasks;
use jetvault_core::claim::{Check, Claims, now_ms, spread_offset};
use jetvault_core::config::{Config, RetentionPolicy, SchedulerConfig};
use jetvault_core::error::Result;
use jetvault_core::events::Actor;
use jetvault_core::id::EnvRef;
use jetvault_core::live::LiveTarget;
use jetvault_core::retention::{PruneOptions, PruneReport};
use jetvault_core::snapshot::{BackupOutcome, BackupRequest, Trigger};
use jetvault_core::vault::Vault;

pub mod timer;
mod update;

use timer::{Due, Entry, Timer};

/// The timer of every scheduled environment.
pub struct Scheduler {
    stop: Option<tokio::sync::watch::Sender<bool>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    /// The scheduled environments' jobs, shared with the timer.
    jobs: Vec<Arc<EnvJob>>,
    /// The new job list for the timer after a change of the environments
    /// ([`Scheduler::update`]).
    updates: Option<tokio::sync::mpsc::UnboundedSender<Vec<Arc<EnvJob>>>>,
    /// A hash of every setting but the apps: a change restarts everything.
    global: Option<u64>,
    limits: Arc<jetvault_core::host_limits::HostLimits>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("envs", &self.jobs.len())
            .finish_non_exhaustive()
    }
}

/// How many times a tick's check waits for an owner that is alive but not done yet
/// before it asks the store.
const PATIENCE: u8 = 3;

fn lease_ms(claims: &Claims) -> i64 {
    i64::try_from(claims.lease().as_millis()).unwrap_or(i64::MAX / 4)
}

/// What every environment's runs share.
struct Shared {
    vault: Vault,
    metrics: Arc<Metrics>,
    tasks: Tasks,
    actor: Actor,
    claims: Option<Arc<Claims>>,
    settings: SchedulerConfig,
    /// Checks to look at again, back to the timer.
    /// With the job it is for: its index may have changed in an update meanwhile.
    requeue: tokio::sync::mpsc::UnboundedSender<(Arc<EnvJob>, Entry)>,
}

/// What one environment's runs need.
struct EnvJob {
    env: EnvRef,
    target: Arc<dyn LiveTarget>,
    retention: Option<RetentionPolicy>,
    cron: Arc<croner::Cron>,
    runs: std::sync::Mutex<Runs>,
    /// Failed runs in a row, for the `scheduled-backup-failing` notice.
    failures: crate::notify::FailureStreak,
    /// A hash of the environment's configuration: an update keeps the job (its next
    /// tick, its run going) while it is the same.
    fingerprint: Option<u64>,
}

/// One tick to run: its identity, its due time, how it came to this replica, and (with
/// claims) its mark as in progress, held from the moment it is due, waiting included.
struct Tick {
    tick_ms: i64,
    run_ms: i64,
    via: Via,
    _in_flight: Option<jetvault_core::claim::RunGuard>,
}

/// An environment's runs: whether one is going, and the tick waiting for it.
#[derive(Default)]
struct Runs {
    running: bool,
    waiting: Option<Tick>,
}

/// Ends an environment's runs if its task ends without handing over (a panic, or a
/// task dropped at shutdown): the waiting tick is dropped with it.
struct RunningFlag {
    job: Arc<EnvJob>,
    armed: bool,
}

impl Drop for RunningFlag {
    fn drop(&mut self) {
        if self.armed {
            let mut runs = self.job.lock_runs();
            runs.running = false;
            runs.waiting = None;
        }
    }
}

/// How a run came to be: whether it still has to claim its tick.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Via {
    /// No claims.
    Plain,
    /// This replica owns the tick and claims it first; a win deletes the previous
    /// tick's claim.
    Claim { prev_tick_ms: Option<i64> },
    /// A fallback check already claimed it (its owner did not in time) or took it over
    /// (its claimant died).
    Fallback,
}

impl EnvJob {
    fn lock_runs(&self) -> std::sync::MutexGuard<'_, Runs> {
        // A panic while holding the lock leaves plain data behind: use it.
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a run of the tick `tick_ms` due at `run_ms`; if the previous run of the
    /// environment is still going, the tick waits for it (replacing an older waiting
    /// tick, which is skipped). Nothing starts once the service is shutting down.
    fn start(self: &Arc<Self>, shared: &Arc<Shared>, tick_ms: i64, run_ms: i64, via: Via) {
        let tick = Tick {
            tick_ms,
            run_ms,
            via,
            _in_flight: shared.claims.as_ref().map(|c| c.enter(run_ms)),
        };
        {
            let mut runs = self.lock_runs();
            if runs.running {
                if let Some(old) = runs.waiting.replace(tick) {
                    tracing::warn!(env = %self.env, tick_ms = old.tick_ms,
                        "scheduled backup skipped: two ticks came while one run was going; \
                         the newer one runs next");
                } else {
                    tracing::info!(env = %self.env, tick_ms,
                        "the previous run of this environment is still going: this tick runs \
                         right after it");
                }
                return;
            }
            runs.running = true;
        }
        let flag = RunningFlag {
            job: self.clone(),
            armed: true,
        };
        let (job, shared2) = (self.clone(), shared.clone());
        let started = shared.tasks.spawn(async move {
            // Moved whole, so that its Drop runs if this task never hands over.
            let mut flag = flag;
            let mut tick = tick;
            loop {
                job.claim_and_run(&shared2, tick.tick_ms, tick.run_ms, tick.via)
                    .await;
                drop(tick);
                let mut runs = job.lock_runs();
                match runs.waiting.take() {
                    Some(next) => tick = next,
                    None => {
                        runs.running = false;
                        flag.armed = false;
                        return;
                    }
                }
            }
        });
        if !started {
            tracing::info!(env = %self.env, "scheduled backup skipped: shutting down");
        }
    }

    async fn claim_and_run(&self, shared: &Shared, tick_ms: i64, run_ms: i64, via: Via) {
        if let (Some(claims), Via::Claim { prev_tick_ms }) = (&shared.claims, via) {
            match claims.claim(&self.env, tick_ms, run_ms, prev_tick_ms).await {
                Ok(true) => shared.metrics.record_claim("won"),
                Ok(false) => {
                    shared.metrics.record_claim("lost");
                    tracing::debug!(env = %self.env, tick_ms, "tick claimed by another replica");
                    return;
                }
                Err(e) => {
                    shared.metrics.record_claim("error");
                    tracing::error!(env = %self.env, error = %e.report(),
                        "scheduled backup not run: the tick could not be claimed; another \
                         replica takes it over after the lease");
                    return;
                }
            }
        }
        self.run(shared).await;
    }

    /// The fallback check of a tick owned by another replica (see [`Claims::check`]);
    /// an owner alive but not done yet is looked at again one lease later, up to
    /// [`PATIENCE`] times, without a request.
    async fn check(self: &Arc<Self>, shared: &Arc<Shared>, entry: Entry) {
        let (
            Some(claims),
            Due::Check {
                run_ms,
                owner,
                round,
                first,
            },
        ) = (&shared.claims, &entry.what)
        else {
            return;
        };
        let (tick_ms, run_ms) = (entry.tick_ms, *run_ms);
        match claims
            .check(&self.env, tick_ms, run_ms, owner, *round < PATIENCE, *first)
            .await
        {
            Ok(Check::Settled) => {}
            Ok(Check::Wait) => {
                let again = Entry {
                    due_ms: now_ms() + lease_ms(claims),
                    what: Due::Check {
                        run_ms,
                        owner: owner.clone(),
                        round: round + 1,
                        first: *first,
                    },
                    ..entry
                };
                let _ = shared.requeue.send((self.clone(), again));
            }
            Ok(Check::Lost) => shared.metrics.record_claim("lost"),
            Ok(Check::Claimed) => {
                shared.metrics.record_claim("late");
                tracing::info!(env = %self.env, %owner, tick_ms,
                    "the tick's owner did not claim it within the lease: running it here");
                self.start(shared, tick_ms, run_ms, Via::Fallback);
            }
            Ok(Check::TakenOver) => {
                shared.metrics.record_claim("taken_over");
                tracing::warn!(env = %self.env, tick_ms,
                    "the tick's claim expired (its replica stopped beating): taken over");
                self.start(shared, tick_ms, run_ms, Via::Fallback);
            }
            Err(e) => {
                shared.metrics.record_claim("error");
                tracing::error!(env = %self.env, error = %e.report(),
                    "could not check whether the tick's owner ran it");
            }
        }
    }

    async fn run(&self, shared: &Shared) {
        let started = Instant::now();
        let mut req = BackupRequest::new(bytes::Bytes::new(), Trigger::Schedule);
        req.actor = shared.actor.clone();
        let result = shared
            .vault
            .backup_from_live(&self.env, self.target.as_ref(), req)
            .await;
        shared
            .metrics
            .record_backup(&self.env, Trigger::Schedule, &result, started.elapsed());
        self.failures
            .record(&shared.vault, &self.env, &shared.actor, &result);
        match &result {
            Ok(BackupOutcome::Created(m)) => {
                tracing::info!(env = %self.env, version = m.version, size = m.size,
                    elapsed_ms = started.elapsed().as_millis() as u64, "scheduled backup written");
                if let Some(policy) = &self.retention {
                    let result =
                        apply_retention(&shared.vault, &self.env, policy, &shared.actor).await;
                    shared.metrics.record_retention(&self.env, &result);
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
    /// Starts the timer of every environment with a `schedule` and a `live` target (and,
    /// with `[scheduler] claims`, this replica's heartbeat).
    ///
    /// # Errors
    /// `Config` for a live target that can't be built or a cron expression the
    /// scheduler refuses; what the store fails with for the first heartbeat.
    pub async fn start(
        vault: Vault,
        config: &Config,
        metrics: Arc<Metrics>,
        tasks: Tasks,
    ) -> Result<Self> {
        // The scheduler's live reads go through per-host limits (concurrency, rate).
        let limits = Arc::new(config.scheduler.host_limits());
        let jobs = update::build_jobs(config, &limits, &std::collections::HashMap::new()).await?;
        let global = update::global_fingerprint(config);
        if jobs.is_empty() {
            return Ok(Self {
                stop: None,
                handle: None,
                heartbeat: None,
                jobs,
                updates: None,
                global,
                limits,
            });
        }
        let settings = config.scheduler.clone();
        let claims = if settings.claims {
            let claims = Arc::new(Claims::new(
                vault.store().clone(),
                settings.lease,
                settings.heartbeat,
            ));
            claims.beat().await.map_err(|e| {
                e.context("starting the scheduler's tick claims ([scheduler] claims = true)")
            })?;
            tracing::info!(replica = %claims.id(), replicas = claims.members().len(),
                "tick claims on: this replica shares the schedules with the others on the store");
            Some(claims)
        } else {
            None
        };
        let heartbeat = claims.as_ref().map(Claims::spawn_heartbeat);
        tracing::info!(
            environments = jobs.len(),
            spread = settings.spread,
            claims = settings.claims,
            "scheduled backups"
        );
        let (requeue, requeued) = tokio::sync::mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            vault,
            metrics,
            tasks,
            actor: Actor::on_this_host("scheduler", "schedule"),
            claims,
            settings,
            requeue,
        });
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (updates, updated) = tokio::sync::mpsc::unbounded_channel();
        let handle = tokio::spawn(run_timer(shared, jobs.clone(), stopped, requeued, updated));
        Ok(Self {
            stop: Some(stop),
            handle: Some(handle),
            heartbeat,
            jobs,
            updates: Some(updates),
            global,
            limits,
        })
    }

    /// The scheduled environments.
    #[must_use]
    pub fn envs(&self) -> Vec<EnvRef> {
        self.jobs.iter().map(|j| j.env.clone()).collect()
    }

    /// Stops the ticks (runs in flight go on; wait for them with [`Tasks::wait_idle`]).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(handle) = self.handle.take()
            && let Err(e) = handle.await
        {
            tracing::warn!(error = %e, "the scheduler did not stop cleanly");
        }
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.abort();
        }
    }
}

/// The environment's first run entry from `start_ms`: the tick whose spread run is
/// still ahead counts too (the console shows the same first run).
fn first_run(job: &EnvJob, idx: u32, settings: &SchedulerConfig, start_ms: i64) -> Option<Entry> {
    let spread = settings.spread.then_some(settings.spread_max);
    jetvault_core::claim::first_run(&job.cron, &job.env, spread, start_ms).map(
        |(tick_ms, due_ms)| Entry {
            due_ms,
            job: idx,
            tick_ms,
            what: Due::Run { prev_tick_ms: None },
        },
    )
}

/// The environment's first (or next) run entry after `after_ms`.
fn next_run(
    job: &EnvJob,
    idx: u32,
    settings: &SchedulerConfig,
    after_ms: i64,
    prev_tick_ms: Option<i64>,
) -> Option<Entry> {
    let tick_ms = timer::next_tick(&job.cron, after_ms)?;
    let offset = if settings.spread {
        spread_offset(
            &job.env,
            timer::interval_after(&job.cron, tick_ms),
            settings.spread_max,
        )
    } else {
        Duration::ZERO
    };
    Some(Entry {
        due_ms: tick_ms + i64::try_from(offset.as_millis()).unwrap_or(0),
        job: idx,
        tick_ms,
        what: Due::Run { prev_tick_ms },
    })
}

/// The timer loop: sleeps until the earliest entry is due, handles it, repeats.
async fn run_timer(
    shared: Arc<Shared>,
    mut jobs: Vec<Arc<EnvJob>>,
    mut stopped: tokio::sync::watch::Receiver<bool>,
    mut requeued: tokio::sync::mpsc::UnboundedReceiver<(Arc<EnvJob>, Entry)>,
    mut updated: tokio::sync::mpsc::UnboundedReceiver<Vec<Arc<EnvJob>>>,
) {
    let mut timer = Timer::default();
    let start = now_ms();
    for (idx, job) in jobs.iter().enumerate() {
        let idx = u32::try_from(idx).unwrap_or(u32::MAX);
        if let Some(e) = first_run(job, idx, &shared.settings, start) {
            timer.push(e);
        }
    }
    loop {
        let now = now_ms();
        if let Some(claims) = &shared.claims {
            claims.set_next_due(timer.next_due().unwrap_or(i64::MAX));
        }
        while let Some(entry) = timer.pop_due(now) {
            let job = &jobs[entry.job as usize];
            match entry.what {
                Due::Run { .. } => {
                    if let Some(next) = next_run(
                        job,
                        entry.job,
                        &shared.settings,
                        entry.tick_ms,
                        Some(entry.tick_ms),
                    ) {
                        timer.push(next);
                    }
                    let Due::Run { prev_tick_ms } = entry.what else {
                        unreachable!()
                    };
                    match &shared.claims {
                        None => job.start(&shared, entry.tick_ms, entry.due_ms, Via::Plain),
                        Some(claims) => {
                            let (owner, successor) =
                                claims.owner_and_successor(&job.env, entry.tick_ms);
                            if claims.is_mine(&owner) {
                                job.start(
                                    &shared,
                                    entry.tick_ms,
                                    entry.due_ms,
                                    Via::Claim { prev_tick_ms },
                                );
                            } else {
                                // The owner's successor looks one lease after the tick,
                                // the others half a lease later (see `claim`).
                                let first = claims.is_mine(&successor);
                                let lease = lease_ms(claims);
                                timer.push(Entry {
                                    due_ms: entry.due_ms
                                        + lease
                                        + if first { 0 } else { lease / 2 },
                                    job: entry.job,
                                    tick_ms: entry.tick_ms,
                                    what: Due::Check {
                                        run_ms: entry.due_ms,
                                        owner,
                                        round: 0,
                                        first,
                                    },
                                });
                            }
                        }
                    }
                }
                Due::Check { .. } => {
                    let (job, shared2) = (job.clone(), shared.clone());
                    let spawned = shared.tasks.spawn(async move {
                        job.check(&shared2, entry).await;
                    });
                    if !spawned {
                        tracing::debug!("tick check skipped: shutting down");
                    }
                }
            }
        }
        if let Some(claims) = &shared.claims {
            claims.set_next_due(timer.next_due().unwrap_or(i64::MAX));
        }
        let Some(due) = timer.next_due() else {
            tracing::info!("no schedule fires again: the scheduler stops");
            return;
        };
        let wait = Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            Some((job, mut entry)) = requeued.recv() => {
                // The job's index now, if it is still scheduled (an update may have
                // moved or removed it).
                let same = |i: usize| jobs.get(i).is_some_and(|j| Arc::ptr_eq(j, &job));
                let idx = if same(entry.job as usize) {
                    Some(entry.job as usize)
                } else {
                    (0..jobs.len()).find(|&i| same(i))
                };
                if let Some(idx) = idx {
                    entry.job = u32::try_from(idx).unwrap_or(u32::MAX);
                    timer.push(entry);
                }
            }
            Some(new) = updated.recv() => {
                update::apply(&mut timer, &mut jobs, new, &shared.settings, now_ms());
            }
            _ = stopped.changed() => return,
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
