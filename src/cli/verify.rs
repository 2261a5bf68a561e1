//! `jetvault verify`: read snapshots back and check them; list the bad ones and the
//! gaps interrupted writes left (which `jetvault repair` closes).

use clap::Args;
use jetvault_core::EnvRef;
use jetvault_core::verify::{VerifyOptions, VerifyReport};
use serde::Serialize;

use super::{Ctx, exit, print_json};

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
    let single = envs.len() == 1;
    let mut rows = Vec::new();
    for env in envs {
        let bar = super::progress(0, &format!("verify {env}"));
        let result = vault
            .verify_env_with_progress(&env, &opts, &|done, total| {
                bar.set_length(total);
                bar.set_position(done);
            })
            .await;
        bar.finish_and_clear();
        match result {
            Ok(report) if single && report.total == 0 => {
                return Err(
                    jetvault_core::Error::not_found(format!("{env} has no snapshots"))
                        .with_hint("check the app and env names")
                        .into(),
                );
            }
            Ok(report) => rows.push(Row::Checked(report)),
            Err(e) if single => return Err(e.into()),
            Err(e) => rows.push(Row::Failed {
                env,
                error: e.report(),
                code: e.kind().code(),
            }),
        }
    }

    let bad: usize = rows
        .iter()
        .map(|r| match r {
            Row::Checked(r) => r.bad.len(),
            Row::Failed { .. } => 0,
        })
        .sum();
    let gaps: usize = rows
        .iter()
        .map(|r| match r {
            Row::Checked(r) => r.gaps.len(),
            Row::Failed { .. } => 0,
        })
        .sum();
    let failed = rows
        .iter()
        .filter(|r| matches!(r, Row::Failed { .. }))
        .count();
    if ctx.json() {
        print_json(&rows)?;
    } else {
        let mut checked = 0;
        for row in &rows {
            match row {
                Row::Failed { env, error, .. } => println!("{env}: NOT VERIFIED: {error}"),
                Row::Checked(r) => {
                    checked += r.checked;
                    let of = if r.checked < r.total {
                        format!(" (a sample of {})", r.total)
                    } else {
                        String::new()
                    };
                    if r.bad.is_empty() {
                        println!("{}: {} snapshots checked{of}, all good", r.env, r.checked);
                    } else {
                        println!(
                            "{}: {} snapshots checked{of}, {} BAD:",
                            r.env,
                            r.checked,
                            r.bad.len()
                        );
                        for b in &r.bad {
                            let v = b.version.map_or_else(|| "?".into(), |v| format!("v{v}"));
                            println!("  {v:<8} {}: {}", b.key, b.reason);
                        }
                    }
                    if r.structure_only > 0 {
                        println!(
                            "{}: {} encrypted snapshots checked for structure only (age \
                             header, recipients, size): NOT decrypted, so their content, \
                             size and sha256 were not checked: {}",
                            r.env,
                            r.structure_only,
                            r.structure_only_reason.as_deref().unwrap_or("no identity")
                        );
                    }
                    if !r.gaps.is_empty() {
                        println!(
                            "{}: {} GAPS left by interrupted writes (`jetvault repair` closes \
                             them):",
                            r.env,
                            r.gaps.len()
                        );
                        for g in &r.gaps {
                            println!("  {:<22} {}: {}", g.kind.as_str(), g.key, g.detail);
                        }
                    }
                }
            }
        }
        if rows.len() > 1 {
            println!(
                "{} environments, {checked} snapshots checked, {bad} bad, {gaps} gaps, \
                 {failed} not verified",
                rows.len()
            );
        }
    }
    Ok(if bad > 0 || gaps > 0 {
        exit::CORRUPT
    } else if failed > 0 {
        exit::PARTIAL
    } else {
        exit::OK
    })
}
