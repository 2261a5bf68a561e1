//! `jetvault verify`: read snapshots back and check them; list the bad ones and the
//! gaps interrupted writes left (which `jetvault repair` closes).

use clap::Args;
use jetvault_core::EnvRef;
use jetvault_core::verify::{VerifyOptions, VerifyReport};
use serde::Serialize;

use futures::StreamExt;

use super::rows::RowPrinter;
use super::{Ctx, exit};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// App id (default: every app in the store).
    pub app: Option<String>,
    /// Environment id (default: every environment of the app).
    pub env: Option<String>,
    /// Check only N randomly chosen snapshots per environment (the latest always).
    #[arg(long)]
    pub sample: Option<usize>,
    /// Name only gaps (missing index entries, release records, audit events; leftover
    /// temporary files) older than this, so that a writer still running is not
    /// reported: e.g. 10m, 30s, 0s.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,
    /// How many environments to verify at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
enum Row {
    Checked(VerifyReport),
    Failed {
        env: EnvRef,
        error: String,
        code: &'static str,
    },
}

pub async fn run(ctx: &Ctx, args: VerifyArgs) -> anyhow::Result<u8> {
    let vault = ctx.vault().await?;
    let envs = super::stored_envs(
        &vault,
        args.app.as_deref(),
        args.env.as_deref(),
        "snapshots",
    )
    .await?;
    let opts = VerifyOptions {
        sample: args.sample,
        grace: args.grace,
    };
    if let [env] = envs.as_slice() {
        return verify_one(ctx, &vault, env, &opts).await;
    }
    // Many environments: a few at a time, each row printed when it is done (in order),
    // and only the totals kept.
    let bar = super::progress(envs.len() as u64, "verify");
    let mut rows = futures::stream::iter(envs)
        .map(|env| {
            let (vault, opts) = (&vault, &opts);
            async move {
                match vault.verify_env(&env, opts).await {
                    Ok(report) => {
                        notify_problems(vault, ctx, &report);
                        Row::Checked(report)
                    }
                    Err(e) => Row::Failed {
                        env,
                        error: e.report(),
                        code: e.kind().code(),
                    },
                }
            }
        })
        .buffered(usize::from(args.concurrency));
    let mut totals = Totals::default();
    let mut out = RowPrinter::new(ctx.json());
    while let Some(row) = rows.next().await {
        bar.inc(1);
        totals.add(&row);
        bar.suspend(|| out.row(&row, text))?;
    }
    bar.finish_and_clear();
    if !ctx.json() {
        let Totals {
            checked,
            bad,
            gaps,
            failed,
        } = totals;
        println!(
            "{} environments, {checked} snapshots checked, {bad} bad, {gaps} gaps, \
             {failed} not verified",
            out.count()
        );
    }
    out.finish()?;
    Ok(totals.exit_code())
}

/// One environment, with a progress bar over its snapshots; no snapshot is an error.
async fn verify_one(
    ctx: &Ctx,
    vault: &jetvault_core::Vault,
    env: &EnvRef,
    opts: &VerifyOptions,
) -> anyhow::Result<u8> {
    let bar = super::progress(0, &format!("verify {env}"));
    let result = vault
        .verify_env_with_progress(env, opts, &|done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
        .await;
    bar.finish_and_clear();
    let report = result?;
    if report.total == 0 {
        return Err(
            jetvault_core::Error::not_found(format!("{env} has no snapshots"))
                .with_hint("check the app and env names")
                .into(),
        );
    }
    notify_problems(vault, ctx, &report);
    let row = Row::Checked(report);
    let mut totals = Totals::default();
    totals.add(&row);
    let mut out = RowPrinter::new(ctx.json());
    out.row(&row, text)?;
    out.finish()?;
    Ok(totals.exit_code())
}

/// What the summary line and the exit code need.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    checked: usize,
    bad: usize,
    gaps: usize,
    failed: usize,
}

impl Totals {
    fn add(&mut self, row: &Row) {
        match row {
            Row::Checked(r) => {
                self.checked += r.checked;
                self.bad += r.bad.len();
                self.gaps += r.gaps.len();
            }
            Row::Failed { .. } => self.failed += 1,
        }
    }

    fn exit_code(self) -> u8 {
        if self.bad > 0 || self.gaps > 0 {
            exit::CORRUPT
        } else if self.failed > 0 {
            exit::PARTIAL
        } else {
            exit::OK
        }
    }
}

/// A row in text mode: the environment's verdict, its bad snapshots and its gaps.
fn text(row: &Row) -> String {
    use std::fmt::Write;
    let r = match row {
        Row::Failed { env, error, .. } => return format!("{env}: NOT VERIFIED: {error}"),
        Row::Checked(r) => r,
    };
    let of = if r.checked < r.total {
        format!(" (a sample of {})", r.total)
    } else {
        String::new()
    };
    let mut s = if r.bad.is_empty() {
        format!("{}: {} snapshots checked{of}, all good", r.env, r.checked)
    } else {
        format!(
            "{}: {} snapshots checked{of}, {} BAD:",
            r.env,
            r.checked,
            r.bad.len()
        )
    };
    for b in &r.bad {
        let v = b.version.map_or_else(|| "?".into(), |v| format!("v{v}"));
        let _ = write!(s, "\n  {v:<8} {}: {}", b.key, b.reason);
    }
    if r.structure_only > 0 {
        let _ = write!(
            s,
            "\n{}: {} encrypted snapshots checked for structure only (age header, \
             recipients, size): NOT decrypted, so their content, size and sha256 were not \
             checked: {}",
            r.env,
            r.structure_only,
            r.structure_only_reason.as_deref().unwrap_or("no identity")
        );
    }
    if !r.gaps.is_empty() {
        let _ = write!(
            s,
            "\n{}: {} GAPS left by interrupted writes (`jetvault repair` closes them):",
            r.env,
            r.gaps.len()
        );
        for g in &r.gaps {
            let _ = write!(s, "\n  {:<22} {}: {}", g.kind.as_str(), g.key, g.detail);
        }
    }
    s
}

/// Sends the `verify-problem` notice of an environment with bad snapshots or gaps.
fn notify_problems(vault: &jetvault_core::Vault, ctx: &Ctx, r: &VerifyReport) {
    if let Some(notice) = r.problem_notice(&ctx.actor(None)) {
        vault.notify(notice);
    }
}
