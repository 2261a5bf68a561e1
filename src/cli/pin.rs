//! `jetvault pin` and `unpin`: keep a snapshot from being pruned, or let it go again.

use clap::Args;
use jetvault_core::Selector;
use jetvault_core::pin::PinOutcome;

use super::{Ctx, env_ref, exit, print_json};

#[derive(Debug, Args)]
pub struct PinArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// The version (a number, or `latest`).
    pub version: String,
    /// Who pins.
    #[arg(long)]
    pub author: Option<String>,
}

pub async fn run(ctx: &Ctx, args: PinArgs, pin: bool) -> anyhow::Result<u8> {
    let env = env_ref(&args.app, &args.env)?;
    let selector: Selector = args.version.parse()?;
    let vault = ctx.vault().await?;
    let actor = ctx.actor(args.author.as_deref());
    let version = vault.resolve_version(&env, &selector).await?;
    let outcome = if pin {
        vault.pin(&env, version, &actor).await?
    } else {
        vault.unpin(&env, version, &actor).await?
    };
    let changed = outcome == PinOutcome::Changed;
    if ctx.json() {
        print_json(&serde_json::json!({
            "app": env.app,
            "env": env.env,
            "version": version,
            "pinned": pin,
            "changed": changed,
        }))?;
    } else {
        let word = if pin { "pinned" } else { "unpinned" };
        if changed {
            println!("{env} v{version} {word}");
        } else {
            println!("{env} v{version} was already {word}");
        }
    }
    Ok(exit::OK)
}
