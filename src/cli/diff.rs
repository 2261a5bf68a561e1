//! `jetvault diff`: the differences between two versions (or a version and what is live).

use bytes::Bytes;
use clap::Args;
use jetvault_core::diff::DiffOptions;
use jetvault_core::{EnvRef, Selector, Vault};

use super::{Ctx, env_ref, exit, print_json};

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// The old side: a version, `latest`, or `live` (the live configuration).
    pub a: String,
    /// The new side: a version, `latest`, or `live`.
    pub b: String,
    /// Shorten values in the readable output to this many characters.
    #[arg(long, default_value_t = 100)]
    pub width: usize,
    /// Compare arrays of objects by this identity key (repeat it to try several in
    /// order) instead of the environment's `diff.keys` (default `id`, `uid`, `name`).
    #[arg(long = "key", value_name = "KEY", conflicts_with = "no_keys")]
    pub keys: Vec<String>,
    /// Compare every array as a sequence, by none of its items' identities.
    #[arg(long)]
    pub no_keys: bool,
}

pub async fn run(ctx: &Ctx, args: DiffArgs) -> anyhow::Result<u8> {
    let env = env_ref(&args.app, &args.env)?;
    let vault = ctx.vault().await?;
    let (a, a_name) = side(ctx, &vault, &env, &args.a).await?;
    let (b, b_name) = side(ctx, &vault, &env, &args.b).await?;
    let mut options = DiffOptions::for_env(&ctx.config, &env)?;
    if args.no_keys {
        options = options.keys(Vec::<String>::new());
    } else if !args.keys.is_empty() {
        options = options.keys(args.keys);
    }
    let diff = options.between(&a, &b, &a_name, &b_name)?;
    if ctx.json() {
        print_json(diff.patch())?;
    } else {
        println!("--- {env} {a_name}\n+++ {env} {b_name}");
        print!("{}", diff.render(args.width));
    }
    Ok(exit::OK)
}

async fn side(
    ctx: &Ctx,
    vault: &Vault,
    env: &EnvRef,
    spec: &str,
) -> anyhow::Result<(Bytes, String)> {
    if spec == "live" {
        let target = jetvault_core::live::open_configured(&ctx.config, env).await?;
        let raw = target.read(vault.options().max_size).await?;
        return Ok((raw, format!("live ({})", target.describe())));
    }
    let selector: Selector = spec.parse()?;
    let meta = vault.resolve(env, &selector).await?;
    let (_, raw) = vault.get(env, meta.version).await?;
    Ok((raw, format!("v{}", meta.version)))
}
