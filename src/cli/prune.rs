//! `jetvault prune`: delete old snapshots by retention policy.
//!
//! Which environments: the one named, every environment of the app named, or (with no
//! app) every environment in the store, including ones no longer in the config. The
//! policy: the `--keep-*` flags when any is given, else the environment's `retention`
//! in the config; an environment with neither is skipped, never pruned. The latest
//! snapshot, the released one, any in the release history and pinned ones are never
//! deleted.

use clap::Args;
use jetvault_core::config::RetentionPolicy;
use jetvault_core::retention::{
    Decision, PruneOptions, PruneProgress, PruneReport, describe_policy, parse_duration,
};
use jetvault_core::{AppId, EnvId, EnvRef, Error};
use serde::Serialize;

use futures::StreamExt;

use super::rows::RowPrinter;
use super::{Ctx, exit, human_size};

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// App id (default: every app in the store).
    pub app: Option<String>,
    /// Environment id (default: every environment of the app).
    pub env: Option<String>,
    /// Keep the newest N versions.
    #[arg(long)]
    pub keep_last: Option<u32>,
    /// Keep the newest version of each of the last N days.
    #[arg(long)]
    pub keep_daily: Option<u32>,
    /// Keep the newest version of each of the last N weeks.
    #[arg(long)]
    pub keep_weekly: Option<u32>,
    /// Keep the newest version of each of the last N months.
    #[arg(long)]
    pub keep_monthly: Option<u32>,
    /// Keep every version younger than this (e.g. 30d, 12h).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Show what would be deleted and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Who prunes.
    #[arg(long)]
    pub author: Option<String>,
    /// How many environments to prune at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

fn flags_policy(args: &PruneArgs) -> anyhow::Result<Option<RetentionPolicy>> {
    let policy = RetentionPolicy {
        keep_last: args.keep_last,
        keep_daily: args.keep_daily,
        keep_weekly: args.keep_weekly,
        keep_monthly: args.keep_monthly,
        keep_within: args
            .keep_within
            .as_deref()
            .map(parse_duration)
            .transpose()?,
    };
    Ok((!jetvault_core::retention::policy_is_empty(&policy)).then_some(policy))
}

#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
enum Row {
    Pruned(PruneReport),
    Skipped {
        env: EnvRef,
        reason: String,
    },
    Failed {
        env: EnvRef,
        error: String,
        code: &'static str,
    },
}

pub async fn run(ctx: &Ctx, args: PruneArgs) -> anyhow::Result<u8> {
    let vault = ctx.vault().await?;
    let flags = flags_policy(&args)?;
    let app = args.app.as_deref().map(AppId::new).transpose()?;
    let env = args.env.as_deref().map(EnvId::new).transpose()?;
    let envs = vault.select_envs(app.as_ref(), env.as_ref()).await?;
    let jobs: Vec<(EnvRef, Option<RetentionPolicy>)> = envs
        .into_iter()
        .map(|env| {
            let policy = flags.clone().or_else(|| {
                ctx.config
                    .env(&env)
                    .and_then(|c| c.retention.clone())
                    .filter(|p| !jetvault_core::retention::policy_is_empty(p))
            });
            (env, policy)
        })
        .collect();
    if jobs.iter().all(|(_, p)| p.is_none()) {
        let what = match (&args.app, &args.env) {
            (Some(a), Some(e)) => format!("{a}/{e}"),
            (Some(a), None) => format!("any environment of {a}"),
            _ => "any environment".into(),
        };
        return Err(Error::invalid(format!(
            "no retention policy for {what}: refusing to prune"
        ))
        .with_hint(
            "pass --keep-last/--keep-daily/--keep-weekly/--keep-monthly/--keep-within, or set \
             `retention = { keep_last = 30, keep_daily = 14 }` for the environment in the config",
        )
        .into());
    }

    let opts = PruneOptions {
        dry_run: args.dry_run,
        actor: ctx.actor(args.author.as_deref()),
        now: None,
    };
    // One environment: a progress bar over its snapshots. Several: a few at a time, a
    // bar over the environments, each row printed when it is done (in order) and only
    // the count of failures kept.
    let single = jobs.len() == 1;
    let overall = super::progress(if single { 0 } else { jobs.len() as u64 }, "prune");
    let concurrency = if single {
        1
    } else {
        usize::from(args.concurrency)
    };
    let mut rows = futures::stream::iter(jobs)
        .map(|(env, policy)| {
            let (vault, opts) = (&vault, &opts);
            async move {
                let Some(policy) = policy else {
                    return Row::Skipped {
                        env,
                        reason: "no retention policy in the config".into(),
                    };
                };
                let bar = if single {
                    super::progress(0, &format!("prune {env}"))
                } else {
                    indicatif::ProgressBar::hidden()
                };
                let on_progress = |p: PruneProgress| match p {
                    PruneProgress::Reading { done, total } => {
                        bar.set_length(total);
                        bar.set_position(done);
                        bar.set_message("reading");
                    }
                    PruneProgress::Deleting { done, total } => {
                        bar.set_length(total);
                        bar.set_position(done);
                        bar.set_message("deleting");
                    }
                };
                let result = vault
                    .apply_retention_with_progress(&env, &policy, opts, &on_progress)
                    .await;
                bar.finish_and_clear();
                match result {
                    Ok(report) => Row::Pruned(report),
                    Err(e) => Row::Failed {
                        env,
                        error: e.report(),
                        code: e.kind().code(),
                    },
                }
            }
        })
        .buffered(concurrency);
    let mut failed = 0;
    let mut out = RowPrinter::new(ctx.json());
    while let Some(row) = rows.next().await {
        overall.inc(1);
        failed += usize::from(matches!(row, Row::Failed { .. }));
        overall.suspend(|| out.row(&row, |r| text(r, args.dry_run)))?;
    }
    overall.finish_and_clear();
    out.finish()?;
    Ok(if failed > 0 { exit::PARTIAL } else { exit::OK })
}

