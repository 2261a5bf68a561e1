//! `jetvault backup-all`: snapshot every configured or discovered environment with a live
//! target.

use clap::Args;
use futures::StreamExt;
use jetvault_core::{BackupOutcome, BackupRequest, Trigger};
use serde::Serialize;

use super::rows::RowPrinter;
use super::{Ctx, exit};

#[derive(Debug, Args)]
pub struct BackupAllArgs {
    /// How many environments to back up at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Why these snapshots are taken.
    #[arg(long, short)]
    pub message: Option<String>,
    /// Who takes them.
    #[arg(long)]
    pub author: Option<String>,
    /// Write snapshots even where nothing changed.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Serialize)]
struct Row {
    app: String,
    env: String,
    #[serde(flatten)]
    result: RowResult,
}

#[derive(Debug, Serialize)]
#[serde(tag = "result", rename_all = "lowercase")]
enum RowResult {
    Created { version: u64 },
    Unchanged { version: u64 },
    Failed { error: String, code: &'static str },
}

pub async fn run(ctx: &Ctx, args: BackupAllArgs) -> anyhow::Result<u8> {
    // Configured environments, plus those the discovery source lists now.
    let config = match ctx.discover().await? {
        None => std::borrow::Cow::Borrowed(&ctx.config),
        Some(found) => {
            std::borrow::Cow::Owned(jetvault_core::discovery::effective(&ctx.config, &found))
        }
    };
    let config = config.as_ref();
    let envs: Vec<_> = config
        .envs()
        .filter(|(_, e)| e.live.is_some())
        .map(|(r, _)| r)
        .collect();
    if envs.is_empty() {
        anyhow::bail!(jetvault_core::Error::config(
            "no environment with a live target is configured or discovered; add \
             [apps.APP.envs.ENV.live] sections to the config (see examples/quickstart.toml) \
             or a [discovery] source (examples/discovery.toml)"
        ));
    }
    // Every store request is counted: the summary says what the run cost.
    let store = jetvault_core::store::CountingStore::new(ctx.store().await?);
    let counts = store.counts().clone();
    let vault = ctx.vault_over(std::sync::Arc::new(store), config)?;
    let bar = super::progress(envs.len() as u64, "backup-all");
    let actor = ctx.actor(args.author.as_deref());
    // A few at a time; each row is printed as its environment finishes (one slow
    // platform never holds the others up) and only the totals are kept.
    let mut rows = futures::stream::iter(envs)
        .map(|env| {
            let (vault, actor, bar) = (&vault, actor.clone(), bar.clone());
            let message = args.message.clone();
            async move {
                let result = async {
                    let target = jetvault_core::live::open_configured(config, &env).await?;
                    let mut req = BackupRequest::new(bytes::Bytes::new(), Trigger::Manual);
                    req.actor = actor.clone();
                    req.message = message;
                    req.force = args.force;
                    vault.backup_from_live(&env, target.as_ref(), req).await
                }
                .await;
                let result = match result {
                    Ok(BackupOutcome::Created(m)) => RowResult::Created { version: m.version },
                    Ok(BackupOutcome::Unchanged(m)) => RowResult::Unchanged { version: m.version },
                    Err(e) => {
                        vault.notify(jetvault_core::notify::Notice::backup_failed(
                            &env, &actor, &e,
                        ));
                        bar.println(format!("{env}: {}", e.report()));
                        RowResult::Failed {
                            error: e.report(),
                            code: e.kind().code(),
                        }
                    }
                };
                Row {
                    app: env.app.to_string(),
                    env: env.env.to_string(),
                    result,
                }
            }
        })
        .buffer_unordered(usize::from(args.concurrency));
    let (mut created, mut unchanged, mut failed) = (0, 0, 0);
    let mut out = RowPrinter::new(ctx.json());
    while let Some(row) = rows.next().await {
        bar.inc(1);
        match row.result {
            RowResult::Created { .. } => created += 1,
            RowResult::Unchanged { .. } => unchanged += 1,
            RowResult::Failed { .. } => failed += 1,
        }
        bar.suspend(|| out.row(&row, text))?;
    }
    bar.finish_and_clear();
    if !ctx.json() {
        println!(
            "{} environments: {created} written, {unchanged} unchanged, {failed} failed; {}",
            out.count(),
            requests_summary(&counts)
        );
    }
    out.finish()?;
    Ok(if failed > 0 { exit::PARTIAL } else { exit::OK })
}

/// A row in text mode.
fn text(r: &Row) -> String {
    let name = format!("{}/{}", r.app, r.env);
    match &r.result {
        RowResult::Created { version } => format!("{name}: v{version} written"),
        RowResult::Unchanged { version } => format!("{name}: unchanged since v{version}"),
        RowResult::Failed { error, .. } => format!("{name}: FAILED: {error}"),
    }
}

/// `N store requests (get A, put B, ...)`, the operations that were used.
fn requests_summary(counts: &jetvault_core::store::counting::RequestCounts) -> String {
    let ops: Vec<String> = counts
        .by_op()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(op, n)| format!("{op} {n}"))
        .collect();
    format!("{} store requests ({})", counts.total(), ops.join(", "))
}
