//! Running a restore-all: every unfinished environment of a run record through
//! [`Vault::restore`], `concurrency` at a time and at most `per_host` toward one live
//! host, each result written to the record as it comes (batched, compare-and-swap).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use futures::StreamExt;
use serde::Serialize;

use super::record::skip_code;
use super::{EnvRun, Point, RunEvent, RunPhase, RunRecord, SkipReason, Status};
use crate::events::{Action, Actor};
use crate::host_limits::{HostLimits, host_key};
use crate::id::EnvRef;
use crate::live::LiveTarget;
use crate::restore::RestoreRequest;
use crate::selector::Selector;
use crate::vault::Vault;

/// At most one write of the run record per this long while a run goes on.
const RECORD_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// How a run goes.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Environments restored at once.
    pub concurrency: usize,
    /// Who restores, through which front end.
    pub actor: Actor,
    /// Why (kept in each environment's restore event, with the run id).
    pub message: Option<String>,
    /// Go on where live is truly missing (nothing to save first).
    pub allow_missing_live: bool,
    /// The point, to find the version of an environment whose plan failed before it
    /// was found (restore runs).
    pub point: Option<Point>,
    /// Whether the record comes from an earlier, interrupted run: then an environment
    /// still pending is first looked for in its audit events, so that one restored
    /// just before the interruption is not restored again.
    pub resume: bool,
    /// The latest snapshot of environments, by `app/env`, as the plan found it
    /// ([`super::latest_of`]): each restore's pre-restore check compares with it
    /// instead of listing the history again (lossless when stale, see
    /// [`RestoreRequest::latest`]). Empty: each restore lists.
    pub latest: HashMap<String, crate::meta::SnapshotMeta>,
    /// This process's lease on the run ([`Vault::lease_run`]): once it is lost (taken
    /// over after it expired), no environment is started and the record is no longer
    /// written; the process that holds it now finds what this one restored from the
    /// restore events.
    pub lease: Option<Arc<crate::claim::lease::Lease>>,
}

/// What a run did: the record as it ends, and its counts.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run record.
    pub run: RunRecord,
    /// Environments restored.
    pub restored: usize,
    /// Environments whose live already held the version.
    pub unchanged: usize,
    /// Environments left alone.
    pub skipped: usize,
    /// Environments that failed.
    pub failed: usize,
    /// Why the record could not be written at the end, if it could not (the restores
    /// stand; the record lags behind them).
    pub record_error: Option<String>,
}

impl RunReport {
    fn new(run: RunRecord, record_error: Option<String>) -> Self {
        Self {
            restored: run.count(Status::Restored),
            unchanged: run.count(Status::Unchanged),
            skipped: run.count(Status::Skipped),
            failed: run.count(Status::Failed) + run.count(Status::Pending),
            run,
            record_error,
        }
    }
}

fn lease_lost(opts: &RunOptions) -> bool {
    opts.lease.as_ref().is_some_and(|l| l.is_lost())
}

fn lost_text(id: &str) -> String {
    format!(
        "not done here: this process lost the lease on run {id} (it expired without a \
         renewal), so another may be running it; resume the run to see where it stands"
    )
}

/// The words that tie a restore event to its run.
#[must_use]
pub fn run_marker(id: &str) -> String {
    format!("restore-all run {id}")
}

