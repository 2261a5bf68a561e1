//! `jetvault restore-all`: many environments back to one point in time, in one run.
//!
//! The work is `jetvault_core::restore_all` (plan, run, record, resume, undo), which
//! restores each environment through the same safe restore as `jetvault restore`; this
//! file selects, shows the plan, asks for confirmation, prints progress and the report.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::{ArgGroup, Args};
use jetvault_core::host_limits::HostLimits;
use jetvault_core::live::LiveTarget;
use jetvault_core::restore::LiveState;
use jetvault_core::restore_all::{
    Decision, EnvFilter, EnvPlan, EnvRun, EnvTarget, Point, RunKind, RunOptions, RunRecord,
    RunReport, Selection, Status, latest_of,
};
use jetvault_core::selector::parse_time;
use jetvault_core::store::counting::RequestCounts;
use jetvault_core::{EnvRef, Error};

use super::{Ctx, exit, human_size, print_json, truncate};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("point").args(["at", "release", "release_at"])))]
pub struct RestoreAllArgs {
    /// Only the environments of this app (repeatable).
    #[arg(long = "app", value_name = "APP")]
    pub apps: Vec<String>,
    /// Only the environments whose name matches this pattern (`*` and `?`; with a `/`
    /// it matches `app/env`, e.g. `crm-*/prod*`).
    #[arg(long = "env", value_name = "PATTERN")]
    pub env: Option<String>,
    /// Every environment in the store and the config.
    #[arg(long)]
    pub all: bool,
    /// Restore each environment's newest snapshot taken at or before this time.
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Restore each environment's current release.
    #[arg(long)]
    pub release: bool,
    /// Restore the release each environment had at this time.
    #[arg(long, value_name = "TIME")]
    pub release_at: Option<String>,
    /// Show the plan, per environment, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (also: go on where live is truly missing).
    #[arg(long, short)]
    pub yes: bool,
    /// How many environments are restored at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// At most this many requests at once toward one live host.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub per_host: u16,
    /// Go on with an interrupted or partly failed run: done environments are skipped,
    /// failed ones retried.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["point", "undo", "all", "apps", "env"])]
    pub resume: Option<String>,
    /// Put back what was live before a run, in every environment it restored.
    #[arg(long, value_name = "RUN", conflicts_with_all = ["point", "all", "apps", "env"])]
    pub undo: Option<String>,
    /// Start a new run even if the newest run of the same selection and point is
    /// unfinished (by default, rerunning the same command resumes that run).
    #[arg(long, conflicts_with_all = ["resume", "undo"])]
    pub new_run: bool,
    /// Seconds the run's lease in the store lasts without a renewal (renewed every
    /// third of it): while it holds, another process refuses to run the same run; after
    /// this process dies, the run can be resumed elsewhere once it expires.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(2..=3600))]
    pub lease: u32,
    /// Who restores.
    #[arg(long)]
    pub author: Option<String>,
    /// Why (kept in every restore event, with the run id).
    #[arg(long, short)]
    pub message: Option<String>,
}

fn point(args: &RestoreAllArgs) -> anyhow::Result<Point> {
    Ok(match (&args.at, args.release, &args.release_at) {
        (Some(t), false, None) => Point::At(parse_time(t)?),
        (None, true, None) => Point::CurrentRelease,
        (None, false, Some(t)) => Point::ReleaseAt(parse_time(t)?),
        _ => {
            return Err(Error::invalid(
                "give the point to restore to: --at TIME, --release or --release-at TIME \
                 (or --resume RUN, --undo RUN)",
            )
            .into());
        }
    })
}

fn filter(args: &RestoreAllArgs) -> anyhow::Result<EnvFilter> {
    Ok(EnvFilter::from_request(
        args.all,
        &args.apps,
        args.env.as_ref(),
        "--all, --app APP or --env PATTERN",
    )?)
}

