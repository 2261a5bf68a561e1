//! `jetvault release`, `releases` and `rollback`. (Being built.)

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// The snapshot to publish: a version or `latest`.
    pub version: String,
    /// The release label (default: the next release number).
    #[arg(long)]
    pub label: Option<String>,
    /// Release notes.
    #[arg(long)]
    pub notes: Option<String>,
    /// Only publish if the release pointer's etag is still this one.
    #[arg(long, value_name = "ETAG")]
    pub if_match: Option<String>,
    /// Who publishes.
    #[arg(long)]
    pub author: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReleasesArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// How many releases to show.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// Only roll back if the release pointer's etag is still this one.
    #[arg(long, value_name = "ETAG")]
    pub if_match: Option<String>,
    /// Who rolls back.
    #[arg(long)]
    pub author: Option<String>,
}

pub async fn release(_ctx: &Ctx, _args: ReleaseArgs) -> anyhow::Result<u8> {
    anyhow::bail!("release is not built yet")
}

pub async fn releases(_ctx: &Ctx, _args: ReleasesArgs) -> anyhow::Result<u8> {
    anyhow::bail!("releases is not built yet")
}

pub async fn rollback(_ctx: &Ctx, _args: RollbackArgs) -> anyhow::Result<u8> {
    anyhow::bail!("rollback is not built yet")
}