impl Vault {
    /// Runs every environment of `record` not yet done (pending or failed) and writes
    /// each result to the stored record; `targets` are the live targets by `app/env`,
    /// `limits` the per-host limit, `on_env` sees each result as it comes.
    pub async fn run_restore_all(
        &self,
        record: (RunRecord, String),
        targets: &HashMap<String, Arc<dyn LiveTarget>>,
        limits: &HostLimits,
        opts: &RunOptions,
        on_env: &(dyn Fn(&str, &EnvRun) + Send + Sync),
    ) -> RunReport {
        let id = record.0.id.clone();
        self.record_run_event(&RunEvent::of(
            &record.0,
            RunPhase::Start,
            &opts.actor,
            opts.resume,
        ))
        .await;
        let todo: Vec<(String, EnvRun)> = record
            .0
            .envs
            .iter()
            .filter(|(_, r)| !r.status.is_done())
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, EnvRun)>();
        let id = id.as_str();
        let work = async move {
            futures::stream::iter(todo)
                .map(|(env, run)| async move {
                    let done = self.run_one(id, &env, run, targets, limits, opts).await;
                    (env, done)
                })
                .buffer_unordered(opts.concurrency.max(1))
                .for_each(|done| {
                    // The receiver lives until the sender is dropped.
                    let _ = tx.send(done);
                    async {}
                })
                .await;
        };
        // Results are written in batches, at most one write per `RECORD_EVERY` (and
        // the last ones at the end): the record holds every environment, so a write
        // per result would cost O(n²) bytes. A result not yet written when the run is
        // killed is found again from the environment's restore event on resume.
        let write = async {
            let mut current = record;
            let mut unsaved: BTreeMap<String, EnvRun> = BTreeMap::new();
            let mut error = None;
            let mut open = true;
            while open {
                let Some((env, run)) = rx.recv().await else {
                    break;
                };
                on_env(&env, &run);
                unsaved.insert(env, run);
                let until = tokio::time::Instant::now() + RECORD_EVERY;
                loop {
                    match tokio::time::timeout_at(until, rx.recv()).await {
                        Ok(Some((env, run))) => {
                            on_env(&env, &run);
                            unsaved.insert(env, run);
                        }
                        Ok(None) => {
                            open = false;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let id = current.0.id.clone();
                if lease_lost(opts) {
                    error = Some(lost_text(&id));
                    continue;
                }
                match self.update_run(&id, current.clone(), &unsaved).await {
                    Ok(written) => {
                        current = written;
                        unsaved.clear();
                        error = None;
                    }
                    Err(e) => {
                        tracing::warn!(run = %id, error = %e.report(),
                            "cannot update the run record; trying again with the next results");
                        error = Some(e.report());
                    }
                }
            }
            if !unsaved.is_empty() {
                let id = current.0.id.clone();
                let written = if lease_lost(opts) {
                    Err(crate::error::Error::precondition(lost_text(&id)))
                } else {
                    self.update_run(&id, current.clone(), &unsaved).await
                };
                match written {
                    Ok(written) => {
                        current = written;
                        error = None;
                    }
                    Err(e) => {
                        error = Some(e.report());
                        for (env, run) in &unsaved {
                            current.0.envs.insert(env.clone(), run.clone());
                        }
                    }
                }
            }
            (current.0, error)
        };
        let ((), (run, error)) = futures::join!(work, write);
        self.record_run_event(&RunEvent::of(&run, RunPhase::End, &opts.actor, opts.resume))
            .await;
        RunReport::new(run, error)
    }

    async fn run_one(
        &self,
        id: &str,
        env_name: &str,
        mut run: EnvRun,
        targets: &HashMap<String, Arc<dyn LiveTarget>>,
        limits: &HostLimits,
        opts: &RunOptions,
    ) -> EnvRun {
        let fail = |mut run: EnvRun, status: Status, reason: String, code: String| {
            run.status = status;
            run.reason = Some(reason);
            run.code = Some(code);
            run
        };
        if lease_lost(opts) {
            run.reason = Some(lost_text(id));
            run.code = Some("lease_lost".into());
            return run;
        }
        let Some((app, env)) = env_name.split_once('/') else {
            return fail(
                run,
                Status::Failed,
                format!("{env_name:?} is not app/env"),
                "invalid_input".into(),
            );
        };
        let env = match EnvRef::parse(app, env) {
            Ok(e) => e,
            Err(e) => return fail(run, Status::Failed, e.report(), e.kind().code().into()),
        };
        let Some(target) = targets.get(env_name) else {
            return fail(
                run,
                Status::Skipped,
                format!("{env} has no live target in the config"),
                skip_code(SkipReason::NoLiveTarget),
            );
        };
        run.target = Some(target.describe());
        let mut latest = opts.latest.get(env_name).cloned();
        let version = match (run.version, &opts.point) {
            (Some(v), _) => v,
            (None, Some(point)) => match self.resolve_point_with_latest(&env, point).await {
                Ok((v, found)) => {
                    latest = found;
                    v
                }
                Err((Some(reason), e)) => {
                    return fail(run, Status::Skipped, e.report(), skip_code(reason));
                }
                Err((None, e)) => {
                    return fail(run, Status::Failed, e.report(), e.kind().code().into());
                }
            },
            (None, None) => {
                return fail(
                    run,
                    Status::Skipped,
                    "no version to restore".into(),
                    "no_snapshot".into(),
                );
            }
        };
        run.version = Some(version);
        if opts.resume
            && run.status == Status::Pending
            && let Some(done) = self.restored_by_run(&env, id).await
        {
            run.status = Status::Restored;
            run.pre_restore = done;
            run.reason = None;
            run.code = None;
            return run;
        }

        let mut req = RestoreRequest::new(Selector::Version(version), opts.actor.clone());
        req.allow_missing_live = opts.allow_missing_live;
        req.latest = latest;
        req.message = Some(match &opts.message {
            Some(m) => format!("{m} ({})", run_marker(id)),
            None => run_marker(id),
        });
        run.attempts += 1;
        let permit = limits
            .acquire(host_key(&target.describe()).as_deref())
            .await;
        let result = self.restore(&env, target.as_ref(), req).await;
        drop(permit);
        match result {
            Ok(report) => {
                run.status = if report.pushed {
                    Status::Restored
                } else {
                    Status::Unchanged
                };
                run.pre_restore = report.pre_restore.snapshot().map(|m| m.version);
                run.reason = None;
                run.code = None;
                run
            }
            Err(e) => {
                let mut reason = e.report();
                if let Some(hint) = e.hint() {
                    reason = format!("{reason}; {}", hint.text);
                }
                fail(run, Status::Failed, reason, e.kind().code().into())
            }
        }
    }

    /// Whether run `id` already restored `env` (its restore event says so): the undo
    /// point it saved, if any. `None` when it did not.
    async fn restored_by_run(&self, env: &EnvRef, id: &str) -> Option<Option<u64>> {
        let marker = run_marker(id);
        let events = self.events(env, 50).await.ok()?;
        events.into_iter().find_map(|e| {
            let d = &e.details;
            let ours = e.action == Action::Restore
                && d["message"].as_str().is_some_and(|m| m.contains(&marker))
                && d["outcome"] == "restored";
            ours.then(|| d["pre_restore"]["snapshot"]["version"].as_u64())
        })
    }
}