pub async fn run(ctx: &Ctx, args: RestoreAllArgs) -> anyhow::Result<u8> {
    // Every store request is counted: the report says what the run cost.
    let store = jetvault_core::store::CountingStore::new(ctx.store().await?);
    let counts = store.counts().clone();
    let vault = ctx.vault_over(Arc::new(store), &ctx.config)?;
    let actor = ctx.actor(args.author.as_deref());
    let limits = HostLimits::new(usize::from(args.per_host));
    let concurrency = usize::from(args.concurrency);
    // The plan reads every snapshot and every live configuration only when it is shown
    // (the dry run, or before asking); a confirmed run reads live once, in each restore.
    let read_live = args.dry_run || !args.yes;

    // A restore run to go on with: the one named, or the newest unfinished one with
    // the same selection and point (rerunning the same command resumes it).
    let mut found = match &args.resume {
        Some(id) => Some(vault.load_run(id).await?),
        None => None,
    };
    let mut point_sel = None;
    if found.is_none() && args.undo.is_none() {
        let p = point(&args)?;
        let sel = Selection::new(args.all, args.apps.clone(), args.env.clone());
        if !args.dry_run && !args.new_run {
            found = vault.unfinished_run(&sel, &p).await?;
            if let Some((r, _)) = &found {
                eprintln!(
                    "resuming run {} (the newest run of the same selection and point is                      unfinished; --new-run starts another)",
                    r.id
                );
            }
        }
        point_sel = Some((p, sel));
    }

    let lease_ttl = std::time::Duration::from_secs(u64::from(args.lease));
    let (record, targets, resume, latest, lease) = if let Some((record, _)) = found {
        let id = &record.id;
        let todo = record.envs.len() - done(&record);
        eprintln!(
            "run {id}: {} of {} environments done, {todo} to do",
            done(&record),
            record.envs.len()
        );
        if args.dry_run || todo == 0 {
            print_record(ctx, &record)?;
            return Ok(exit::OK);
        }
        if let Some(code) = consent(args.yes, "resume the run")? {
            return Ok(code);
        }
        // One process at a time: refused while another holds the run's lease; then
        // the record is read again, as the last holder left it.
        let lease = vault.lease_run(id, lease_ttl).await?;
        let (record, etag) = match vault.load_run(id).await {
            Ok(fresh) => fresh,
            Err(e) => {
                lease.release().await;
                return Err(e.into());
            }
        };
        if record.finished() {
            lease.release().await;
            eprintln!("run {}: finished meanwhile, nothing to do", record.id);
            print_record(ctx, &record)?;
            return Ok(exit::OK);
        }
        let targets = open_targets(ctx, record.envs.keys()).await;
        ((record, etag), targets, true, HashMap::new(), lease)
    } else {
        let (plans, targets, kind, point, selection) = if let Some(id) = &args.undo {
            let (run, _) = vault.load_run(id).await?;
            let names = run
                .envs
                .iter()
                .filter(|(_, r)| r.status == Status::Restored)
                .map(|(k, _)| k);
            let targets = env_targets(ctx, names).await;
            let plans = vault
                .plan_undo(&run, &targets, concurrency, &limits, read_live)
                .await;
            (plans, targets, RunKind::Undo, None, None)
        } else {
            let (point, selection) = point_sel.ok_or_else(|| Error::internal("no point"))?;
            let targets = vault
                .restore_all_targets(&ctx.config, &filter(&args)?)
                .await?;
            if targets.is_empty() {
                return Err(Error::not_found(
                    "no environment in the store or the config matches --app/--env",
                )
                .into());
            }
            let plans = vault
                .plan_restore_all(&targets, &point, concurrency, &limits, read_live)
                .await;
            (
                plans,
                targets,
                RunKind::Restore,
                Some(point),
                Some(selection),
            )
        };
        let to_do = plans
            .iter()
            .filter(|p| {
                matches!(
                    p.decision,
                    Decision::Restore { .. } | Decision::Resolved { .. }
                )
            })
            .count();
        let failed = plans
            .iter()
            .filter(|p| matches!(p.decision, Decision::Fail { .. }))
            .count();
        if args.dry_run || to_do == 0 {
            print_plan(ctx, &plans, point.as_ref(), args.dry_run)?;
            return Ok(if failed > 0 { exit::PARTIAL } else { exit::OK });
        }
        if !args.yes && !ctx.json() {
            print_plan(ctx, &plans, point.as_ref(), false)?;
        }
        let what = format!("restore {to_do} environments");
        if let Some(code) = consent(args.yes, &what)? {
            return Ok(code);
        }
        let mut record = RunRecord::from_plan(kind, &plans, actor.clone());
        record.point = point;
        record.selection = selection;
        record.undoes = args.undo.clone();
        let etag = vault.create_run(&record).await?;
        let lease = vault.lease_run(&record.id, lease_ttl).await?;
        let by_name = targets
            .into_iter()
            .filter_map(|t| Some((t.env.to_string(), t.target.ok()?)))
            .collect();
        ((record, etag), by_name, false, latest_of(&plans), lease)
    };

    let id = record.0.id.clone();
    let total = record.0.envs.len() - done(&record.0);
    eprintln!("restore-all run {id}: {total} environments to do");
    let opts = RunOptions {
        concurrency,
        actor,
        message: args.message.clone(),
        allow_missing_live: true,
        point: record.0.point.clone(),
        resume,
        latest,
        lease: Some(lease.lease()),
    };
    // On a terminal a progress bar (failures printed above it); otherwise one line per
    // environment.
    let bar = super::progress(total as u64, "restore-all");
    let n = AtomicUsize::new(0);
    let progress = |env: &str, r: &EnvRun| {
        let i = n.fetch_add(1, Ordering::Relaxed) + 1;
        if bar.is_hidden() {
            eprintln!("[{i}/{total}] {env}: {}", outcome(r));
        } else {
            if r.status == Status::Failed {
                bar.println(format!("{env}: {}", outcome(r)));
            }
            bar.inc(1);
        }
    };
    let report = vault
        .run_restore_all(record, &targets, &limits, &opts, &progress)
        .await;
    lease.release().await;
    bar.finish_and_clear();
    print_report(ctx, &report, &counts)?;
    Ok(if report.failed > 0 || report.record_error.is_some() {
        exit::PARTIAL
    } else {
        exit::OK
    })
}