/// A row in text mode: the environment's totals, what is kept and why, what goes.
fn text(row: &Row, dry_run: bool) -> String {
    use std::fmt::Write;
    let r = match row {
        Row::Skipped { env, reason } => return format!("{env}: skipped ({reason})"),
        Row::Failed { env, error, .. } => return format!("{env}: FAILED: {error}"),
        Row::Pruned(r) => r,
    };
    let verb = if dry_run { "would delete" } else { "deleted" };
    let mut s = format!(
        "{}: {} snapshots, {} kept, {verb} {} ({}) by {}{}",
        r.env,
        r.decisions.len(),
        r.kept,
        r.deleted,
        human_size(r.freed_bytes),
        describe_policy(&r.policy),
        if dry_run { " [dry run]" } else { "" }
    );
    for d in r.decisions.iter().filter(|d| d.keep) {
        let reasons: Vec<&str> = d.reasons.iter().map(|r| r.as_str()).collect();
        let _ = write!(
            s,
            "\n  keep   v{:<8} {:<20} {}",
            d.version,
            d.created_at
                .map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M").to_string()),
            reasons.join(", ")
        );
    }
    let gone: Vec<&Decision> = r.decisions.iter().filter(|d| !d.keep).collect();
    if !gone.is_empty() {
        let _ = write!(
            s,
            "\n  {:<6} {}",
            if dry_run { "delete" } else { "gone" },
            ranges(&gone)
        );
    }
    if !r.spared.is_empty() {
        let spared: Vec<String> = r.spared.iter().map(|v| format!("v{v}")).collect();
        let _ = write!(
            s,
            "\n  spared {} (pinned or released while prune ran)",
            spared.join(", ")
        );
    }
    if r.claims_swept > 0 {
        let _ = write!(
            s,
            "\n  claims {} scheduler tick claim(s) older than a day {}",
            r.claims_swept,
            if dry_run { "would be swept" } else { "swept" }
        );
    }
    s
}

/// `v1-v120, v122, v130-v487` from decisions listed newest first.
fn ranges(ds: &[&Decision]) -> String {
    let mut vs: Vec<u64> = ds.iter().map(|d| d.version).collect();
    vs.sort_unstable();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < vs.len() {
        let start = vs[i];
        let mut end = start;
        while i + 1 < vs.len() && vs[i + 1] == end + 1 {
            i += 1;
            end = vs[i];
        }
        out.push(if start == end {
            format!("v{start}")
        } else {
            format!("v{start}-v{end}")
        });
        i += 1;
    }
    out.join(", ")
}
