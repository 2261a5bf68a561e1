//! `jetvault list`, `show` and `cat`: browse an environment's snapshots.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use jetvault_core::live::LiveTarget;
use jetvault_core::{Error, Selector, SnapshotMeta};

use super::{Ctx, env_ref, exit, human_size, print_json, truncate};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// How many snapshots to show.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Only versions older than this one (for paging).
    #[arg(long, value_name = "V")]
    pub before: Option<u64>,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// Version number, or `latest`.
    pub version: String,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// Version number, `latest` or `release`.
    pub version: String,
    /// Write to this file (atomically) instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

pub async fn list(ctx: &Ctx, args: ListArgs) -> anyhow::Result<u8> {
    if args.limit == 0 {
        return Err(Error::invalid("--limit must be at least 1").into());
    }
    let env = env_ref(&args.app, &args.env)?;
    let vault = ctx.vault().await?;
    let snapshots = vault.list(&env, args.before, args.limit).await?;
    if ctx.json() {
        print_json(&snapshots)?;
        return Ok(exit::OK);
    }
    if snapshots.is_empty() {
        println!(
            "{env} has no snapshots{}",
            if args.before.is_some() {
                " older than that"
            } else {
                ""
            }
        );
        return Ok(exit::OK);
    }
    println!(
        "{:>8}  {:<20}  {:>10}  {:>10}  {:<11}  {:<20}  MESSAGE",
        "VERSION", "CREATED (UTC)", "SIZE", "STORED", "TRIGGER", "AUTHOR"
    );
    for s in &snapshots {
        println!(
            "{:>8}  {:<20}  {:>10}  {:>10}  {:<11}  {:<20}  {}",
            s.version,
            s.created_at.format("%Y-%m-%d %H:%M:%S"),
            human_size(s.size),
            human_size(s.stored_size),
            s.trigger.as_str(),
            truncate(s.author.as_deref().unwrap_or("-"), 20),
            list_message(s)
        );
    }
    if snapshots.len() == args.limit
        && let Some(last) = snapshots.last()
    {
        println!("(more: --before {})", last.version);
    }
    Ok(exit::OK)
}

/// The MESSAGE column: the message, after a mark for a snapshot that failed its
/// environment's schema.
fn list_message(s: &SnapshotMeta) -> String {
    let message = s.message.as_deref().unwrap_or("");
    match s.schema_errors {
        Some(n) => format!(
            "[schema: {n} error{}] {message}",
            if n == 1 { "" } else { "s" }
        )
        .trim_end()
        .to_string(),
        None => message.to_string(),
    }
}

pub async fn show(ctx: &Ctx, args: ShowArgs) -> anyhow::Result<u8> {
    let env = env_ref(&args.app, &args.env)?;
    let selector: Selector = args.version.parse()?;
    let vault = ctx.vault().await?;
    let meta = vault.resolve(&env, &selector).await?;
    if ctx.json() {
        print_json(&meta)?;
    } else {
        print_meta(&env.to_string(), &meta, &vault.store().describe());
    }
    Ok(exit::OK)
}

fn print_meta(env: &str, m: &SnapshotMeta, store: &str) {
    println!("snapshot    {env} v{}", m.version);
    println!("created_at  {}", m.created_at.to_rfc3339());
    match m.restored_from {
        Some(v) => println!("trigger     {} (of v{v})", m.trigger),
        None => println!("trigger     {}", m.trigger),
    }
    println!("author      {}", m.author.as_deref().unwrap_or("-"));
    println!("message     {}", m.message.as_deref().unwrap_or("-"));
    println!("source      {}", m.source.as_deref().unwrap_or("-"));
    println!("sha256      {}", m.sha256);
    println!("size        {} ({} bytes)", human_size(m.size), m.size);
    println!(
        "stored      {} ({} bytes, zstd, {:.1}x)",
        human_size(m.stored_size),
        m.stored_size,
        m.size as f64 / m.stored_size.max(1) as f64
    );
    println!("object      {} in {store}", m.key);
    if let Some(n) = m.schema_errors {
        println!(
            "schema      FAILED: {n} violation{} of the environment's schema{}",
            if n == 1 { "" } else { "s" },
            m.schema_error
                .as_deref()
                .map(|e| format!("; first: {e}"))
                .unwrap_or_default()
        );
    }
}

pub async fn cat(ctx: &Ctx, args: CatArgs) -> anyhow::Result<u8> {
    let env = env_ref(&args.app, &args.env)?;
    let selector: Selector = args.version.parse()?;
    let vault = ctx.vault().await?;
    let meta = vault.resolve(&env, &selector).await?;
    let (_, raw) = vault.get(&env, meta.version).await?;
    match &args.output {
        Some(path) => {
            jetvault_core::live::file::FileTarget::new(path.clone())
                .write(raw)
                .await?;
            eprintln!("{env} v{} written to {}", meta.version, path.display());
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&raw)
                .context("cannot write to standard output")?;
            out.flush().context("cannot write to standard output")?;
        }
    }
    Ok(exit::OK)
}
