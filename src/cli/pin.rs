//! `jetvault pin` and `unpin`. (Being built.)

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub struct PinArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// The version.
    pub version: String,
}

pub async fn run(_ctx: &Ctx, _args: PinArgs, _pin: bool) -> anyhow::Result<u8> {
    anyhow::bail!("pin is not built yet")
}