fn done(record: &RunRecord) -> usize {
    record.envs.values().filter(|r| r.status.is_done()).count()
}

/// `None` to go on; an exit code when not confirmed.
fn consent(yes: bool, what: &str) -> anyhow::Result<Option<u8>> {
    if yes {
        return Ok(None);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!(
            "error: refusing to {what} without confirmation: standard input is not a \
             terminal; pass --yes to confirm (nothing was changed)"
        );
        return Ok(Some(exit::ABORTED));
    }
    eprint!("Proceed? [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(None)
    } else {
        eprintln!("aborted: nothing was changed");
        Ok(Some(exit::ABORTED))
    }
}

async fn env_targets<'a>(ctx: &Ctx, names: impl Iterator<Item = &'a String>) -> Vec<EnvTarget> {
    let mut out = Vec::new();
    for name in names {
        let Some(env) = name
            .split_once('/')
            .and_then(|(a, e)| EnvRef::parse(a, e).ok())
        else {
            continue;
        };
        let target = jetvault_core::live::open_configured(&ctx.config, &env)
            .await
            .map_err(|e| e.report());
        out.push(EnvTarget { env, target });
    }
    out
}

async fn open_targets<'a>(
    ctx: &Ctx,
    names: impl Iterator<Item = &'a String>,
) -> HashMap<String, Arc<dyn LiveTarget>> {
    env_targets(ctx, names)
        .await
        .into_iter()
        .filter_map(|t| Some((t.env.to_string(), t.target.ok()?)))
        .collect()
}

fn outcome(r: &EnvRun) -> String {
    let v = r.version.map_or_else(|| "-".into(), |v| format!("v{v}"));
    match r.status {
        Status::Restored => match r.pre_restore {
            Some(p) => format!("restored {v} (what was live is v{p})"),
            None => format!("restored {v} (nothing was live before)"),
        },
        Status::Unchanged => format!("unchanged: live already holds {v}"),
        Status::Skipped => format!("skipped: {}", r.reason.as_deref().unwrap_or("-")),
        Status::Failed => format!("FAILED: {}", r.reason.as_deref().unwrap_or("-")),
        Status::Pending => "pending".into(),
    }
}

