//! `jetvault restore`. (Being built.)

use std::path::PathBuf;

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// The version to restore.
    pub version: Option<String>,
    /// Restore the snapshot of this release label.
    #[arg(long, value_name = "LABEL")]
    pub release: Option<String>,
    /// Restore the newest snapshot taken at or before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Show the diff against what is live and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub yes: bool,
    /// Also move the release pointer to the restored snapshot.
    #[arg(long)]
    pub publish: bool,
    /// Write the configuration to this file and leave live alone.
    #[arg(long, value_name = "FILE")]
    pub to: Option<PathBuf>,
    /// Who restores.
    #[arg(long)]
    pub author: Option<String>,
}

pub async fn run(_ctx: &Ctx, _args: RestoreArgs) -> anyhow::Result<u8> {
    anyhow::bail!("restore is not built yet")
}
