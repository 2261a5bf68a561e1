//! `jetvault repair`: close the gaps that interrupted writes left (missing index
//! entries, release records and audit events; leftover temporary files).

use std::time::Duration;

use clap::Args;
use jetvault_core::EnvRef;
use jetvault_core::repair::{RepairOptions, RepairReport};
use serde::Serialize;

use super::{Ctx, exit, print_json};

#[derive(Debug, Args)]
pub struct RepairArgs {
    /// App id (default: every app in the store).
    pub app: Option<String>,
    /// Environment id (default: every environment of the app).
    pub env: Option<String>,
    /// Name what would be repaired; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Leave alone what is younger than this, so that a writer still running is not
    /// repaired over: e.g. 10m, 30s, 0s.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// Who repairs (recorded in each reconstructed event).
    #[arg(long)]
    pub author: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
enum Row {
    Repaired(RepairReport),
    Failed {
        env: EnvRef,
        error: String,
        code: &'static str,
    },
}

pub async fn run(ctx: &Ctx, args: RepairArgs) -> anyhow::Result<u8> {
    let vault = ctx.vault().await?;
    let envs = super::stored_envs(
        &vault,
        args.app.as_deref(),
        args.env.as_deref(),
        "environments",
    )
    .await?;
    let opts = RepairOptions {
        grace: args.grace,
        dry_run: args.dry_run,
        ..RepairOptions::new(ctx.actor(args.author.as_deref()))
    };
    let single = envs.len() == 1;
    let mut rows = Vec::new();
    for env in envs {
        match vault.repair_env(&env, &opts).await {
            Ok(report) => rows.push(Row::Repaired(report)),
            Err(e) if single => return Err(e.into()),
            Err(e) => rows.push(Row::Failed {
                env,
                error: e.report(),
                code: e.kind().code(),
            }),
        }
    }
    let unrepaired: usize = rows
        .iter()
        .map(|r| match r {
            Row::Repaired(r) => r.failed.len(),
            Row::Failed { .. } => 1,
        })
        .sum();
    if ctx.json() {
        print_json(&rows)?;
    } else {
        print_text(&rows, args.dry_run);
    }
    Ok(if unrepaired > 0 {
        exit::PARTIAL
    } else {
        exit::OK
    })
}

fn print_text(rows: &[Row], dry_run: bool) {
    let (mut closed, mut envs_failed) = (0, 0);
    for row in rows {
        match row {
            Row::Failed { env, error, .. } => {
                envs_failed += 1;
                println!("{env}: NOT REPAIRED: {error}");
            }
            Row::Repaired(r) => {
                closed += r.repaired.len();
                if r.repaired.is_empty() && r.failed.is_empty() && r.already_closed == 0 {
                    println!("{}: nothing to repair", r.env);
                    continue;
                }
                let verb = if dry_run { "would repair" } else { "repaired" };
                let meanwhile = if r.already_closed > 0 {
                    format!(" ({} more found closed meanwhile)", r.already_closed)
                } else {
                    String::new()
                };
                println!("{}: {verb} {}{meanwhile}", r.env, r.repaired.len());
                for g in &r.repaired {
                    println!("  {:<22} {}: {}", g.kind.as_str(), g.key, g.detail);
                }
                for f in &r.failed {
                    let g = &f.gap;
                    println!(
                        "  FAILED {:<15} {}: {}: {}",
                        g.kind.as_str(),
                        g.key,
                        g.detail,
                        f.error
                    );
                }
            }
        }
    }
    if rows.len() > 1 {
        let verb = if dry_run {
            "would be repaired"
        } else {
            "repaired"
        };
        println!(
            "{} environments, {closed} gaps {verb}, {envs_failed} not repaired",
            rows.len()
        );
    }
}
