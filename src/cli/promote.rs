//! `jetvault promote`: copy a snapshot into another environment, optionally released.

use clap::Args;
use jetvault_core::{AppId, EnvId, EnvRef, Label, PromoteRequest};

use super::{Ctx, exit, print_json};

#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// App id.
    pub app: String,
    /// The environment to copy from.
    pub from_env: String,
    /// The environment to copy to.
    pub to_env: String,
    /// The version to copy: a number, `latest` or `release` (default: the source's
    /// release, else its latest).
    #[arg(long)]
    pub version: Option<String>,
    /// Also publish the copy as the target's release.
    #[arg(long)]
    pub release: bool,
    /// The label when releasing.
    #[arg(long, requires = "release")]
    pub label: Option<String>,
    /// Release notes when releasing.
    #[arg(long, requires = "release")]
    pub notes: Option<String>,
    /// Release only if the target's release pointer etag is still this one.
    #[arg(long, value_name = "ETAG", requires = "release")]
    pub if_match: Option<String>,
    /// The copy's snapshot message (default: where it came from).
    #[arg(long, short)]
    pub message: Option<String>,
    /// Write a new snapshot even if the target's latest has the same content.
    #[arg(long)]
    pub force: bool,
    /// Who promotes.
    #[arg(long)]
    pub author: Option<String>,
    /// Copy (and release) even if the snapshot fails the target's JSON Schema
    /// (recorded in the audit event).
    #[arg(long)]
    pub skip_schema_check: bool,
}

pub async fn run(ctx: &Ctx, args: PromoteArgs) -> anyhow::Result<u8> {
    let app = AppId::new(&args.app)?;
    let from = EnvId::new(&args.from_env)?;
    let to = EnvId::new(&args.to_env)?;
    let req = PromoteRequest {
        version: args.version.as_deref().map(str::parse).transpose()?,
        release: args.release,
        label: args.label.map(Label::new).transpose()?,
        notes: args.notes,
        message: args.message,
        if_match: args.if_match,
        force: args.force,
        skip_schema_check: args.skip_schema_check,
        ..PromoteRequest::new(ctx.actor(args.author.as_deref()))
    };
    let vault = ctx.vault().await?;
    let outcome = vault.promote(&app, &from, &to, req).await?;
    if ctx.json() {
        print_json(&outcome)?;
        return Ok(exit::OK);
    }
    let src = EnvRef {
        app: app.clone(),
        env: from,
    };
    let dst = EnvRef { app, env: to };
    let s = outcome.snapshot.snapshot();
    match &outcome.snapshot {
        jetvault_core::BackupOutcome::Created(_) => println!(
            "{dst}: snapshot v{} written, a copy of {src} v{}",
            s.version, outcome.source.version
        ),
        jetvault_core::BackupOutcome::Unchanged(_) => println!(
            "{dst}: v{} already holds {src} v{} (same sha256 {}); nothing written \
             (--force writes anyway)",
            s.version,
            outcome.source.version,
            &s.sha256[..12]
        ),
    }
    if let Some(p) = &outcome.release {
        super::release::print_published(&dst, p, "released");
    }
    Ok(exit::OK)
}
