//! `jetvault backup`: snapshot one environment.

use std::io::Read;
use std::path::PathBuf;

use bytes::Bytes;
use clap::Args;
use jetvault_core::notify::Notice;
use jetvault_core::{BackupOutcome, BackupRequest, Error, Trigger};

use super::{Ctx, env_ref, human_size, print_json};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// App id.
    pub app: String,
    /// Environment id.
    pub env: String,
    /// Snapshot this file ("-" for standard input) instead of the live target.
    #[arg(long, value_name = "FILE|-")]
    pub from: Option<PathBuf>,
    /// Why this snapshot is taken.
    #[arg(long, short)]
    pub message: Option<String>,
    /// Who takes it (default: JETVAULT_AUTHOR, else user@host).
    #[arg(long)]
    pub author: Option<String>,
    /// Write a snapshot even if nothing changed since the latest.
    #[arg(long)]
    pub force: bool,
    /// Store it even if it fails the environment's JSON Schema with `on_backup =
    /// "refuse"` (flagged in its metadata, recorded in the audit event).
    #[arg(long)]
    pub skip_schema_check: bool,
}

pub async fn run(ctx: &Ctx, args: BackupArgs) -> anyhow::Result<u8> {
    let env = env_ref(&args.app, &args.env)?;
    let vault = ctx.vault().await?;
    let mut req = BackupRequest::new(Bytes::new(), Trigger::Manual);
    req.actor = ctx.actor(args.author.as_deref());
    req.message = args.message;
    req.force = args.force;
    req.skip_schema_check = args.skip_schema_check;
    let actor = req.actor.clone();
    let result = match &args.from {
        Some(path) => {
            req.raw = read_input(path, vault.options().max_size)?;
            req.trigger = Trigger::Upload;
            req.source = Some(if path.as_os_str() == "-" {
                "upload:stdin".to_string()
            } else {
                format!("upload:{}", path.display())
            });
            vault.backup(&env, req).await
        }
        None => {
            async {
                let target = jetvault_core::live::open_configured(&ctx.config, &env).await?;
                vault.backup_from_live(&env, target.as_ref(), req).await
            }
            .await
        }
    };
    let outcome = result.inspect_err(|e| vault.notify(Notice::backup_failed(&env, &actor, e)))?;
    if ctx.json() {
        print_json(&outcome)?;
    } else {
        print_outcome(&env.to_string(), &outcome);
    }
    Ok(super::exit::OK)
}

/// One line saying what a backup did.
pub fn print_outcome(env: &str, outcome: &BackupOutcome) {
    let m = outcome.snapshot();
    match outcome {
        BackupOutcome::Created(_) => println!(
            "{env}: snapshot v{} written ({} -> {} stored, sha256 {})",
            m.version,
            human_size(m.size),
            human_size(m.stored_size),
            &m.sha256[..12]
        ),
        BackupOutcome::Unchanged(_) => println!(
            "{env}: unchanged since v{} (sha256 {}); nothing written (--force writes anyway)",
            m.version,
            &m.sha256[..12]
        ),
    }
}

/// Reads a file or standard input, refusing more than `limit` bytes.
fn read_input(path: &PathBuf, limit: u64) -> anyhow::Result<Bytes> {
    let mut buf = Vec::new();
    let name = path.display().to_string();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| Error::invalid(format!("cannot read standard input: {e}")))?;
    } else {
        let file = std::fs::File::open(path).map_err(|e| {
            Error::invalid(format!("cannot open {name}: {e}")).with_hint("check the --from path")
        })?;
        // A directory opens but can't be read: the argument is wrong (exit 2, not 1).
        file.take(limit + 1).read_to_end(&mut buf).map_err(|e| {
            Error::invalid(format!("cannot read {name}: {e}")).with_hint("check the --from path")
        })?;
    }
    if buf.len() as u64 > limit {
        return Err(Error::too_large(format!(
            "{name} is larger than the {limit}-byte limit; raise snapshots.max_size if this is expected"
        ))
        .into());
    }
    Ok(Bytes::from(buf))
}
