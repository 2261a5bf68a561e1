//! A change of the environment list (a discovery refresh, SIGHUP) without restarting
//! every schedule: an environment whose configuration is the same keeps its job, so
//! its next tick, the run it has going and its failure streak; only added, removed and
//! changed environments are (un)scheduled. A change to any other setting (the
//! scheduler's, the store's, notifications) restarts them all, as before.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use jetvault_core::config::{Config, EnvConfig, SchedulerConfig};
use jetvault_core::error::{Error, Result};
use jetvault_core::host_limits::{HostLimits, Limited};
use jetvault_core::id::EnvRef;
use jetvault_core::live::LiveTarget;
use jetvault_core::vault::Vault;

use super::timer::Timer;
use super::{EnvJob, Scheduler, first_run};
use crate::metrics::Metrics;
use crate::tasks::Tasks;

/// A hash of `value` serialized; `None` (never the same: a change) if it can't be.
fn fingerprint(value: &impl serde::Serialize) -> Option<u64> {
    let bytes = serde_json::to_vec(value).ok()?;
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    Some(h.finish())
}

/// A hash of every setting but the apps. The destructuring names every field, so that
/// a new setting is not forgotten here.
pub(super) fn global_fingerprint(config: &Config) -> Option<u64> {
    let Config {
        store,
        s3,
        snapshots,
        server,
        scheduler,
        apps: _,
        notify,
        discovery,
        encryption,
    } = config;
    fingerprint(&(
        store, s3, snapshots, server, scheduler, notify, discovery, encryption,
    ))
}

/// The job of every environment with a `schedule` and a `live` target; one in `reuse`
/// with the same configuration is kept as it is.
pub(super) async fn build_jobs(
    config: &Config,
    limits: &Arc<HostLimits>,
    reuse: &HashMap<&EnvRef, &Arc<EnvJob>>,
) -> Result<Vec<Arc<EnvJob>>> {
    let mut jobs = Vec::new();
    let mut crons: HashMap<String, Arc<croner::Cron>> = HashMap::new();
    for (env, env_config) in config.envs() {
        let Some(schedule) = &env_config.schedule else {
            continue;
        };
        if env_config.live.is_none() {
            tracing::warn!(%env, "schedule set but no live target: not scheduled; add \
                [apps.{}.envs.{}.live] to the config", env.app, env.env);
            continue;
        }
        let print = fingerprint(env_config);
        if let Some(job) = reuse
            .get(&env)
            .filter(|j| print.is_some() && j.fingerprint == print)
        {
            jobs.push(Arc::clone(job));
            continue;
        }
        let cron = match crons.get(schedule) {
            Some(c) => c.clone(),
            None => {
                let c = Arc::new(jetvault_core::config::parse_cron(schedule).map_err(|e| {
                    Error::config(format!(
                        "apps.{}.envs.{}.schedule = {schedule:?}: {e}",
                        env.app, env.env
                    ))
                })?);
                crons.insert(schedule.clone(), c.clone());
                c
            }
        };
        jobs.push(Arc::new(
            job(config, env, env_config, cron, limits, print).await?,
        ));
    }
    Ok(jobs)
}

async fn job(
    config: &Config,
    env: EnvRef,
    env_config: &EnvConfig,
    cron: Arc<croner::Cron>,
    limits: &Arc<HostLimits>,
    fingerprint: Option<u64>,
) -> Result<EnvJob> {
    let target: Arc<dyn LiveTarget> = Arc::new(Limited::new(
        jetvault_core::live::open_configured(config, &env).await?,
        limits.clone(),
    ));
    let retention = env_config.retention.clone().filter(|p| {
        let empty = jetvault_core::retention::policy_is_empty(p);
        if empty {
            tracing::warn!(%env, "retention has no rule (keep_last, keep_daily, \
                keep_weekly, keep_monthly, keep_within): not applied after scheduled \
                backups");
        }
        !empty
    });
    tracing::debug!(%env, schedule = ?env_config.schedule, "scheduled backups");
    Ok(EnvJob {
        env,
        target,
        retention,
        cron,
        runs: std::sync::Mutex::default(),
        failures: crate::notify::FailureStreak::new(config.notify.failures_in_a_row),
        fingerprint,
    })
}

