//! `jetvault release`, `releases` and `rollback`.

use clap::Args;
use jetvault_core::{EnvRef, Label, Release, ReleasePointer, ReleaseRequest, Selector};

use super::{Ctx, env_ref, exit, print_json, truncate};

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
    /// Publish even if the snapshot fails the environment's JSON Schema (recorded in
    /// the audit event).
    #[arg(long)]
    pub skip_schema_check: bool,
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
    /// Only releases numbered below this one (for paging).
    #[arg(long, value_name = "SEQ")]
    pub before: Option<u64>,
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
    /// Why (default: names the release gone back to).
    #[arg(long)]
    pub notes: Option<String>,
    /// Who rolls back.
    #[arg(long)]
    pub author: Option<String>,
}

pub async fn release(ctx: &Ctx, args: ReleaseArgs) -> anyhow::Result<u8> {
    let env = env_ref(&args.app, &args.env)?;
    let selector: Selector = args.version.parse()?;
    let label = args.label.map(Label::new).transpose()?;
    let vault = ctx.vault().await?;
    let version = vault.resolve_version(&env, &selector).await?;
    let req = ReleaseRequest {
        label,
        notes: args.notes,
        if_match: args.if_match,
        skip_schema_check: args.skip_schema_check,
        ..ReleaseRequest::new(version, ctx.actor(args.author.as_deref()))
    };
    let pointer = vault.release(&env, req).await?;
    if ctx.json() {
        print_json(&pointer)?;
    } else {
        print_published(&env, &pointer, "released");
    }
    Ok(exit::OK)
}

/// What a release, rollback or promotion published, and the etag to pass as
/// `--if-match` next time.
pub fn print_published(env: &EnvRef, p: &ReleasePointer, verb: &str) {
    let r = &p.release;
    let replaced = r.previous.as_ref().map_or_else(
        || "first release".to_string(),
        |prev| format!("replaces {prev}"),
    );
    println!(
        "{env}: {verb} v{} as {} (release r{}, {replaced})",
        r.version, r.label, r.seq
    );
    println!("etag {} (for --if-match)", p.etag);
}

pub async fn releases(ctx: &Ctx, args: ReleasesArgs) -> anyhow::Result<u8> {
    let env = env_ref(&args.app, &args.env)?;
    let vault = ctx.vault().await?;
    let releases = vault.releases_page(&env, args.before, args.limit).await?;
    if ctx.json() {
        print_json(&releases)?;
        return Ok(exit::OK);
    }
    if releases.is_empty() {
        if args.before.is_some() {
            println!("{env} has no releases older than that");
        } else {
            println!(
                "{env} has no releases; publish one with `jetvault release {} {} <version>`",
                env.app, env.env
            );
        }
        return Ok(exit::OK);
    }
    print_table(&releases, args.before.is_none());
    if releases.len() == args.limit
        && let Some(last) = releases.last()
        && last.seq > 1
    {
        println!("(more: --before {})", last.seq);
    }
    Ok(exit::OK)
}

fn print_table(releases: &[Release], first_is_current: bool) {
    let label_width = releases
        .iter()
        .map(|r| r.label.as_str().len())
        .max()
        .unwrap_or(0)
        .clamp(5, 24);
    println!(
        "  {:>5}  {:<label_width$}  {:>8}  {:<8}  {:<20}  {:<20}  NOTES",
        "SEQ", "LABEL", "VERSION", "KIND", "RELEASED (UTC)", "BY"
    );
    for (i, r) in releases.iter().enumerate() {
        let mark = if i == 0 && first_is_current { '*' } else { ' ' };
        println!(
            "{mark} {:>5}  {:<label_width$}  {:>8}  {:<8}  {:<20}  {:<20}  {}",
            r.seq,
            r.label.as_str(),
            format!("v{}", r.version),
            r.kind.as_str(),
            r.released_at.format("%Y-%m-%d %H:%M:%S"),
            truncate(r.released_by.as_deref().unwrap_or("-"), 20),
            r.notes.as_deref().unwrap_or("").replace('\n', " ")
        );
    }
    if first_is_current {
        println!("(* the current release)");
    }
}

pub async fn rollback(ctx: &Ctx, args: RollbackArgs) -> anyhow::Result<u8> {
    let env = env_ref(&args.app, &args.env)?;
    let vault = ctx.vault().await?;
    let pointer = vault
        .rollback(
            &env,
            args.if_match,
            ctx.actor(args.author.as_deref()),
            args.notes,
        )
        .await?;
    if ctx.json() {
        print_json(&pointer)?;
    } else {
        print_published(&env, &pointer, "rolled back to");
    }
    Ok(exit::OK)
}
