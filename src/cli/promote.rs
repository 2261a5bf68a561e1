//! `jetvault promote`. (Being built.)

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// App id.
    pub app: String,
    /// The environment to copy from.
    pub from_env: String,
    /// The environment to copy to.
    pub to_env: String,
    /// The version to copy (default: the source's release, else its latest).
    #[arg(long)]
    pub version: Option<String>,
    /// Also publish the copy as the target's release.
    #[arg(long)]
    pub release: bool,
    /// The label when releasing.
    #[arg(long)]
    pub label: Option<String>,
    /// Who promotes.
    #[arg(long)]
    pub author: Option<String>,
}

pub async fn run(_ctx: &Ctx, _args: PromoteArgs) -> anyhow::Result<u8> {
    anyhow::bail!("promote is not built yet")
}
