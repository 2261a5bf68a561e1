//! `jetvault prune`. (Being built.)

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// App id (default: every app).
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
}

pub async fn run(_ctx: &Ctx, _args: PruneArgs) -> anyhow::Result<u8> {
    anyhow::bail!("prune is not built yet")
}