fn decision_text(p: &EnvPlan) -> (String, &'static str, String) {
    match &p.decision {
        Decision::Restore {
            version,
            live,
            changes,
            size,
        } => {
            let detail = match (live, changes) {
                (LiveState::Present { size: now, .. }, Some(n)) => format!(
                    "{n} change{}, live {} -> {}",
                    if *n == 1 { "" } else { "s" },
                    human_size(*now),
                    human_size(*size)
                ),
                (LiveState::Present { size: now, .. }, None) => format!(
                    "live is not JSON, {} -> {}",
                    human_size(*now),
                    human_size(*size)
                ),
                (LiveState::Missing { .. }, _) => {
                    format!("live is missing, {} to write", human_size(*size))
                }
                (LiveState::Unreadable { reason, .. }, _) => format!("live unreadable: {reason}"),
            };
            (format!("v{version}"), "restore", detail)
        }
        Decision::Unchanged { version } => (
            format!("v{version}"),
            "unchanged",
            "live already holds it".into(),
        ),
        Decision::Resolved { version } => (
            format!("v{version}"),
            "restore",
            "live not read in advance".into(),
        ),
        Decision::Skip { reason, detail } => {
            ("-".into(), "skip", format!("{}: {detail}", reason.as_str()))
        }
        Decision::Fail { error, version, .. } => (
            version.map_or_else(|| "-".into(), |v| format!("v{v}")),
            "FAIL",
            error.clone(),
        ),
    }
}

fn print_plan(
    ctx: &Ctx,
    plans: &[EnvPlan],
    point: Option<&Point>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let count = |f: fn(&Decision) -> bool| plans.iter().filter(|p| f(&p.decision)).count();
    let restore = count(|d| matches!(d, Decision::Restore { .. } | Decision::Resolved { .. }));
    let unchanged = count(|d| matches!(d, Decision::Unchanged { .. }));
    let skip = count(|d| matches!(d, Decision::Skip { .. }));
    let fail = count(|d| matches!(d, Decision::Fail { .. }));
    if ctx.json() {
        return print_json(&serde_json::json!({
            "point": point,
            "envs": plans,
            "restore": restore,
            "unchanged": unchanged,
            "skip": skip,
            "fail": fail,
        }));
    }
    let width = plans.iter().map(|p| p.env.len()).max().unwrap_or(3).max(3);
    if let Some(point) = point {
        println!("restore-all to {point}");
    }
    println!("{:width$}  {:>8}  {:9}  DETAIL", "ENV", "VERSION", "ACTION");
    for p in plans {
        let (version, action, detail) = decision_text(p);
        println!(
            "{:width$}  {version:>8}  {action:9}  {}",
            p.env,
            truncate(&detail, 100)
        );
    }
    println!(
        "{} environments: {restore} to restore, {unchanged} unchanged, {skip} skipped, \
         {fail} failed{}",
        plans.len(),
        if dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    Ok(())
}

fn print_record(ctx: &Ctx, record: &RunRecord) -> anyhow::Result<()> {
    if ctx.json() {
        return print_json(record);
    }
    for (env, r) in &record.envs {
        println!("{env}: {}", outcome(r));
    }
    Ok(())
}

fn print_report(ctx: &Ctx, report: &RunReport, counts: &RequestCounts) -> anyhow::Result<()> {
    let id = &report.run.id;
    let undo = (report.run.kind == RunKind::Restore && report.restored > 0)
        .then(|| format!("jetvault restore-all --undo {id} --yes"));
    let resume = (report.failed > 0).then(|| format!("jetvault restore-all --resume {id} --yes"));
    if ctx.json() {
        let mut value = serde_json::to_value(report)?;
        value["undo"] = serde_json::json!(undo);
        value["resume"] = serde_json::json!(resume);
        value["requests"] = serde_json::json!(
            counts
                .by_op()
                .iter()
                .map(|(op, n)| (op.to_string(), *n))
                .collect::<std::collections::BTreeMap<_, _>>()
        );
        return print_json(&value);
    }
    let ops: Vec<String> = counts
        .by_op()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(op, n)| format!("{op} {n}"))
        .collect();
    println!(
        "run {id}: {} restored, {} unchanged, {} skipped, {} failed; {} store requests ({})",
        report.restored,
        report.unchanged,
        report.skipped,
        report.failed,
        counts.total(),
        ops.join(", ")
    );
    let failures: Vec<_> = report
        .run
        .envs
        .iter()
        .filter(|(_, r)| matches!(r.status, Status::Failed | Status::Pending))
        .collect();
    if !failures.is_empty() {
        println!("failed:");
        for (env, r) in failures {
            println!("  {env}: {}", r.reason.as_deref().unwrap_or("not run"));
        }
    }
    if let Some(e) = &report.record_error {
        println!("the run record could not be written: {e}");
    }
    if let Some(cmd) = resume {
        println!("retry the failed:  {cmd}");
    }
    if let Some(cmd) = undo {
        println!("undo:              {cmd}");
    }
    Ok(())
}
