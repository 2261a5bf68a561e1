//! The dry run of a restore-all: per environment, the version it would go to and what
//! pushing it would change, or why it is left alone.

use futures::StreamExt;

use super::{Decision, EnvPlan, EnvTarget, Point, RunRecord, SkipReason, Status};
use crate::error::Error;
use crate::host_limits::{HostLimits, host_key};
use crate::restore::LiveState;
use crate::selector::Selector;
use crate::vault::Vault;

impl Vault {
    /// Plans restoring every environment of `targets` to `point`, changing nothing:
    /// `concurrency` environments at a time, at most `limits.per_host()` reads toward
    /// one live host. One environment's failure is its own plan's, never the others'.
    /// Plans come back in id order.
    ///
    /// `read_live`: read each snapshot and each live configuration to say what would
    /// change (the dry run, and the plan shown before asking). Without it only the
    /// version is found ([`Decision::Resolved`]): a confirmed run then reads live once,
    /// in the restore itself, instead of twice.
    pub async fn plan_restore_all(
        &self,
        targets: &[EnvTarget],
        point: &Point,
        concurrency: usize,
        limits: &HostLimits,
        read_live: bool,
    ) -> Vec<EnvPlan> {
        // Owned items: a future that borrows them through the closure's argument is not
        // `Send` for every lifetime, as a server task needs.
        let mut plans: Vec<EnvPlan> = futures::stream::iter(targets.to_vec())
            .map(|t| async move {
                let (version, latest) = match self.resolve_point_with_latest(&t.env, point).await {
                    Ok((v, latest)) => (Ok(v), latest),
                    Err(e) => (Err(e), None),
                };
                let mut plan = self.plan_one(&t, version, limits, read_live).await;
                plan.latest = latest;
                plan
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        plans.sort_by(|a, b| a.env.cmp(&b.env));
        plans
    }

    /// Plans putting back, in every environment `run` restored, what was live before
    /// (the pre-restore snapshot its restore saved); environments where nothing was
    /// live before are skipped. Targets are those of the environments to undo;
    /// `read_live` as for [`Vault::plan_restore_all`].
    pub async fn plan_undo(
        &self,
        run: &RunRecord,
        targets: &[EnvTarget],
        concurrency: usize,
        limits: &HostLimits,
        read_live: bool,
    ) -> Vec<EnvPlan> {
        let todo: Vec<(EnvTarget, Option<u64>)> = targets
            .iter()
            .filter_map(|t| {
                let done = run.envs.get(&t.env.to_string())?;
                (done.status == Status::Restored).then(|| (t.clone(), done.pre_restore))
            })
            .collect();
        let mut plans: Vec<EnvPlan> = futures::stream::iter(todo)
            .map(|(t, before)| async move {
                let version = before.ok_or_else(|| {
                    (
                        Some(SkipReason::NothingBefore),
                        Error::not_found(format!(
                            "nothing was live in {} before run {}: there is nothing to put back",
                            t.env, run.id
                        )),
                    )
                });
                self.plan_one(&t, version, limits, read_live).await
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        plans.sort_by(|a, b| a.env.cmp(&b.env));
        plans
    }

    async fn plan_one(
        &self,
        t: &EnvTarget,
        version: std::result::Result<u64, (Option<SkipReason>, Error)>,
        limits: &HostLimits,
        read_live: bool,
    ) -> EnvPlan {
        let env = &t.env;
        let target_name = t.target.as_ref().ok().map(|t| t.describe());
        let plan = |decision| EnvPlan {
            env: env.to_string(),
            target: target_name.clone(),
            decision,
            latest: None,
        };
        let version = match version {
            Ok(v) => v,
            Err((Some(reason), e)) => {
                return plan(Decision::Skip {
                    reason,
                    detail: e.report(),
                });
            }
            Err((None, e)) => {
                return plan(Decision::Fail {
                    error: e.report(),
                    code: e.kind().code().into(),
                    version: None,
                });
            }
        };
        let target = match &t.target {
            Ok(target) => target,
            Err(why) => {
                return plan(Decision::Skip {
                    reason: SkipReason::NoLiveTarget,
                    detail: why.clone(),
                });
            }
        };
        if !read_live {
            return plan(Decision::Resolved { version });
        }
        let host = host_key(&target.describe());
        let permit = limits.acquire(host.as_deref()).await;
        let planned = self
            .plan_restore(env, target.as_ref(), &Selector::Version(version))
            .await;
        drop(permit);
        match planned {
            Err(e) => plan(Decision::Fail {
                error: e.report(),
                code: e.kind().code().into(),
                version: Some(version),
            }),
            Ok(p) if p.already_live => plan(Decision::Unchanged { version }),
            Ok(p) => match p.live {
                LiveState::Unreadable { reason, .. } => plan(Decision::Skip {
                    reason: SkipReason::LiveUnreadable,
                    detail: reason,
                }),
                live => plan(Decision::Restore {
                    version,
                    live,
                    changes: p.changes.as_ref().map(Vec::len),
                    size: p.snapshot.size,
                }),
            },
        }
    }
}
