//! `jetvault rekey`: re-encrypt older snapshots to the current age recipients, keeping
//! their version, sha256 and history (see `jetvault_core::crypt`).

use clap::Args;

use super::{Ctx, exit, print_json};

#[derive(Debug, Args)]
pub struct RekeyArgs {
    /// App id (default: every app in the store).
    pub app: Option<String>,
    /// Environment id (default: every environment of the app).
    pub env: Option<String>,
    /// Who rotates the keys (recorded in the audit event).
    #[arg(long)]
    pub author: Option<String>,
}

pub async fn run(ctx: &Ctx, args: RekeyArgs) -> anyhow::Result<u8> {
    let vault = ctx.vault().await?;
    let envs = super::stored_envs(
        &vault,
        args.app.as_deref(),
        args.env.as_deref(),
        "snapshots",
    )
    .await?;
    let actor = ctx.actor(args.author.as_deref());
    let mut reports = Vec::new();
    for env in envs {
        let report = vault.rekey(&env, &actor).await?;
        if !ctx.json() {
            println!(
                "{env}: {} snapshots re-encrypted{}, {} already to these recipients, {} \
                 plain (left as they are); recipients: {}",
                report.rekeyed.len(),
                if report.rekeyed.is_empty() {
                    String::new()
                } else {
                    let v: Vec<String> = report.rekeyed.iter().map(|v| format!("v{v}")).collect();
                    format!(" ({})", v.join(", "))
                },
                report.current,
                report.plain,
                report.recipients.join(", ")
            );
        }
        reports.push(report);
    }
    if ctx.json() {
        print_json(&reports)?;
    }
    Ok(exit::OK)
}
