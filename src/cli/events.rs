//! `jetvault events`. (Being built.)

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// How many events to show.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
}

pub async fn run(_ctx: &Ctx, _args: EventsArgs) -> anyhow::Result<u8> {
    anyhow::bail!("events is not built yet")
}
