//! `jetvault serve`: the HTTP service and the scheduler. (Being built.)

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides server.listen).
    #[arg(long, env = "JETVAULT_LISTEN")]
    pub listen: Option<String>,
}

pub async fn run(_ctx: &Ctx, _args: ServeArgs) -> anyhow::Result<u8> {
    anyhow::bail!("serve is not built yet")
}