/// The timer's side of an update: entries of kept jobs follow them to their new
/// index, those of removed or changed jobs go, and each new job gets its first run.
pub(super) fn apply(
    timer: &mut Timer,
    jobs: &mut Vec<Arc<EnvJob>>,
    new: Vec<Arc<EnvJob>>,
    settings: &SchedulerConfig,
    now_ms: i64,
) {
    let index: HashMap<*const EnvJob, u32> = new
        .iter()
        .enumerate()
        .map(|(i, j)| (Arc::as_ptr(j), u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    let moved: Vec<Option<u32>> = jobs
        .iter()
        .map(|j| index.get(&Arc::as_ptr(j)).copied())
        .collect();
    timer.remap(|old| moved.get(old as usize).copied().flatten());
    let kept: HashSet<*const EnvJob> = jobs.iter().map(Arc::as_ptr).collect();
    for (i, job) in new.iter().enumerate() {
        if !kept.contains(&Arc::as_ptr(job))
            && let Some(e) = first_run(job, u32::try_from(i).unwrap_or(u32::MAX), settings, now_ms)
        {
            timer.push(e);
        }
    }
    *jobs = new;
}

impl Scheduler {
    /// Brings the schedules to `config`: when only the environments changed, adds,
    /// removes and replaces just the jobs of those that changed; the others keep their
    /// next tick and their run going. Otherwise (another setting changed, or no timer
    /// runs) starts new schedules and stops these. A failure keeps these running.
    ///
    /// # Errors
    /// What [`Scheduler::start`] fails with: a live target that can't be built, a cron
    /// expression refused.
    pub async fn update(
        &mut self,
        vault: Vault,
        config: &Config,
        metrics: Arc<Metrics>,
        tasks: Tasks,
    ) -> Result<()> {
        let global = global_fingerprint(config);
        if global.is_some()
            && global == self.global
            && let Some(updates) = self.updates.clone()
        {
            let reuse: HashMap<&EnvRef, &Arc<EnvJob>> =
                self.jobs.iter().map(|j| (&j.env, j)).collect();
            let jobs = build_jobs(config, &self.limits, &reuse).await?;
            let kept = jobs
                .iter()
                .filter(|j| reuse.get(&j.env).is_some_and(|old| Arc::ptr_eq(old, j)))
                .count();
            let (added_or_changed, removed) = (jobs.len() - kept, self.jobs.len() - kept);
            if updates.send(jobs.clone()).is_ok() {
                tracing::info!(
                    scheduled = jobs.len(),
                    kept,
                    added_or_changed,
                    removed,
                    "schedules reloaded: only the environments that changed"
                );
                self.jobs = jobs;
                return Ok(());
            }
            // The timer has stopped (no schedule fired again): start afresh.
        }
        let new = Self::start(vault, config, metrics, tasks).await?;
        let mut old = std::mem::replace(self, new);
        old.stop().await;
        tracing::info!(
            scheduled = self.jobs.len(),
            "schedules reloaded: all restarted"
        );
        Ok(())
    }

    /// The job of `env`, for tests: the same job across updates is the same
    /// allocation.
    #[cfg(test)]
    pub(super) fn job(&self, env: &EnvRef) -> Option<&Arc<EnvJob>> {
        self.jobs.iter().find(|j| &j.env == env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetvault_core::store::LocalStore;
    use jetvault_core::vault::VaultOptions;

    /// Environments `a`, `b`, `c` (and `d` when `with_d`) on a daily schedule (no tick
    /// comes during the test), `b`'s schedule given.
    fn config(dir: &std::path::Path, b_schedule: &str, with_c: bool, with_d: bool) -> Config {
        let live = dir.join("live.json");
        std::fs::write(&live, b"{}").unwrap();
        let mut text = format!("store = \"file://{}\"\n", dir.join("store").display());
        let mut envs = vec![("a", "0 0 3 * * *"), ("b", b_schedule)];
        if with_c {
            envs.push(("c", "0 0 3 * * *"));
        }
        if with_d {
            envs.push(("d", "0 0 3 * * *"));
        }
        for (app, schedule) in envs {
            text.push_str(&format!(
                "[apps.{app}.envs.prod]\nschedule = \"{schedule}\"\n\
                 live = {{ kind = \"file\", path = \"{}\" }}\n",
                live.display()
            ));
        }
        Config::parse(&text).unwrap()
    }

    fn env(app: &str) -> EnvRef {
        EnvRef::parse(app, "prod").unwrap()
    }

    #[tokio::test]
    async fn an_update_reschedules_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalStore::open(dir.path().join("store")).unwrap());
        let vault = Vault::new(store, VaultOptions::default());
        let (metrics, tasks) = (Arc::new(Metrics::new()), Tasks::default());
        let first = config(dir.path(), "0 0 3 * * *", true, false);
        let mut s = Scheduler::start(vault.clone(), &first, metrics.clone(), tasks.clone())
            .await
            .unwrap();
        let (a, b) = (
            s.job(&env("a")).unwrap().clone(),
            s.job(&env("b")).unwrap().clone(),
        );
        // b's schedule changes, c goes, d comes: a keeps its job (its next tick and its
        // runs), b gets a new one.
        let second = config(dir.path(), "0 0 4 * * *", false, true);
        s.update(vault.clone(), &second, metrics.clone(), tasks.clone())
            .await
            .unwrap();
        assert!(Arc::ptr_eq(s.job(&env("a")).unwrap(), &a), "a is kept");
        assert!(!Arc::ptr_eq(s.job(&env("b")).unwrap(), &b), "b changed");
        assert!(s.job(&env("c")).is_none(), "c is gone");
        assert!(s.job(&env("d")).is_some(), "d is added");
        assert_eq!(s.envs().len(), 3);
        // The same list again keeps every job.
        let d = s.job(&env("d")).unwrap().clone();
        s.update(vault.clone(), &second, metrics.clone(), tasks.clone())
            .await
            .unwrap();
        assert!(Arc::ptr_eq(s.job(&env("a")).unwrap(), &a));
        assert!(Arc::ptr_eq(s.job(&env("d")).unwrap(), &d));
        // Another setting changes: everything restarts.
        let mut third = second.clone();
        third.scheduler.spread = !third.scheduler.spread;
        s.update(vault, &third, metrics, tasks).await.unwrap();
        assert!(!Arc::ptr_eq(s.job(&env("a")).unwrap(), &a), "a restarted");
        s.stop().await;
    }
}
