//! `jetvault verify`. (Being built.)

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// App id (default: every app).
    pub app: Option<String>,
    /// Environment id (default: every environment of the app).
    pub env: Option<String>,
    /// Check only N randomly chosen snapshots per environment (the latest always).
    #[arg(long)]
    pub sample: Option<usize>,
}

pub async fn run(_ctx: &Ctx, _args: VerifyArgs) -> anyhow::Result<u8> {
    anyhow::bail!("verify is not built yet")
}
